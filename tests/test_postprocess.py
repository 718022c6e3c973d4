"""Logits -> spans: properties that hold for any logits (pure numpy, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from bertsearch.search.postprocess import SpanCandidate, log_softmax, merge_spans, window_spans

CONTEXT = "Alpha beta gamma delta epsilon zeta eta theta iota kappa."


def _offsets(question_tokens: int = 4, padding: int = 0) -> list[tuple[int, int] | None]:
    """[CLS] question... [SEP] one token per context word [SEP] (padding beyond the offsets)."""
    words, pos = [], 0
    for word in CONTEXT.split(" "):
        words.append((pos, pos + len(word)))
        pos += len(word) + 1
    return [None] * (1 + question_tokens + 1) + words + [None]


@pytest.mark.parametrize("seed", range(20))
def test_spans_stay_in_the_context_within_max_length(seed: int) -> None:
    rng = np.random.default_rng(seed)
    offsets = _offsets()
    padded = len(offsets) + 5  # logits of a padded batch are longer than the window
    start, end = rng.normal(size=padded) * 3, rng.normal(size=padded) * 3
    spans, null = window_spans(start, end, offsets, n_best=10, max_answer_len=3)
    assert spans and null <= 0.0
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    for s in spans:
        assert offsets[s.start_token] is not None and offsets[s.end_token] is not None
        assert s.start_token <= s.end_token and s.end_token - s.start_token + 1 <= 3
        assert (s.start, s.end) == (offsets[s.start_token][0], offsets[s.end_token][1])
        assert CONTEXT[s.start : s.end].strip() == CONTEXT[s.start : s.end]
        assert s.score <= 0.0


def test_question_logits_never_win() -> None:
    offsets = _offsets()
    start = np.zeros(len(offsets))
    end = np.zeros(len(offsets))
    start[2], end[3] = 50.0, 50.0  # huge logits on question tokens
    start[8], end[9] = 5.0, 5.0  # context tokens 2..3: "gamma delta"
    spans, _ = window_spans(start, end, offsets)
    assert CONTEXT[spans[0].start : spans[0].end] == "gamma delta"
    assert spans[0].logit == pytest.approx(10.0)  # raw start + end logits, before the window's softmax


def test_the_raw_logit_keeps_what_the_window_softmax_hides() -> None:
    # The same span, equally sure within its window, from a window whose logits are all higher:
    # its probability is the same, its raw logit is not (the confidence model reads both).
    offsets = _offsets()
    low = np.zeros(len(offsets))
    low[8] = 5.0
    spans_low, _ = window_spans(low, low, offsets)
    spans_high, _ = window_spans(low + 3.0, low + 3.0, offsets)
    assert spans_low[0].score == pytest.approx(spans_high[0].score)
    assert spans_high[0].logit == pytest.approx(spans_low[0].logit + 6.0)


def test_scores_are_log_probabilities_with_the_null_position() -> None:
    offsets = _offsets()
    start = np.full(len(offsets), -10.0)
    end = np.full(len(offsets), -10.0)
    start[0], end[0] = 10.0, 10.0  # the model says: no answer
    spans, null = window_spans(start, end, offsets)
    assert np.exp(null) > 0.99
    assert all(np.exp(s.score) < 0.01 for s in spans)
    total = np.exp(log_softmax(np.array([1.0, 2.0, -np.inf]))).sum()
    assert total == pytest.approx(1.0)


def test_window_without_context_has_no_spans() -> None:
    spans, null = window_spans(np.zeros(4), np.zeros(4), [None, None, None, None])
    assert spans == [] and null == pytest.approx(0.0)


def test_merge_keeps_the_best_score_per_character_span() -> None:
    a = SpanCandidate(0, 5, -1.0, 6, 6, 2.0)
    b = SpanCandidate(0, 5, -0.5, 3, 3, 2.5)
    c = SpanCandidate(6, 10, -0.7, 7, 7, 2.3)
    assert merge_spans([a, b, c]) == [b, c]
