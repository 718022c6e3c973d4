"""The embedded mode: search and ask an index from Python, without a server.

>>> with Searcher.open("./idx") as searcher:
...     result = searcher.ask("How long are rotated logs kept?")
...     print(result.answers[0].text)

The HTTP API wraps one :class:`Searcher`; the client returns the same result types.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertsearch.indexer.common.errors import InvalidQuery, StorageError
from bertsearch.indexer.records import DocumentRecord
from bertsearch.indexer.common.settings import Settings
from bertsearch.search.definitions import DefinitionAnswer, definition_answers
from bertsearch.search.retrieval import DEFAULT_MODE, answer_model, check_mode, retrieve_hits
from bertsearch.search.types import Answer, AskResult, Embeddings, Hit, SearchResult

if TYPE_CHECKING:
    from bertsearch.indexer.index import Index
    from bertsearch.search.reader import Reader

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 100
MAX_EF_SEARCH = 1024  # HNSW candidates a request may ask for
# One embedding request: at most this many texts of at most this many characters each (the
# encoder reads 256 tokens of a text at most; the bound keeps tokenising a request short).
MAX_EMBED_TEXTS = 256
MAX_EMBED_CHARS = 20_000
# Passages read per question: on 400 SQuAD *train* questions held out of the confidence fit (hybrid,
# top answer, no threshold) F1 was 79.9 / 80.8 / 81.9 / 82.8 reading 3 / 5 / 8 / 10 passages, at
# 0.08 / 0.13 / 0.22 / 0.27 s a question on 2 cores; 10 it is (it was 5).
DEFAULT_PASSAGES = 10
# The default minimum confidence of an answer: fitted with the confidence model on SQuAD train
# questions (see answer_model.json and bertsearch.search.training.calibrate).
DEFAULT_THRESHOLD = answer_model().threshold
# An answer's passage weight is a softmax of its passage's retrieval scores (normalised to [0, 1]
# in the lexical mode) at this temperature. On 80 SQuAD v1.1 dev questions asked of all 2,067
# dev paragraphs (5 passages, an early checkpoint of the shipped head, dense retrieval) the
# best answer's F1 went from 0.42 (reader score alone) to 0.50 (0.44 with the plain product).
PASSAGE_TEMPERATURE = 0.05
# Definition-list answers considered per question (the best matches of its kind; see definitions.py).
MAX_DEFINITION_ANSWERS = 5
# Vectors of definition-list entries kept between questions (384 floats each: 6 MB).
ENTRY_VECTORS_KEPT = 4096


class Searcher:
    """Search passages and extract answers from one index.

    Thread-safe for concurrent readers: the HTTP API shares one instance between requests.

    Args:
        index: An open index.
        reader: The QA reader; by default one is loaded from ``qa_model_path`` on the first
            :meth:`ask` (never before, so :meth:`search` needs no QA model).
        qa_model_path: Folder of the QA model; ``None`` means the shipped default head.
        precision: Precision of the QA model (``auto``, ``bf16``, ``fp32`` or ``int8``).
        cache_dir: Where an int8 QA model is cached (default ``~/.cache/bertsearch``).
        threshold: Default minimum confidence of an answer (see :meth:`ask`).
    """

    def __init__(
        self,
        index: Index,
        reader: Reader | None = None,
        *,
        qa_model_path: str | None = None,
        precision: str = "auto",
        threshold: float = DEFAULT_THRESHOLD,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._index = index
        self._cache_dir = cache_dir
        self.threshold = threshold
        self._reader = reader
        self._qa_model_path = qa_model_path
        self._precision = precision
        self._model_lock = threading.Lock()
        # One forward pass per model at a time: a fast tokenizer used from two threads at once
        # fails ("Already borrowed"), and torch already spreads one pass over every core.
        self._encode_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._last_refresh = time.monotonic()
        self._entry_vectors: OrderedDict[str, Any] = OrderedDict()  # under _encode_lock

    @classmethod
    def open(
        cls, settings: Settings | str | os.PathLike[str] | None = None, *, reader: Reader | None = None,
    ) -> Searcher:
        """Open the index described by ``settings`` (or found in an index folder) for searching.

        Args:
            settings: Runtime settings, or the path of an index folder; ``None`` reads the environment.
            reader: A QA reader to use instead of loading one from ``settings.qa_model_path``.

        Raises:
            IndexNotFound: No index exists there.
            ModelMismatch: The index was built with other build parameters.
        """
        from bertsearch.indexer.index import Index

        if settings is None:
            settings = Settings()
        elif not isinstance(settings, Settings):
            settings = Settings(index_dir=Path(settings))
        index = Index.open(settings)
        return cls(index, reader, qa_model_path=settings.qa_model_path, precision=settings.precision,
                   cache_dir=settings.cache_dir)

    @property
    def index(self) -> Index:
        """The open index."""
        return self._index

    @property
    def generation(self) -> int:
        """The generation of the index being served."""
        return self._index.generation

    def check_ready(self) -> str | None:
        """Why this searcher cannot serve now (the database does not answer, no index loaded), or ``None``."""
        try:
            self._index.ping()
        except StorageError as exc:
            log.warning("not ready: %s", exc)
            return "the database does not answer"
        if self._index.generation < 1:
            return "no index is loaded"
        return None

    @property
    def reader_loaded(self) -> bool:
        """Whether the QA reader is loaded."""
        return self._reader is not None

    @property
    def reader(self) -> Reader:
        """The QA reader, loaded on first use and only once."""
        if self._reader is None:
            with self._model_lock:
                if self._reader is None:
                    from bertsearch.search.reader import Reader

                    self._reader = Reader(self._qa_model_path, precision=self._precision, cache_dir=self._cache_dir)
        return self._reader

    def load_models(self, *, reader: bool = True) -> None:
        """Load the encoder (and the QA reader) now rather than on first use.

        Raises:
            ModelLoadError: A model cannot be loaded.
            ModelMismatch: The encoder is not the one the index was built with.
        """
        self._index.encoder
        if reader:
            self.reader  # noqa: B018 (loads it)

    def search(self, query: str, top_k: int = 5, path_glob: str | None = None, mode: str = DEFAULT_MODE,
               ef_search: int | None = None) -> SearchResult:
        """The ``top_k`` passages that best match ``query``, best first.

        Args:
            query: What to look for (1 to 1000 characters).
            top_k: How many passages to return (1 to 100).
            path_glob: Only passages of documents whose path matches this glob (e.g. ``docs/*.md``).
            mode: ``hybrid`` (meaning and words, fused), ``dense`` (meaning) or ``lexical`` (BM25 on words).
            ef_search: On an HNSW index, candidates explored per query (1 to 1,024; default: the
                setting): more finds more of the exact top k, and costs more.

        Raises:
            InvalidQuery: The query is empty or too long, or ``top_k`` or ``ef_search`` is out of range.
        """
        began = time.perf_counter()
        query = _check_query(query, "query")
        _check_count(top_k, "top_k")
        if ef_search is not None and not (isinstance(ef_search, int) and 1 <= ef_search <= MAX_EF_SEARCH):
            raise InvalidQuery(f"ef_search must be an integer from 1 to {MAX_EF_SEARCH}, got {ef_search!r}")
        hits = self._retrieve(query, top_k, path_glob, check_mode(mode), ef_search)
        return SearchResult(query=query, hits=hits, took_ms=_ms_since(began))

    def ask(
        self,
        question: str,
        top_k: int = 5,
        passages: int = DEFAULT_PASSAGES,
        path_glob: str | None = None,
        threshold: float | None = None,
        mode: str = DEFAULT_MODE,
    ) -> AskResult:
        """Answers to ``question`` read from the best ``passages`` passages, best first.

        The reader reads every passage in one batched call. Answers are ranked by ``confidence``
        (see :func:`confidence`), found once however many chunks overlap them; when none reaches
        the threshold, the best one comes alone, flagged ``below_threshold``, with a ``reason``.

        Args:
            question: The question (1 to 1000 characters).
            top_k: How many answers to return at most (1 to 100).
            passages: How many passages to retrieve and read (1 to 100).
            path_glob: Only read passages of documents whose path matches this glob.
            threshold: Minimum ``confidence`` of an answer, from 0 to 1 (default: :attr:`threshold`).
            mode: How passages are retrieved (see :meth:`search`).

        Raises:
            InvalidQuery: The question is empty or too long, or a count is out of range.
            ModelLoadError: The QA model cannot be loaded.
        """
        began = time.perf_counter()
        question = _check_query(question, "question")
        _check_count(top_k, "top_k")
        _check_count(passages, "passages")
        threshold = self.threshold if threshold is None else threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise InvalidQuery(f"threshold must be from 0 to 1, got {threshold!r}")
        hits = self._retrieve(question, passages, path_glob, check_mode(mode))
        if not hits:
            reason = "no passage matches the path filter" if path_glob else "the index holds no documents"
            return AskResult(question=question, answers=[], took_ms=_ms_since(began), reason=reason)
        answers = [a for a, _ in self.read_answers(question, hits, mode, top_n=max(4 * top_k, 20))]
        kept = [a for a in answers if a.confidence >= threshold][:top_k]
        reason = None if kept else _why_none(answers, len(hits), threshold)
        if not kept and answers:
            kept = [replace(answers[0], below_threshold=True)]
        return AskResult(question=question, answers=kept, took_ms=_ms_since(began), reason=reason)

    def read_answers(self, question: str, hits: list[Hit], mode: str = DEFAULT_MODE,
                     top_n: int = 20) -> list[tuple[Answer, dict[str, float]]]:
        """Every distinct answer the reader finds in ``hits``, best first, with the features its
        confidence was computed from (what ``ask`` ranks; the confidence fit reads the features)."""
        reader = self.reader
        passages = [hit.text for hit in hits]
        with self._read_lock:
            # Ask for more spans than answers: some are the same answer read from two chunks.
            spans = reader.read(question, passages, top_n=top_n, threshold=0.0)
        weights = _passage_weights([hit.score for hit in hits], mode)
        scored = [_to_answer(span, hits[span.passage_index], weights) for span in spans]
        if answer_model().definitions:
            found = definition_answers(question, passages, self._encode_entries)[:MAX_DEFINITION_ANSWERS]
            if found:
                # A question asking for a term of a definition list: SQuAD, on which the reader's
                # confidence was fitted, has few; its confidence is refitted for them, beside the
                # entries' (see definition_confidence).
                scored = [(replace(a, confidence=round(definition_confidence(_reader_features(f)), 6)), f)
                          for a, f in scored]
                scored += [_definition_answer(d, hits[d.passage_index], weights) for d in found]
        features = {id(a): f for a, f in scored}
        return [(a, features[id(a)]) for a in _merge([a for a, _ in scored])]  # _merge ranks them

    def retrieve(self, query: str, k: int, path_glob: str | None = None, mode: str = DEFAULT_MODE) -> list[Hit]:
        """The ``k`` best passages for ``query`` (what :meth:`search` returns, without the checks)."""
        return self._retrieve(query, k, path_glob, check_mode(mode))

    def refresh(self, min_interval: float = 0.0, *, background: bool = False) -> bool:
        """Serve the newest committed generation of the index.

        Cheap to call on every request: it checks at most once per ``min_interval`` seconds, and
        a call made while another thread is refreshing returns at once. The new generation
        replaces the old one in one assignment, so a search runs entirely on one or the other.

        Args:
            min_interval: Do nothing if the last check began less than this many seconds ago.
            background: Check and load in a background thread and return at once, so no caller
                waits for a reload (a failed check is logged, and the current generation stays).

        Returns:
            True when a newer generation was loaded (always False with ``background``).
        """
        if time.monotonic() - self._last_refresh < min_interval:
            return False
        if not self._refresh_lock.acquire(blocking=False):
            return False
        self._last_refresh = time.monotonic()
        if not background:
            try:
                return bool(self._index.refresh())
            finally:
                self._refresh_lock.release()
        threading.Thread(target=self._refresh_in_background, name="bertsearch-refresh", daemon=True).start()
        return False

    def _refresh_in_background(self) -> None:
        try:
            if self._index.refresh():
                self._index.encoder  # a rebuild with another model needs it: load it here, not in a request
                log.info("serving generation %s of the index", self.generation)
        except Exception:  # noqa: BLE001 (keep serving the current generation; the next check retries)
            log.exception("checking for a new generation of the index failed")
        finally:
            self._refresh_lock.release()

    def embed(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        """Vectors of ``texts`` from the index's own encoder, as its chunks and queries are encoded.

        Args:
            texts: 1 to 256 texts of 1 to 20,000 characters (blank ones are texts too).
            normalize: L2-normalise each vector (then a dot product is the cosine).

        Raises:
            InvalidQuery: No text, too many, an empty one or one too long.
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidQuery("texts must be a list of strings")
        if not 1 <= len(texts) <= MAX_EMBED_TEXTS:
            raise InvalidQuery(f"give 1 to {MAX_EMBED_TEXTS} texts, not {len(texts)}")
        for n, text in enumerate(texts):
            if not isinstance(text, str) or not text:
                raise InvalidQuery(f"text {n} is empty or not a string")
            if len(text) > MAX_EMBED_CHARS:
                raise InvalidQuery(f"text {n} is too long: {len(text)} characters, at most {MAX_EMBED_CHARS}")
        encoder = self._index.encoder
        with self._encode_lock:
            vectors = encoder.encode(list(texts), normalize=normalize)
            tokens = encoder.count_tokens(list(texts))
        return Embeddings(model=encoder.model_id, vectors=vectors, tokens=tokens, precision=encoder.precision)

    def stats(self) -> dict[str, Any]:
        """What the index holds and how it was built (see ``Index.info``, which refreshes first)."""
        with self._refresh_lock:  # one refresh at a time
            return self._index.info()

    def document(self, document_id: int) -> DocumentRecord:
        """The document with id ``document_id``.

        Raises:
            DocumentNotFound: No such document.
        """
        return self._index.get_document(document_id)

    def close(self) -> None:
        """Close the index (after a refresh in progress has finished)."""
        with self._refresh_lock:
            self._index.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _retrieve(self, query: str, k: int, path_glob: str | None, mode: str,
                  ef_search: int | None = None) -> list[Hit]:
        def encode(text: str) -> Any:
            return self._encode_texts([text])[0]

        return retrieve_hits(self._index, encode, query, k, path_glob, mode, catch_up=self._catch_up,
                             ef_search=ef_search)

    def _encode_texts(self, texts: list[str]) -> Any:
        encoder = self._index.encoder  # loaded once, under the index's lock
        with self._encode_lock:
            return encoder.encode(texts)

    def _encode_entries(self, texts: list[str]) -> Any:
        """``texts`` encoded, each entry of a definition list once: the same passages come back for
        question after question, so their entries' vectors are kept (the last
        :data:`ENTRY_VECTORS_KEPT`, by text; the encoder is the index's for its whole life)."""
        import numpy as np

        encoder = self._index.encoder
        with self._encode_lock:
            cache = self._entry_vectors
            missing = list(dict.fromkeys(t for t in texts if t not in cache))
            if missing:
                for text, vector in zip(missing, encoder.encode(missing)):
                    cache[text] = vector
            vectors = np.stack([cache[t] for t in texts])
            for text in texts:
                cache.move_to_end(text)
            while len(cache) > ENTRY_VECTORS_KEPT:
                cache.popitem(last=False)
            return vectors

    def _catch_up(self) -> None:
        # A writer is ahead of the served snapshot: load the newest generation now (after a
        # refresh in progress, if there is one) rather than answer without the chunks it changed.
        with self._refresh_lock:
            self._index.refresh()
            self._last_refresh = time.monotonic()


def _why_none(answers: list[Answer], passages: int, threshold: float) -> str:
    if not answers:
        return f"the reader found no answer span in the {passages} best passages"
    return (f"no answer in the {passages} best passages reaches the threshold ({threshold:g}); "
            f"the best one has confidence {answers[0].confidence:.3f}")


# What JSON Schema (ECMAScript) calls white space: a text of only these is blank. The API's schema
# says so with the same set, so a client and the server agree on what "empty" is.
BLANK = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
        "\u2028\u2029\u202f\u205f\u3000\ufeff"


def _check_query(text: str, name: str) -> str:
    if not isinstance(text, str):
        raise InvalidQuery(f"the {name} must be a string")
    text = text.strip(BLANK)
    if not text:
        raise InvalidQuery(f"the {name} is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"the {name} is too long: {len(text)} characters, at most {MAX_QUERY_CHARS}")
    return text


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise InvalidQuery(f"{name} must be an integer from 1 to {MAX_TOP_K}, got {value!r}")


def _ms_since(began: float) -> float:
    return round((time.perf_counter() - began) * 1000.0, 3)


def _passage_weights(scores: list[float], mode: str = "dense") -> list[float]:
    """How likely each passage is to be the one holding the answer: a softmax of retrieval scores."""
    if mode == "lexical":  # BM25 has no fixed scale
        top = max(scores) or 1.0
        scores = [s / top for s in scores]
    logits = [s / PASSAGE_TEMPERATURE for s in scores]
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def confidence_features(reader_score: float, null_score: float, weight: float, hit: Hit,
                        span_logit: float) -> dict[str, float]:
    """What the confidence model reads of an answer (``answer_model.json`` names the same keys).

    ``reader_score`` is normalised within one window of one passage; ``span_logit``, the span's
    raw start + end logit, is not, and tells the spans of different passages apart better.
    """
    return {
        "log_reader": math.log(reader_score + 1e-6),
        "log_null": math.log(null_score + 1e-6),
        "span_logit": span_logit,
        "log_weight": math.log(weight + 1e-6),
        "dense_rank1": 1.0 if hit.ranks.get("dense") == 1 else 0.0,
        "lexical_rank1": 1.0 if hit.ranks.get("lexical") == 1 else 0.0,
        "both": 1.0 if len(hit.ranks) == 2 else 0.0,
    }


def confidence(features: dict[str, float]) -> float:
    """The fitted probability that an answer with these features is right."""
    fit = answer_model()
    return _logistic(fit.intercept, fit.coefficients, features)


def _logistic(intercept: float, coefficients: dict[str, float], features: dict[str, float]) -> float:
    """A fitted logistic model's probability; a feature it does not name counts as 0."""
    z = float(intercept) + sum(float(w) * features.get(name, 0.0) for name, w in coefficients.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def _to_answer(span: Any, hit: Hit, weights: list[float]) -> tuple[Answer, dict[str, float]]:
    # Chunk text is document[hit.start:hit.end], so passage offsets shift by the chunk's start.
    weight = weights[span.passage_index]
    features = confidence_features(float(span.score), float(span.null_score), weight, hit, float(span.logit))
    return _answer_in(hit, span.start, span.end, score=float(span.score) * weight,
                      reader_score=float(span.score), confidence=confidence(features)), features


def _answer_in(hit: Hit, start: int, end: int, *, score: float, reader_score: float, confidence: float,
               source: str = "reader") -> Answer:
    """The answer ``hit.text[start:end]``, placed in its document."""
    return Answer(
        text=hit.text[start:end], score=score, reader_score=reader_score, path=hit.path, title=hit.title,
        document_id=hit.document_id, chunk_id=hit.chunk_id, start=hit.start + start, end=hit.start + end,
        context=hit.text, passage_score=hit.score, context_start=hit.start,
        confidence=round(confidence, 6), source=source,  # type: ignore[arg-type]
    )


def definition_confidence(features: dict[str, float]) -> float:
    """The fitted probability that an answer to a question asking for a term of a definition list
    is right: an entry's term (``definition``, ``similarity``, ``margin``, ``overlap``, and
    ``log_weight``, its passage's weight as in :func:`confidence_features`) or a reader's span
    (``reader_logit``: the logit of its :func:`confidence`). Fitted on technical documents
    (``bertsearch.search.training.fit_definitions``)."""
    fit = answer_model().definitions
    return _logistic(fit["intercept"], fit["coefficients"], features)


def _reader_features(features: dict[str, float]) -> dict[str, float]:
    p = min(max(confidence(features), 1e-6), 1.0 - 1e-6)
    return {"reader_logit": math.log(p / (1.0 - p))}


def definition_features(found: DefinitionAnswer, weights: list[float]) -> dict[str, float]:
    """What :func:`definition_confidence` reads of a definition-list answer."""
    return {"definition": 1.0, "similarity": found.similarity, "margin": found.margin, "overlap": found.overlap,
            "log_weight": math.log(weights[found.passage_index] + 1e-6)}


def _definition_answer(found: DefinitionAnswer, hit: Hit, weights: list[float]) -> tuple[Answer, dict[str, float]]:
    entry = found.entry
    weight = weights[found.passage_index]
    features = definition_features(found, weights)
    confidence = definition_confidence(features)
    return _answer_in(hit, entry.start, entry.end, score=confidence * weight, reader_score=round(found.similarity, 6),
                      confidence=confidence, source="definition"), features


def _merge(answers: list[Answer]) -> list[Answer]:
    """Best first, dropping every answer that overlaps a better one in the same document.

    The same span read from two overlapping chunks is reported once, with its better score; so
    are the variants of one answer the reader proposes around it ("14 days", "for 14 days").
    """
    kept: list[Answer] = []
    for answer in sorted(answers, key=lambda a: (a.confidence, a.score), reverse=True):
        if not any(
            k.document_id == answer.document_id and k.start < answer.end and answer.start < k.end for k in kept
        ):
            kept.append(answer)
    return kept
