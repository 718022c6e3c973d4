"""Two QA heads read as one (search/reader_pair.py): the combination, the rereads and the Searcher's setting.

Tiny random heads for the plumbing; the shipped head where answers must mean something.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bertsearch.indexer.common.settings import Settings
from bertsearch.search import Searcher
from bertsearch.search.postprocess import SpanCandidate
from bertsearch.search.reader import PairResult, Reader
from bertsearch.search.reader_pair import ReaderPair, combine

QUESTION = "How long are rotated logs kept?"
PASSAGES = [
    "Rotated logs are kept for 14 days and then deleted by the cleanup job.",
    "Backups run every night at 02:00 and are stored on the second disk.",
    "The service listens on port 8080 unless BERTSEARCH_PORT says otherwise.",
    "Logs are written to /var/log/app; the level is set with --log-level.",
]


@pytest.fixture(scope="module")
def other_qa_path(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A second tiny random QA head, unlike ``tiny_qa_path`` (another seed)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    out = tmp_path_factory.mktemp("other-qa")
    torch.manual_seed(1)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertForQuestionAnswering(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def heads(tiny_qa_path: str, other_qa_path: str) -> tuple[Reader, Reader]:
    return Reader(tiny_qa_path, precision="fp32"), Reader(other_qa_path, precision="fp32")


def _span(start: int, end: int, p: float, logit: float) -> SpanCandidate:
    return SpanCandidate(start, end, math.log(p), 0, 0, logit)


def test_combine_weighs_each_heads_probability_and_a_span_one_head_lacks_counts_zero() -> None:
    first = PairResult([_span(0, 4, 0.6, 5.0), _span(5, 9, 0.2, 3.0)], math.log(0.1))
    second = PairResult([_span(5, 9, 0.7, 8.0), _span(10, 12, 0.1, 2.0)], math.log(0.05))
    got = combine(first, second, 0.75)
    scores = {(c.start, c.end): math.exp(c.score) for c in got.spans}
    assert scores == pytest.approx({(5, 9): 0.25 * 0.2 + 0.75 * 0.7, (0, 4): 0.25 * 0.6, (10, 12): 0.75 * 0.1})
    assert [(c.start, c.end) for c in got.spans] == [(5, 9), (0, 4), (10, 12)]  # best first
    assert math.exp(got.null_score) == pytest.approx(0.25 * 0.1 + 0.75 * 0.05)
    logits = {(c.start, c.end): c.logit for c in got.spans}
    # A head that does not list a span gives its lowest listed logit of the pair.
    assert logits == pytest.approx({(5, 9): 0.25 * 3.0 + 0.75 * 8.0, (0, 4): 0.25 * 5.0 + 0.75 * 2.0,
                                    (10, 12): 0.25 * 3.0 + 0.75 * 2.0})


def test_combine_of_a_pair_the_second_head_did_not_read_keeps_the_first_heads_spans_scaled() -> None:
    first = PairResult([_span(0, 4, 0.6, 5.0)], math.log(0.1))
    got = combine(first, None, 0.75)
    assert math.exp(got.spans[0].score) == pytest.approx(0.25 * 0.6)
    assert got.spans[0].logit == 5.0
    assert math.exp(got.null_score) == pytest.approx(0.25 * 0.1)
    assert combine(first, None, 1.0).spans == []


def test_a_head_that_lists_no_span_leaves_the_logit_to_the_other() -> None:
    first = PairResult([_span(0, 4, 0.6, -7.0)], math.log(0.1))
    got = combine(first, PairResult([], math.log(0.9)), 0.75)
    assert [c.logit for c in got.spans] == [-7.0]
    assert math.exp(got.spans[0].score) == pytest.approx(0.25 * 0.6)
    assert math.exp(got.null_score) == pytest.approx(0.25 * 0.1 + 0.75 * 0.9)


def test_passages_not_reread_keep_the_first_heads_spans_at_its_share(heads: tuple[Reader, Reader]) -> None:
    first, second = heads
    results = first.read_pairs([QUESTION] * len(PASSAGES), PASSAGES)
    best = [max(math.exp(c.score) for c in r.spans) for r in results]
    reread = set(sorted(range(len(PASSAGES)), key=lambda p: -best[p])[:2])
    alone = {(s.passage_index, s.start, s.end): s for s in first.read(QUESTION, PASSAGES, top_n=200)}
    paired = ReaderPair(first, second, weight=0.6, rereads=2).read(QUESTION, PASSAGES, top_n=200)
    assert {s.passage_index for s in paired} == set(range(len(PASSAGES)))
    for span in paired:
        if span.passage_index in reread:
            continue
        own = alone[(span.passage_index, span.start, span.end)]
        assert span.score == pytest.approx(0.4 * own.score) and span.logit == own.logit
        assert span.null_score == pytest.approx(0.4 * own.null_score)
    # A reread passage's spans carry the second head's probability too: its null is the mix of both.
    for p in reread:
        ours = next(s for s in paired if s.passage_index == p)
        theirs = second.read(QUESTION, [PASSAGES[p]], top_n=1)[0]
        mine = next(s for s in alone.values() if s.passage_index == p)
        assert ours.null_score == pytest.approx(0.4 * mine.null_score + 0.6 * theirs.null_score)


def test_weight_zero_reads_as_the_first_head_alone(heads: tuple[Reader, Reader]) -> None:
    first, second = heads
    alone = first.read(QUESTION, PASSAGES, top_n=10)
    paired = ReaderPair(first, second, weight=0.0, rereads=2).read(QUESTION, PASSAGES, top_n=10)
    assert [(s.passage_index, s.start, s.end, s.text) for s in paired] == \
        [(s.passage_index, s.start, s.end, s.text) for s in alone]
    assert [s.score for s in paired] == pytest.approx([s.score for s in alone])
    assert [s.logit for s in paired] == pytest.approx([s.logit for s in alone])


def test_weight_one_answers_only_from_the_passages_reread(heads: tuple[Reader, Reader]) -> None:
    first, second = heads
    results = first.read_pairs([QUESTION] * len(PASSAGES), PASSAGES)
    best = [max(math.exp(c.score) for c in r.spans) for r in results]
    most_promising = max(range(len(PASSAGES)), key=best.__getitem__)
    spans = ReaderPair(first, second, weight=1.0, rereads=1).read(QUESTION, PASSAGES, top_n=20)
    assert spans and {s.passage_index for s in spans} == {most_promising}
    # ... and they are the second head's own spans of that passage.
    own = second.read(QUESTION, [PASSAGES[most_promising]], top_n=20)
    assert [(s.start, s.end) for s in spans] == [(s.start, s.end) for s in own]
    assert [s.score for s in spans] == pytest.approx([s.score for s in own])


def test_read_pairs_has_both_heads_read_every_pair(heads: tuple[Reader, Reader]) -> None:
    first, second = heads
    pair = ReaderPair(first, second, weight=0.5)
    got = pair.read_pairs([QUESTION] * 2, PASSAGES[:2])
    for combined, a, b in zip(got, first.read_pairs([QUESTION] * 2, PASSAGES[:2]),
                              second.read_pairs([QUESTION] * 2, PASSAGES[:2])):
        assert combined == combine(a, b, 0.5)
    assert pair.read("   ", PASSAGES) == [] and pair.read(QUESTION, []) == []


@pytest.mark.parametrize(("weight", "rereads"), [(-0.1, 3), (1.5, 3), (0.5, 0)])
def test_a_bad_weight_or_reread_count_is_refused(heads: tuple[Reader, Reader], weight: float, rereads: int) -> None:
    with pytest.raises(ValueError):
        ReaderPair(*heads, weight=weight, rereads=rereads)


def test_the_searcher_reads_with_the_pair_and_its_own_confidence_fit(
    sample_index: Settings, tiny_qa_path: str, other_qa_path: str, tmp_path: Path
) -> None:
    large = tmp_path / "large"
    shutil.copytree(other_qa_path, large)
    fit = json.loads((Path(__file__).resolve().parents[1] / "search" / "answer_model.json").read_text())
    fit["threshold"] = 0.0123  # the pair's own fit, told apart from the shipped one
    (large / "pair_answer_model.json").write_text(json.dumps(fit))
    settings = sample_index.model_copy(update={"qa_model_path": tiny_qa_path, "large_reader": str(large),
                                               "large_reader_rereads": 2, "precision": "fp32"})
    with Searcher.open(settings) as searcher:
        assert searcher.threshold == 0.0123
        result = searcher.ask(QUESTION, top_k=3, passages=4, threshold=0.0)
        reader = searcher.reader
        assert isinstance(reader, ReaderPair) and reader.rereads == 2
        assert reader.second.model_path == large and searcher.stats()["reader_precision"] == "fp32"
        assert result.answers
        for answer in result.answers:
            assert searcher.document(answer.document_id).text[answer.start:answer.end] == answer.text
    with Searcher.open(sample_index.model_copy(update={"qa_model_path": tiny_qa_path})) as alone:
        assert alone.threshold != 0.0123 and isinstance(alone.reader, Reader)
    # The large head read alone never takes the pair's fit for its own.
    with Searcher.open(sample_index.model_copy(update={"qa_model_path": str(large)})) as large_alone:
        assert large_alone.threshold != 0.0123
    # A pair handed in brings its large head's fit.
    from bertsearch.indexer.index import Index

    pair = ReaderPair(Reader(tiny_qa_path, precision="fp32"), Reader(str(large), precision="fp32"))
    with Searcher(Index.open(sample_index), pair) as handed:
        assert handed.threshold == 0.0123 and handed.reader is pair


def test_a_reread_count_out_of_range_is_a_settings_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(large_reader_rereads=0)


def test_a_large_reader_without_its_own_fit_reads_with_the_qa_heads_and_says_so(
    sample_index: Settings, tiny_qa_path: str, other_qa_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    from bertsearch.search.confidence import answer_model

    settings = sample_index.model_copy(update={"qa_model_path": tiny_qa_path, "large_reader": other_qa_path})
    with caplog.at_level("WARNING"), Searcher.open(settings) as searcher:
        assert searcher.answer_model == answer_model()
    assert "holds no confidence fit" in caplog.text


def test_the_pairs_fit_with_another_first_head_is_used_with_a_warning(
    sample_index: Settings, tiny_qa_path: str, other_qa_path: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    large = tmp_path / "large"
    shutil.copytree(other_qa_path, large)
    shutil.copy(Path(__file__).resolve().parents[1] / "search" / "answer_model.json", large / "pair_answer_model.json")
    with caplog.at_level("WARNING"), Searcher.open(sample_index.model_copy(update={"large_reader": str(large)})):
        pass
    assert "reading first" not in caplog.text  # the shipped head reads first: the fit's own setting
    settings = sample_index.model_copy(update={"qa_model_path": tiny_qa_path, "large_reader": str(large)})
    with caplog.at_level("WARNING"), Searcher.open(settings):
        pass
    assert "made with the shipped QA head reading first" in caplog.text


def test_a_searcher_refuses_no_rereads(sample_index: Settings, other_qa_path: str) -> None:
    from bertsearch.indexer.common.errors import ConfigError
    from bertsearch.indexer.index import Index

    with Index.open(sample_index) as index, pytest.raises(ConfigError, match="at least 1"):
        Searcher(index, large_reader=other_qa_path, rereads=0)
