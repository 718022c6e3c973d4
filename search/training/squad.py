"""SQuAD-format data: loading (v1 and v2, plain or gzipped JSON), negatives, training labels.

Windows (one model input each, with character offsets) come from :mod:`bertsearch.search.windows`.

Training labels: a window whose context part fully holds the answer is labelled with the answer's
first and last token; any other window (and every unanswerable question) is labelled at the
no-answer position, index 0, the ``[CLS]`` token.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bertsearch.indexer.common.errors import ConfigError
from bertsearch.search.windows import tokenize_windows

NO_ANSWER_INDEX = 0


@dataclass(frozen=True)
class SquadAnswer:
    """One gold answer: its text and the character offset where it starts in the context."""

    text: str
    start: int


@dataclass(frozen=True)
class SquadExample:
    """One question about one paragraph.

    Attributes:
        id: The question id.
        question: The question text.
        context: The paragraph.
        answers: The gold answers (empty for an unanswerable question).
        is_impossible: True when the question has no answer in the paragraph (v2 data, negatives).
        title: The article's title (paragraphs of one article are used to build negatives).
        group: The examples that ask one question of several passages share it (shared
            normalisation, :mod:`bertsearch.search.training.shared_norm`); empty: its own ``id``.
    """

    id: str
    question: str
    context: str
    answers: tuple[SquadAnswer, ...]
    is_impossible: bool = False
    title: str = ""
    group: str = ""

    @property
    def group_key(self) -> str:
        """The question's group: ``group``, or the example's own ``id``."""
        return self.group or self.id


def read_squad_json(path: str | Path) -> dict[str, Any]:
    """Read a SQuAD file (``.json`` or ``.json.gz``) into its JSON object.

    Raises:
        ConfigError: The file is missing or is not SQuAD-format JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"SQuAD file not found: {path}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            obj = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read SQuAD file {path}: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise ConfigError(f"{path} is not a SQuAD file: no top-level 'data' list")
    return obj


@dataclass(frozen=True)
class SquadParagraph:
    """One paragraph of a SQuAD file with its questions.

    Attributes:
        pid: Its place among the file's paragraphs (0-based, file order).
        title: The article's title.
        context: The paragraph.
        examples: Its questions, in file order.
    """

    pid: int
    title: str
    context: str
    examples: tuple[SquadExample, ...]


def squad_paragraphs(path: str | Path) -> Iterator[SquadParagraph]:
    """The paragraphs of a SQuAD v1 or v2 file with their questions, in file order.

    The file is read at once; the paragraphs are made as they are taken.

    Raises:
        ConfigError: The file cannot be read or is not in the SQuAD layout (the layout when the
            paragraph is reached).
    """
    return _paragraphs(read_squad_json(path), path)


def _paragraphs(obj: dict[str, Any], path: str | Path) -> Iterator[SquadParagraph]:
    pid = 0
    try:
        for article in obj["data"]:
            title = article.get("title", "")
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                examples: list[SquadExample] = []
                for qa in paragraph["qas"]:
                    answers = tuple(
                        SquadAnswer(a["text"], int(a["answer_start"])) for a in qa.get("answers", [])
                    )
                    impossible = bool(qa.get("is_impossible", False)) or not answers
                    examples.append(SquadExample(str(qa["id"]), qa["question"], context, answers, impossible, title,
                                                 str(qa.get("group", ""))))
                yield SquadParagraph(pid, title, context, tuple(examples))
                pid += 1
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not in the SQuAD layout: {exc!r}") from exc


def load_squad(path: str | Path, limit: int | None = None) -> list[SquadExample]:
    """Load the questions of a SQuAD v1 or v2 file, in file order.

    Args:
        path: A ``.json`` or ``.json.gz`` file in the SQuAD layout.
        limit: Keep only the first ``limit`` questions.

    Raises:
        ConfigError: The file cannot be read or is not in the SQuAD layout.
    """
    examples: list[SquadExample] = []
    for paragraph in squad_paragraphs(path):
        for example in paragraph.examples:
            examples.append(example)
            if limit is not None and len(examples) >= limit:
                return examples
    return examples


