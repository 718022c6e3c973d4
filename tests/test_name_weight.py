"""The hybrid fusion's name weight: a question that names a document lifts that document's chunks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index
from bertsearch.search import Searcher
from bertsearch.search.confidence import AnswerModel, answer_model, load_answer_model
from bertsearch.search.retrieval import fuse, named_chunks
from bertsearch.search.training import fit_names

# alpha's text holds every word of the question; beta, the page the question names, holds none
DOCS = {
    "alpha.txt": "The frobnicate setting picks the colour. The frobnicate setting colour is blue by default.\n",
    "beta.txt": "Widgets are painted green unless told otherwise.\n",
}
QUESTION = "Which colour does the frobnicate setting of beta pick?"


@dataclasses.dataclass(frozen=True)
class _Chunk:
    chunk_id: int
    document_id: int
    path: str


def test_fuse_adds_the_name_weight_to_the_named_chunks_only() -> None:
    dense = [(1, 0.9), (2, 0.5), (3, 0.4)]
    lexical = [(1, 9.0), (3, 1.0)]
    plain = fuse(dense, lexical, 0.6, 3)
    assert [r.chunk_id for r in plain] == [1, 2, 3]
    assert fuse(dense, lexical, 0.6, 3, named=frozenset({3}), name_weight=0.0) == plain  # weight 0: nothing changes
    lifted = fuse(dense, lexical, 0.6, 3, named=frozenset({3}), name_weight=10.0)
    assert [r.chunk_id for r in lifted] == [3, 1, 2]
    assert lifted[0].score == 1.0 and lifted[0].ranks == {"dense": 3, "lexical": 2}  # each retriever's own rank


def test_named_chunks_are_those_of_the_documents_the_question_names() -> None:
    records = [_Chunk(1, 10, "man/id.1.txt"), _Chunk(2, 11, "man/perlfunc.7.txt"), _Chunk(3, 10, "man/id.1.txt")]
    assert named_chunks("How do I list all group IDs of a user with id?", records) == {1, 3}
    assert named_chunks("How do I list all group IDs of a user?", records) == frozenset()


def test_an_answer_model_without_a_name_weight_adds_nothing(tmp_path: Path) -> None:
    data = json.loads(json.dumps(dataclasses.asdict(answer_model())))
    data.pop("name_weight")
    (tmp_path / "old.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_answer_model(tmp_path / "old.json").name_weight == 0.0
    data["name_weight"] = 0.75
    (tmp_path / "new.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_answer_model(tmp_path / "new.json").name_weight == 0.75


@pytest.fixture(scope="module")
def named_index(tmp_path_factory: pytest.TempPathFactory, tiny_bert_path: str) -> Settings:
    root = tmp_path_factory.mktemp("named")
    for name, text in DOCS.items():
        (root / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "docs" / name).write_text(text, encoding="utf-8")
    settings = Settings(index_dir=root / "idx", model_path=tiny_bert_path)
    with Index.open(settings, create=True) as index:
        index.update(root / "docs")
    return settings


def _fit(name_weight: float) -> AnswerModel:
    # lexical alone (dense weight 0): the tiny random encoder decides nothing
    return dataclasses.replace(answer_model(), dense_weight=0.0, name_weight=name_weight)


def test_hybrid_search_lifts_the_page_the_question_names(named_index: Settings) -> None:
    with Searcher.open(named_index, answer_model=_fit(0.0)) as searcher:
        assert [h.path for h in searcher.search(QUESTION, top_k=2).hits] == ["alpha.txt", "beta.txt"]
        assert [h.path for h in searcher.search(QUESTION, top_k=2, mode="lexical").hits] == ["alpha.txt"]
    with Searcher.open(named_index, answer_model=_fit(5.0)) as searcher:
        hits = searcher.search(QUESTION, top_k=2).hits
        assert [h.path for h in hits] == ["beta.txt", "alpha.txt"]
        assert "lexical" not in hits[0].ranks  # found by the dense list alone: none of its words
        # the other modes fuse nothing and read no name
        assert [h.path for h in searcher.search(QUESTION, top_k=2, mode="lexical").hits] == ["alpha.txt"]


def test_fit_names_keeps_the_weight_that_ranks_the_named_pages_first(named_index: Settings, tmp_path: Path) -> None:
    with Index.open(named_index) as index:
        result = fit_names.fit_name_weight(index, [(QUESTION, "beta.txt")], dense_weight=0.0, depth=10,
                                           grid=(0.0, 1.0, 3.0, 4.0))
    # two candidates, lexical alone: standardised, alpha is 2 ahead; a tie goes to the better rank
    assert result["questions"] == 1
    assert result["table"]["0.0"] == {"mrr@10": 0.5, "page_top1": 0.0, "page_top5": 1.0}
    assert result["table"]["1.0"]["page_top1"] == 0.0
    assert result["table"]["3.0"] == result["table"]["4.0"] == {"mrr@10": 1.0, "page_top1": 1.0, "page_top5": 1.0}
    assert result["name_weight"] == 3.0  # of the best, the smallest


def test_fit_names_writes_the_weight_into_a_copy_of_the_answer_model(
        named_index: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the held-out written pairs of the documents the index holds: beta.txt is in the held-out share
    # of a fraction of 1.0 (every document), so its question is read
    written = tmp_path / "w.json"
    written.write_text(json.dumps({"questions": [
        {"q": QUESTION, "answer": "green", "evidence": "painted green", "path": "beta.txt"},
        {"q": "What is not indexed?", "answer": "x", "evidence": "x", "path": "gamma.txt"}]}), encoding="utf-8")
    base = tmp_path / "in.json"
    base.write_text(json.dumps(dataclasses.asdict(_fit(0.0))), encoding="utf-8")
    out = tmp_path / "out.json"
    assert fit_names.main([str(written), "--index-dir", str(named_index.index_dir), "--model",
                           str(named_index.model_path), "--answer-model", str(base), "--out", str(out),
                           "--holdout-frac", "1.0"]) == 0
    fitted = json.loads(out.read_text(encoding="utf-8"))
    table = fitted["fitted"]["name_weight"]["table"]
    assert list(table) == [str(w) for w in fit_names.GRID] and table["0.0"]["page_top1"] == 0.0
    assert fitted["name_weight"] == max(fit_names.GRID, key=lambda w: (table[str(w)]["mrr@10"], -w))
    assert "1 written questions" in fitted["fitted"]["name_weight"]["data"]  # gamma.txt is not indexed
    assert {k: v for k, v in fitted.items() if k not in ("name_weight", "fitted")} == \
        {k: v for k, v in json.loads(base.read_text()).items() if k not in ("name_weight", "fitted")}
    assert load_answer_model(out).name_weight == fitted["name_weight"]
    # --fit-dense: the dense weight is fitted too, and the one it replaces recorded
    both = tmp_path / "both.json"
    assert fit_names.main([str(written), "--index-dir", str(named_index.index_dir), "--model",
                           str(named_index.model_path), "--answer-model", str(base), "--out", str(both),
                           "--holdout-frac", "1.0", "--fit-dense"]) == 0
    refit = json.loads(both.read_text(encoding="utf-8"))
    record = refit["fitted"]["name_weight"]
    assert record["dense_weight_before"] == 0.0 and refit["dense_weight"] == record["dense_weight"]
    assert len(record["dense_table"]) == 21 and load_answer_model(both).dense_weight == refit["dense_weight"]
    best = max(v["mrr@10"] for v in record["dense_table"].values())
    assert record["dense_table"][str(refit["dense_weight"])]["mrr@10"] == best


def test_fit_names_can_fit_the_dense_weight_with_the_name_weight(named_index: Settings) -> None:
    with Index.open(named_index) as index:
        # from dense 0: the best pairs rank beta first; of them, the dense weight nearest 0, the smaller name weight
        joint = fit_names.fit_name_weight(index, [(QUESTION, "beta.txt")], dense_weight=0.0, depth=10,
                                          grid=(0.0, 3.0), dense_grid=(0.0, 1.0))
        assert (joint["dense_weight"], joint["name_weight"]) == (0.0, 3.0)
        assert list(joint["dense_table"]) == ["0.0", "1.0"]
        assert joint["dense_table"]["0.0"] == {"mrr@10": 1.0, "page_top1": 1.0, "page_top5": 1.0, "name_weight": 3.0}
        # the name weights' table is the one at the chosen dense weight, as a fit at that weight alone gives it
        alone = fit_names.fit_name_weight(index, [(QUESTION, "beta.txt")], dense_weight=0.0, depth=10, grid=(0.0, 3.0))
        assert joint["table"] == alone["table"] and "dense_weight" not in alone
        # from dense 1: the dense list alone decides with no name weight; the random encoder's order says which
        from_one = fit_names.fit_name_weight(index, [(QUESTION, "beta.txt")], dense_weight=1.0, depth=10,
                                             grid=(0.0, 3.0), dense_grid=(0.0, 1.0))
    with Searcher.open(named_index) as searcher:
        dense_first = searcher.search(QUESTION, top_k=1, mode="dense").hits[0].path
    assert from_one["dense_weight"] == 1.0
    assert from_one["name_weight"] == (0.0 if dense_first == "beta.txt" else 3.0)


def test_fit_names_ranks_each_question_over_its_own_candidates(tmp_path: Path, tiny_bert_path: str) -> None:
    # four pages, each with a word no other has: lexical alone puts each question's page first, so
    # every weight ranks all four first (a fit that read one question's candidates for another's would not)
    words = ("quokka", "narwhal", "axolotl", "pangolin")
    for word in words:
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / f"{word}.txt").write_text(f"The {word} lives far away.\n", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    with Index.open(settings, create=True) as index:
        index.update(tmp_path / "docs")
        result = fit_names.fit_name_weight(index, [(f"Where does the {w} live?", f"{w}.txt") for w in words],
                                           dense_weight=0.0, depth=1, grid=(0.0, 1.0))
    assert result["questions"] == 4
    assert result["table"]["0.0"] == result["table"]["1.0"] == {"mrr@10": 1.0, "page_top1": 1.0, "page_top5": 1.0}
