"""The embedded mode: Searcher.search / Searcher.ask over a real index (tiny models: plumbing only)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from bertsearch.indexer.common.errors import IndexNotFound, InvalidQuery
from bertsearch.indexer.index import Index
from bertsearch.indexer.common.settings import Settings
from bertsearch.search import Answer, AskResult, Hit, SearchResult, Searcher
from bertsearch.search.answers import PASSAGE_TEMPERATURE
from bertsearch.search.answers import merge as _merge
from bertsearch.search.answers import passage_weights as _passage_weights

LOW = 0.0  # a threshold every span clears
HIGH = 1.0  # a threshold no span clears


@pytest.fixture
def searcher(sample_index: Settings, tiny_qa_path: str):
    with Searcher.open(sample_index.model_copy(update={"qa_model_path": tiny_qa_path})) as s:
        yield s


def test_search_hits_point_into_their_documents(searcher: Searcher) -> None:
    result = searcher.search("How long are rotated logs kept?", top_k=3)
    assert isinstance(result, SearchResult)
    assert result.query == "How long are rotated logs kept?"
    assert len(result.hits) == 3
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert result.took_ms > 0
    for hit in result.hits:
        document = searcher.document(hit.document_id)
        assert document.path == hit.path
        assert document.text[hit.start:hit.end] == hit.text


def test_search_top_k_larger_than_the_index(searcher: Searcher) -> None:
    assert len(searcher.search("backups", top_k=100).hits) == 5


def test_search_path_glob_filters_documents(searcher: Searcher) -> None:
    hits = searcher.search("logs", top_k=5, path_glob="*.md").hits
    assert {h.path for h in hits} == {"logging.md", "history.md"}
    assert searcher.search("logs", path_glob="nowhere/*").hits == []


@pytest.mark.parametrize(
    ("query", "top_k", "message"),
    [
        ("", 5, "empty"),
        ("   \n", 5, "empty"),
        ("x" * 1001, 5, "too long"),
        ("logs", 0, "top_k"),
        ("logs", 101, "top_k"),
        ("logs", True, "top_k"),
        (None, 5, "string"),
    ],
)
def test_invalid_queries_are_refused(searcher: Searcher, query, top_k, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message) as info:
        searcher.search(query, top_k=top_k)
    from bertsearch.cli.api.errors import status_of

    assert status_of(info.value) == 422  # what the API answers for it
    with pytest.raises(InvalidQuery, match=message):
        searcher.ask(query, top_k=top_k)


def test_query_of_the_maximum_length_is_accepted(searcher: Searcher) -> None:
    assert searcher.search("log " * 250).hits


def test_ask_answers_point_into_their_documents(searcher: Searcher) -> None:
    result = searcher.ask("How long are rotated logs kept?", top_k=4, passages=5, threshold=LOW)
    assert isinstance(result, AskResult)
    assert result.reason is None
    assert 1 <= len(result.answers) <= 4
    assert [a.score for a in result.answers] == sorted((a.score for a in result.answers), reverse=True)
    for answer in result.answers:
        document = searcher.document(answer.document_id)
        assert answer.path == document.path
        assert document.text[answer.start:answer.end] == answer.text
        chunk = searcher.index.fetch_chunks([answer.chunk_id])[0]
        assert answer.context == chunk.text
        assert answer.context_start == chunk.start
        assert 0.0 <= answer.score <= answer.reader_score <= 1.0
        assert answer.context[answer.start - chunk.start:answer.end - chunk.start] == answer.text
        assert chunk.start <= answer.start <= answer.end <= chunk.end


def test_ask_with_nothing_above_the_threshold_says_why(searcher: Searcher) -> None:
    result = searcher.ask("How long are rotated logs kept?", threshold=HIGH)
    assert [a.below_threshold for a in result.answers] == [True]
    assert result.answers[0].confidence < HIGH
    assert "threshold" in result.reason


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_out_of_range_is_refused(searcher: Searcher, threshold: float) -> None:
    with pytest.raises(InvalidQuery, match="threshold"):
        searcher.ask("How long are logs kept?", threshold=threshold)


def test_reader_is_loaded_lazily_and_once(sample_index: Settings, tiny_qa_path: str) -> None:
    with Searcher.open(sample_index.model_copy(update={"qa_model_path": tiny_qa_path})) as searcher:
        searcher.search("logs")
        assert not searcher.reader_loaded
        searcher.ask("logs?", threshold=LOW)
        reader = searcher.reader
        searcher.ask("backups?", threshold=LOW)
        assert searcher.reader is reader


def test_empty_index(tmp_path: Path, db_url: str, tiny_bert_path: str, tiny_qa_path: str) -> None:
    Index.open(Settings(index_dir=tmp_path, db_url=db_url, model_path=tiny_bert_path), create=True).close()
    with Searcher.open(Settings(index_dir=tmp_path, db_url=db_url, qa_model_path=tiny_qa_path)) as searcher:
        assert searcher.search("logs").hits == []
        result = searcher.ask("How long are logs kept?")
        assert result.answers == []
        assert result.reason == "the index holds no documents"
        assert searcher.ask("logs?", path_glob="*.md").reason == "no passage matches the path filter"


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound):
        Searcher.open(tmp_path / "nothing-here")


def test_refresh_serves_a_new_generation(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(Path(__file__).resolve().parent.parent / "samples" / "docs", docs)
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    with Index.open(settings, create=True) as writer:
        writer.update(docs)
        with Searcher.open(Settings(index_dir=tmp_path / "idx")) as searcher:
            assert searcher.search("upgrades", path_glob="upgrade.md").hits == []
            (docs / "upgrade.md").write_text("# Upgrades\n\nUpgrade with acme-ctl upgrade.\n", encoding="utf-8")
            writer.update(docs)
            assert searcher.refresh(min_interval=3600.0) is False  # checked too recently
            assert searcher.refresh() is True
            assert [h.path for h in searcher.search("upgrades", path_glob="upgrade.md").hits] == ["upgrade.md"]
            assert searcher.refresh() is False


def test_answers_never_overlap_in_a_document(
    tmp_path: Path, tiny_bert_path: str, tiny_qa_path: str,
) -> None:
    settings = Settings(index_dir=tmp_path, model_path=tiny_bert_path, chunk_tokens=32, chunk_overlap=16)
    with Index.open(settings, create=True) as index:
        index.update(Path(__file__).resolve().parent.parent / "samples" / "docs")
    with Searcher.open(Settings(index_dir=tmp_path, qa_model_path=tiny_qa_path)) as searcher:
        result = searcher.ask("How long are rotated logs kept?", top_k=100, passages=30, threshold=LOW)
        answers = result.answers
        assert len({a.chunk_id for a in answers}) > 1
        for answer in answers:
            assert searcher.document(answer.document_id).text[answer.start:answer.end] == answer.text
        for i, a in enumerate(answers):
            for b in answers[i + 1:]:
                assert not (a.document_id == b.document_id and a.start < b.end and b.start < a.end), (a, b)


def test_a_rebuild_with_another_model_is_served(tmp_path: Path, tiny_bert_path: str) -> None:
    import torch
    from transformers import BertConfig, BertModel

    other = tmp_path / "other-bert"
    torch.manual_seed(1)
    BertModel(BertConfig.from_pretrained(tiny_bert_path)).save_pretrained(other)
    for name in Path(tiny_bert_path).iterdir():
        if "token" in name.name or name.name == "vocab.txt":
            shutil.copy(name, other / name.name)
    docs = Path(__file__).resolve().parent.parent / "samples" / "docs"
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path), create=True) as index:
        index.update(docs)
    with Searcher.open(Settings(index_dir=tmp_path / "idx")) as searcher:
        assert searcher.search("logs").hits
        before = searcher.index.encoder.model_id
        with Index.open(Settings(index_dir=tmp_path / "idx", model_path=str(other)), rebuild=True) as index:
            index.update(docs)
        assert searcher.refresh() is True
        assert searcher.index.encoder.model_id == searcher.index.params.model_id != before
        assert len(searcher.search("logs").hits) == 5


def _answer(text: str, score: float, start: int, document_id: int = 1, chunk_id: int = 1) -> Answer:
    return Answer(
        text=text, score=score, path="a.md", title="A", document_id=document_id, chunk_id=chunk_id,
        start=start, end=start + len(text), context="", passage_score=0.5, context_start=0, reader_score=score,
    )


def test_merge_keeps_the_best_of_overlapping_answers() -> None:
    first = _answer("14 days", 0.6, start=100, chunk_id=1)
    again = _answer("14 Days.", 0.9, start=100, chunk_id=2)  # the same span seen from the next chunk
    variant = _answer("for 14 days", 0.7, start=96)  # a variant around the better answer
    other = _answer("30 days", 0.5, start=300)  # another place: another answer
    other_doc = _answer("Sunday", 0.4, start=100, document_id=2)
    adjacent = _answer("After", 0.3, start=108)  # touches, does not overlap
    assert _merge([first, again, variant, other, other_doc, adjacent]) == [again, other, other_doc, adjacent]


def test_merge_gives_each_answer_once_from_its_best_place() -> None:
    best = _answer("14 days", 0.9, start=100)
    elsewhere = _answer("The 14 Days.", 0.5, start=300)  # the same answer in another place
    other_doc = _answer("14 days", 0.45, start=100, document_id=2)
    variant = _answer("within 14 days", 0.44, start=93, document_id=2)  # around the dropped one: another answer
    option = _answer("--max-redirs", 0.8, start=500)
    with_argument = _answer("--max-redirs <num>", 0.7, start=40)  # the same option of the same page, with its argument
    other_page = _answer("--max-redirs", 0.65, start=40, document_id=3)  # another page's option is another answer
    other_case = _answer("-T, --print-type", 0.6, start=700)
    lower = _answer("`-t`", 0.55, start=800)  # -t is not -T, quoted or not
    values = [_answer("--color=never", 0.3, start=900), _answer("--color=always", 0.29, start=950)]
    dots = [_answer("...", 0.2, start=1000), _answer("...", 0.1, start=1050)]  # punctuation alone says nothing: kept
    merged = _merge([best, elsewhere, other_doc, variant, option, with_argument, other_page, other_case, lower,
                     *values, *dots])
    assert merged == [best, option, other_page, other_case, lower, variant, *values, *dots]


def test_answer_keys() -> None:
    from bertsearch.search.answers import answer_key

    same = [("\"The 14 Days.\"", "14 days"), ("１４日", "14日"), ("「笔记本」", "笔记本"), ("--bwlimit=RATE", "--bwlimit"),
            ("-v, --verbose", "-v"), ("-J destination", "-J"), ("(-V)", "-V"), ("...", "")]
    assert [answer_key(text) for text, _ in same] == [key for _, key in same]
    differ = [("-T", "-t"), ("-v", "v"), (".git", "git"), ("--color=never", "--color=always"),
              ("-L --max-redirs 0", "-L")]
    assert all(answer_key(a) != answer_key(b) for a, b in differ)


def test_a_reader_answer_inside_an_entry_answer_is_placed_as_the_entry_but_stays_the_readers() -> None:
    from bertsearch.search.answers import _as_entry

    from dataclasses import replace

    reader = replace(_answer("--print-type", 0.9, start=120, chunk_id=7), confidence=0.8)
    entry = replace(_answer("-T, --print-type", 0.4, start=116, chunk_id=6), source="definition", reader_score=0.41)
    placed = _as_entry(reader, [entry])
    assert (placed.text, placed.start, placed.end, placed.chunk_id) == ("-T, --print-type", 116, 132, 6)
    assert (placed.source, placed.confidence, placed.reader_score) == ("reader", 0.8, reader.reader_score)
    elsewhere = replace(entry, document_id=2)
    assert _as_entry(reader, [elsewhere]) is reader  # another document's entry is another answer
    assert _as_entry(entry, [entry]) is entry


def test_passage_weights_favour_the_better_passage() -> None:
    weights = _passage_weights([0.62, 0.57, 0.31])
    assert sum(weights) == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[2]
    assert weights[0] / weights[1] == pytest.approx(math.exp(0.05 / PASSAGE_TEMPERATURE))
    assert _passage_weights([0.4, 0.4]) == [0.5, 0.5]


def test_results_read_as_their_lists(searcher: Searcher) -> None:
    result = searcher.search("logs", top_k=2)
    assert len(result) == 2 and result[0] == result.hits[0] and list(result) == result.hits
    asked = searcher.ask("How long are logs kept?", top_k=2, threshold=LOW)
    assert asked[0].text == asked.answers[0].text and list(asked) == asked.answers
    assert [a.below_threshold for a in searcher.ask("How long are logs kept?", threshold=HIGH)] == [True]


def test_results_round_trip_through_dicts(searcher: Searcher) -> None:
    result = searcher.search("logs", top_k=2)
    assert SearchResult.from_dict(result.to_dict()) == result
    assert Hit.from_dict(result.hits[0].to_dict()) == result.hits[0]
    asked = searcher.ask("How long are logs kept?", threshold=LOW)
    assert AskResult.from_dict(asked.to_dict()) == asked


def test_a_search_behind_a_writer_catches_up_instead_of_dropping_hits(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(Path(__file__).resolve().parent.parent / "samples" / "docs", docs)
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path), create=True) as index:
        index.update(docs)
    with Searcher.open(Settings(index_dir=tmp_path / "idx")) as searcher:
        before = searcher.search("rotated logs backups", top_k=5, mode="lexical")
        generation = searcher.generation
        for path in docs.iterdir():  # every chunk the reader's snapshot knows is replaced
            path.write_text(path.read_text() + "\nChanged.\n")
        with Index.open(Settings(index_dir=tmp_path / "idx")) as writer:
            writer.update(docs)
        after = searcher.search("rotated logs backups", top_k=5, mode="lexical")  # no refresh asked
        assert searcher.generation > generation
        assert len(after.hits) == len(before.hits) > 0
        assert {h.chunk_id for h in after.hits}.isdisjoint({h.chunk_id for h in before.hits})


def test_the_shipped_confidence_model_reads_what_answers_carry() -> None:
    from bertsearch.search.confidence import answer_model, confidence, confidence_features

    fit = answer_model()
    hit = Hit(score=0.5, chunk_id=1, document_id=1, path="a.txt", title="a", text="x", start=0, end=1,
              ranks={"dense": 1, "lexical": 3})
    features = confidence_features(0.6, 0.01, 0.4, hit, span_logit=12.0)
    # every fitted coefficient names a feature an answer has (a missing one would silently count as 0)
    assert set(fit.coefficients) == set(features)
    # across passages, of two spans equally sure within their windows, the one with the higher raw logit wins
    higher = confidence(confidence_features(0.6, 0.01, 0.4, hit, span_logit=14.0))
    assert fit.coefficients["span_logit"] > 0 and higher > confidence(features)