def add_negatives(examples: Sequence[SquadExample], ratio: float, seed: int = 0) -> list[SquadExample]:
    """Add unanswerable examples: a question paired with another paragraph of its article.

    About ``ratio`` negatives per answerable example are drawn. A paragraph that happens to
    contain one of the gold answer texts is not used.

    Args:
        examples: The answerable examples (in any order).
        ratio: Negatives per example, e.g. ``0.25`` for one negative per four positives.
        seed: The seed of the draw.

    Returns:
        The examples followed by the negatives (ids ``<id>-neg``).
    """
    rng = random.Random(seed)
    by_title: dict[str, list[str]] = {}
    for ex in examples:
        paragraphs = by_title.setdefault(ex.title, [])
        if not paragraphs or paragraphs[-1] != ex.context:
            paragraphs.append(ex.context)
    negatives: list[SquadExample] = []
    for ex in examples:
        if rng.random() >= ratio:
            continue
        others = [p for p in by_title.get(ex.title, []) if p != ex.context]
        if not others:
            continue
        context = rng.choice(others)
        if any(a.text.lower() in context.lower() for a in ex.answers):
            continue
        negatives.append(SquadExample(f"{ex.id}-neg", ex.question, context, (), True, ex.title, ex.group_key))
    return list(examples) + negatives


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def remove_answer_sentences(context: str, answers: Sequence[SquadAnswer]) -> str | None:
    """The context without the sentences that hold the answers, or ``None`` if nothing useful is left.

    ``None`` too when an answer text still occurs in what is left (it would not be unanswerable).
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(context):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(context)))
    kept = [
        context[s:e] for s, e in spans
        if not any(s < a.start + len(a.text) and a.start < e for a in answers)
    ]
    if len(kept) < 2:
        return None
    rest = " ".join(kept)
    if any(a.text.lower() in rest.lower() for a in answers):
        return None
    return rest


def add_hard_negatives(examples: Sequence[SquadExample], ratio: float, seed: int = 0) -> list[SquadExample]:
    """Add unanswerable examples closer to SQuAD 2.0's: the question with its own paragraph, minus
    the sentences that hold the answer (same topic, same words, but no answer).

    Args:
        examples: The examples (answerable ones are used).
        ratio: Hard negatives per answerable example.
        seed: The seed of the draw (independent of :func:`add_negatives`).

    Returns:
        The examples followed by the hard negatives (ids ``<id>-hard``).
    """
    rng = random.Random(seed + 7919)
    negatives: list[SquadExample] = []
    for ex in examples:
        if ex.is_impossible or not ex.answers or rng.random() >= ratio:
            continue
        rest = remove_answer_sentences(ex.context, ex.answers)
        if rest is not None:
            negatives.append(SquadExample(f"{ex.id}-hard", ex.question, rest, (), True, ex.title, ex.group_key))
    return list(examples) + negatives


def label_window(offsets: Sequence[tuple[int, int] | None], answer: SquadAnswer | None) -> tuple[int, int]:
    """The (start, end) token labels of one window for one answer.

    Returns the first and last token of the answer when the window's context part holds the
    whole answer, else ``(NO_ANSWER_INDEX, NO_ANSWER_INDEX)``.
    """
    if answer is None:
        return NO_ANSWER_INDEX, NO_ANSWER_INDEX
    a_start, a_end = answer.start, answer.start + len(answer.text)
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > a_start or offsets[ctx[-1]][1] < a_end:  # type: ignore[index]
        return NO_ANSWER_INDEX, NO_ANSWER_INDEX
    start = next(i for i in ctx if offsets[i][1] > a_start)  # type: ignore[index]
    end = next(i for i in reversed(ctx) if offsets[i][0] < a_end)  # type: ignore[index]
    if end < start:
        return NO_ANSWER_INDEX, NO_ANSWER_INDEX
    return start, end


@dataclass
class TrainFeatures:
    """Unpadded training windows with their labels (parallel lists); ``groups``: per window, the
    number of its example's group (``SquadExample.group_key`` within its article: the copies
    ``written --repeat`` makes, ``title#1`` ..., are groups of their own)."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray]
    start_positions: np.ndarray
    end_positions: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)


def make_train_features(
    examples: Sequence[SquadExample],
    tokenizer: Any,
    max_seq_len: int = 256,
    stride: int = 96,
    chunk: int = 2000,
) -> TrainFeatures:
    """Windows and labels for training (first gold answer of each example).

    Offsets are dropped after labelling so that memory stays small on the full train set.
    """
    ids: list[np.ndarray] = []
    types: list[np.ndarray] = []
    starts: list[int] = []
    ends: list[int] = []
    groups: list[int] = []
    numbers: dict[str, int] = {}
    for lo in range(0, len(examples), chunk):
        part = examples[lo : lo + chunk]
        win = tokenize_windows(
            tokenizer, [e.question for e in part], [e.context for e in part], max_seq_len, stride
        )
        for w in range(len(win)):
            ex = part[win.example_index[w]]
            answer = None if ex.is_impossible or not ex.answers else ex.answers[0]
            s, e = label_window(win.offsets[w], answer)
            ids.append(win.input_ids[w])
            types.append(win.token_type_ids[w])
            starts.append(s)
            ends.append(e)
            groups.append(numbers.setdefault(f"{ex.title}\0{ex.group_key}", len(numbers)))
    return TrainFeatures(ids, types, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64),
                         np.asarray(groups, dtype=np.int64))
