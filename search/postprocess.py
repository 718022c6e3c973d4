"""From start/end logits to answer spans: pure numpy, no model needed.

For one window, the start and end logits are turned into log-probabilities with a softmax over
the positions an answer may take: the context tokens and the no-answer position (``[CLS]``,
index 0). A span's score is ``log P(start) + log P(end)``; the no-answer (null) score is
``log P(start=CLS) + log P(end=CLS)``. Both are normalised per window, so they are comparable
across windows and passages. Spans lie entirely inside the context, are at most
``max_answer_len`` tokens long, and carry the exact character offsets of the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

NO_ANSWER_INDEX = 0


@dataclass(frozen=True)
class SpanCandidate:
    """One candidate answer in one window.

    Attributes:
        start: First character of the answer in the context.
        end: One past its last character (``context[start:end]`` is the answer).
        score: ``log P(start) + log P(end)`` within the window.
        start_token: Index of its first token in the window.
        end_token: Index of its last token in the window.
        logit: The raw ``start logit + end logit``, before the window's softmax.
    """

    start: int
    end: int
    score: float
    start_token: int
    end_token: int
    logit: float


def log_softmax(x: np.ndarray) -> np.ndarray:
    """A numerically stable log-softmax of a 1-D array (``-inf`` entries stay ``-inf``)."""
    x = np.asarray(x, dtype=np.float64)
    top = np.max(x)
    return x - top - np.log(np.sum(np.exp(x - top)))


def window_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Sequence[tuple[int, int] | None],
    n_best: int = 20,
    max_answer_len: int = 30,
) -> tuple[list[SpanCandidate], float]:
    """The best spans of one window and its no-answer score.

    Args:
        start_logits: Start logits of the window (may be longer than ``offsets`` when padded).
        end_logits: End logits of the window.
        offsets: Per token, ``(start, end)`` characters in the context, ``None`` outside it.
        n_best: How many start and how many end positions to combine; at most ``n_best``
            spans are returned.
        max_answer_len: Longest answer, in tokens.

    Returns:
        ``(spans, null_score)``: spans sorted by score, best first, and the window's
        no-answer log-probability.
    """
    n = len(offsets)
    allowed = np.zeros(n, dtype=bool)
    allowed[NO_ANSWER_INDEX] = True
    for i, o in enumerate(offsets):
        if o is not None:
            allowed[i] = True
    s = np.where(allowed, np.asarray(start_logits, dtype=np.float64)[:n], -np.inf)
    e = np.where(allowed, np.asarray(end_logits, dtype=np.float64)[:n], -np.inf)
    log_s, log_e = log_softmax(s), log_softmax(e)
    null_score = float(log_s[NO_ANSWER_INDEX] + log_e[NO_ANSWER_INDEX])
    context = np.flatnonzero(allowed)
    context = context[context != NO_ANSWER_INDEX]
    if context.size == 0:
        return [], null_score
    k = min(n_best, context.size)
    starts = context[np.argsort(-log_s[context], kind="stable")[:k]]
    ends = context[np.argsort(-log_e[context], kind="stable")[:k]]
    spans: list[SpanCandidate] = []
    for i in starts:
        for j in ends:
            if j < i or j - i + 1 > max_answer_len:
                continue
            spans.append(
                SpanCandidate(
                    offsets[i][0], offsets[j][1], float(log_s[i] + log_e[j]), int(i), int(j),  # type: ignore[index]
                    float(s[i] + e[j]),
                )
            )
    spans.sort(key=lambda c: -c.score)
    return spans[:n_best], null_score


def merge_spans(candidates: Sequence[SpanCandidate]) -> list[SpanCandidate]:
    """Merge candidates of several windows of one passage: one per character span, best score kept."""
    best: dict[tuple[int, int], SpanCandidate] = {}
    for c in candidates:
        key = (c.start, c.end)
        if key not in best or c.score > best[key].score:
            best[key] = c
    return sorted(best.values(), key=lambda c: -c.score)
