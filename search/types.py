"""Result types shared by the embedded mode (:class:`Searcher`) and the HTTP client (:class:`Client`).

:class:`SearchResult` and :class:`AskResult` also read as their lists (``client.ask(q)[0].text``).
Each type turns into plain JSON data with ``to_dict`` and back with ``from_dict``; the HTTP API
sends exactly these dictionaries, so the three ways of asking return equal objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from collections.abc import Iterator
from typing import Any, Literal


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of dataclass ``cls`` found in ``data`` (unknown keys are ignored, for forward compatibility)."""
    return {f.name: data[f.name] for f in fields(cls) if f.name in data}


@dataclass(frozen=True)
class Hit:
    """A retrieved passage (a chunk of a document).

    Attributes:
        score: How well the passage matches the query in the mode asked (higher is better):
            in ``dense`` the cosine similarity, in ``lexical`` the BM25 score, in ``hybrid`` the
            fused score in [0, 1].
        chunk_id: Id of the chunk in the index.
        document_id: Id of the document holding the chunk.
        path: Path of the document, as indexed.
        title: Title of the document, if it has one.
        text: Text of the passage; ``text == document[start:end]``.
        start: Character offset of the passage in the document.
        end: Character offset just past the passage in the document.
        ranks: Which retrievers found the passage, and at which rank (1 = best):
            ``{"dense": 2, "lexical": 1}``.
    """

    score: float
    chunk_id: int
    document_id: int
    path: str
    title: str | None
    text: str
    start: int
    end: int
    ranks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        """The hit described by ``data`` (as made by :meth:`to_dict`)."""
        return cls(**_pick(cls, data))


@dataclass(frozen=True)
class Answer:
    """An answer span extracted from a passage.

    Attributes:
        text: The answer; ``text == document[start:end]``.
        score: ``reader_score`` weighted by how well its passage matches the question compared
            with the other passages read (a tie-break after ``confidence``).
        path: Path of the document holding the answer.
        title: Title of that document, if it has one.
        document_id: Id of that document.
        chunk_id: Id of the passage (chunk) the answer was read from.
        start: Character offset of the answer in the document.
        end: Character offset just past the answer in the document.
        context: Text of the passage the answer was read from.
        passage_score: Retrieval score of that passage.
        reader_score: The reader's ``P(start) * P(end)`` for the span within its passage, in
            [0, 1] (one of the inputs of ``confidence``).
        context_start: Character offset of the passage in the document, so the answer is
            ``context[start - context_start:end - context_start]``.
        confidence: The estimated probability that the answer is right, in [0, 1] (fitted on
            SQuAD train questions asked against their article; for a question that asks for an
            option, a variable or an exit status and gets definition answers, on the technical
            tuning set, see ``source``); the threshold applies to it.
        below_threshold: True for the best answer returned although its confidence is under
            the threshold (then it is the only one, and ``AskResult.reason`` says so).
        source: ``reader`` for a span the QA model chose; ``definition`` for the term of a
            definition-list entry (an option, an environment variable, an exit status) whose
            description matches the question (see :mod:`bertsearch.search.definitions`); then
            ``reader_score`` is that match, the cosine of the question and the entry.
    """

    text: str
    score: float
    path: str
    title: str | None
    document_id: int
    chunk_id: int
    start: int
    end: int
    context: str
    passage_score: float
    context_start: int
    reader_score: float
    confidence: float = 0.0
    below_threshold: bool = False
    source: Literal["reader", "definition"] = "reader"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The answer described by ``data`` (as made by :meth:`to_dict`)."""
        return cls(**_pick(cls, data))


@dataclass(frozen=True)
class SearchResult:
    """The passages retrieved for a query, best first.

    Attributes:
        query: The query as asked.
        hits: The passages, best first.
        took_ms: Time taken to answer, in milliseconds.
    """

    query: str
    hits: list[Hit] = field(default_factory=list)
    took_ms: float = 0.0

    # A result reads as its list of hits: ``result[0].path``, ``for hit in result``.
    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __getitem__(self, index: int) -> Hit:
        return self.hits[index]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits], "took_ms": self.took_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        """The result described by ``data`` (as made by :meth:`to_dict`)."""
        return cls(
            query=data["query"],
            hits=[Hit.from_dict(h) for h in data.get("hits", [])],
            took_ms=float(data.get("took_ms", 0.0)),
        )


@dataclass(frozen=True)
class AskResult:
    """The answers extracted for a question, best first.

    Attributes:
        question: The question as asked.
        answers: The answers, best first. When none reaches the threshold, the best one alone,
            flagged ``below_threshold``; empty only when nothing was retrieved or read.
        took_ms: Time taken to answer, in milliseconds.
        reason: Why there is no answer above the threshold, or ``None`` when there is.
    """

    question: str
    answers: list[Answer] = field(default_factory=list)
    took_ms: float = 0.0
    reason: str | None = None

    # A result reads as its list of answers: ``result[0].text``, ``for answer in result``.
    def __len__(self) -> int:
        return len(self.answers)

    def __iter__(self) -> Iterator[Answer]:
        return iter(self.answers)

    def __getitem__(self, index: int) -> Answer:
        return self.answers[index]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "question": self.question,
            "answers": [a.to_dict() for a in self.answers],
            "took_ms": self.took_ms,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AskResult:
        """The result described by ``data`` (as made by :meth:`to_dict`)."""
        return cls(
            question=data["question"],
            answers=[Answer.from_dict(a) for a in data.get("answers", [])],
            took_ms=float(data.get("took_ms", 0.0)),
            reason=data.get("reason"),
        )


@dataclass(frozen=True)
class Embeddings:
    """Vectors of texts from an index's encoder (:meth:`Searcher.embed <bertsearch.search.searcher.Searcher.embed>`).

    Attributes:
        model: The encoder's fingerprint (``<name>@<digest>``), as the index records it.
        vectors: ``float32`` array of shape ``(len(texts), dimension)``, in the order of the texts.
        tokens: Tokens read, special tokens included.
        precision: ``bf16``, ``fp32`` or ``int8``: how the encoder ran.
    """

    model: str
    vectors: Any
    tokens: int
    precision: str = "fp32"

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])
