"""Two QA heads read as one: the first reads every passage, a larger second one rereads the best few.

A larger head reads better and slower (``models/large-reader``, 12 layers 768 wide, reads about 4.5
times as long as the shipped 6x384 head). So the first head reads all the passages, and the second
rereads the ``rereads`` passages whose best first-head span is most probable. A span's combined
probability is ``weight * P_second + (1 - weight) * P_first``, spans being the same when their
characters are; a head that does not list a span, or did not read its passage, gives it 0, and the
no-answer probability is combined the same way. The span's logit is the weighted mean of the
heads' logits (a head that does not list the span gives its lowest listed logit of that passage;
one that lists none is left out); a passage the second head did not reread keeps the first head's.

The weight 0.75 was chosen on held-out written pairs with both heads reading every question's
context (``benchmarks/combine_readers.py``), never on a dev or report set. The answers' confidence
needs a fit made on this pair's scores (``pair_answer_model.json`` in the second head's folder,
fitted by ``bertsearch.search.training.calibrate`` with ``BERTSEARCH_LARGE_READER`` set).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from bertsearch.search.postprocess import SpanCandidate
from bertsearch.search.reader import PairResult, Reader, ReaderSpan, answer_spans

#: The second head's share of a span's probability (chosen on held-out written pairs).
SECOND_WEIGHT = 0.75
#: Passages the second head rereads per question.
REREADS = 3


class ReaderPair:
    """Two readers combined span by span (see the module docstring): :meth:`read` and
    :meth:`read_pairs` as a :class:`Reader` has them; the heads' windows and models are on
    :attr:`first` and :attr:`second`.

    Args:
        first: Reads every passage (the shipped head).
        second: Rereads the ``rereads`` most promising passages.
        weight: The second head's share of a span's probability, from 0 to 1.
        rereads: How many passages of a question the second head rereads (at least 1).
    """

    def __init__(self, first: Reader, second: Reader, weight: float = SECOND_WEIGHT, rereads: int = REREADS) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError("weight must be from 0 to 1")
        if rereads < 1:
            raise ValueError("rereads must be at least 1")
        self.first = first
        self.second = second
        self.weight = weight
        self.rereads = rereads
        self.threshold = first.threshold

    @property
    def model_path(self) -> Path | None:
        """The first head's folder (the head that reads every passage); the pair's confidence fit is
        in the second's (:data:`~bertsearch.search.confidence.PAIR_MODEL_FILE`)."""
        return self.first.model_path

    @property
    def precision(self) -> str:
        """What the heads read in (the first's; both resolve ``auto`` alike)."""
        return self.first.precision

    def read(
        self, question: str, passages: Sequence[str], top_n: int = 5, threshold: float | None = None
    ) -> list[ReaderSpan]:
        """As :meth:`Reader.read`: the best spans over all passages, best first, by combined score."""
        if not passages or not question.strip():
            return []
        limit = self.threshold if threshold is None else threshold
        first = self.first.read_pairs([question] * len(passages), passages)
        best = [max((math.exp(c.score) for c in r.spans), default=0.0) for r in first]
        chosen = sorted(sorted(range(len(passages)), key=lambda p: -best[p])[: self.rereads]) if self.weight else []
        second = self.second.read_pairs([question] * len(chosen), [passages[p] for p in chosen]) if chosen else []
        reread = dict(zip(chosen, second))
        results = [combine(r, reread.get(p), self.weight) for p, r in enumerate(first)]
        return answer_spans(passages, results, top_n, limit)

    def read_pairs(self, questions: Sequence[str], contexts: Sequence[str], n_best: int = 20) -> list[PairResult]:
        """As :meth:`Reader.read_pairs`, both heads reading every pair (what ``eval-qa`` reads)."""
        first = self.first.read_pairs(questions, contexts, n_best)
        if not self.weight:  # a head of weight 0 is not read
            return [combine(a, None, 0.0, n_best) for a in first]
        second = self.second.read_pairs(questions, contexts, n_best)
        return [combine(a, b, self.weight, n_best) for a, b in zip(first, second)]


def combine(first: PairResult, second: PairResult | None, weight: float, n_best: int = 20) -> PairResult:
    """One pair's spans and null combined at ``weight`` (the second head's share); ``second`` is
    ``None`` where the second head did not read the pair."""
    if second is None:
        if weight == 1.0:
            return PairResult([], -math.inf)
        shift = math.log(1.0 - weight)
        return PairResult([SpanCandidate(c.start, c.end, c.score + shift, c.start_token, c.end_token, c.logit)
                           for c in first.spans], first.null_score + shift)
    probability: dict[tuple[int, int], float] = {}
    heads = [(r, share) for r, share in ((first, 1.0 - weight), (second, weight)) if share > 0.0 and r.spans]
    logits = [{(c.start, c.end): c.logit for c in r.spans} for r, _ in heads]
    floors = [min(c.logit for c in r.spans) for r, _ in heads]
    for result, share in heads:
        for c in result.spans:
            key = (c.start, c.end)
            probability[key] = probability.get(key, 0.0) + share * math.exp(c.score)
    shares = sum(share for _, share in heads)

    def logit(key: tuple[int, int]) -> float:
        return sum(share * own.get(key, floor) for (_, share), own, floor in zip(heads, logits, floors)) / shares

    null = (1.0 - weight) * math.exp(first.null_score) + weight * math.exp(second.null_score)
    # Token indices are each head's own (two tokenizers): a combined span has none.
    spans = [SpanCandidate(key[0], key[1], math.log(p) if p > 0.0 else -math.inf, -1, -1, logit(key))
             for key, p in probability.items()]
    spans.sort(key=lambda c: -c.score)
    return PairResult(spans[:n_best], math.log(null) if null > 0.0 else -math.inf)
