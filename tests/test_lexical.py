"""The lexical (BM25) index: terms for technical text, held like the FAISS file, hybrid fusion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bertsearch.indexer.index import Index
from bertsearch.indexer.lexical import POINTER_FILE, LexicalIndex
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.terms import lexical_terms, query_terms
from bertsearch.search.retrieval import Hybrid, fuse

DOCS = {
    "ssh.txt": "Disable root login: set PermitRootLogin to no in /etc/ssh/sshd_config and restart sshd.",
    "api.md": "Call the my_handler function, or __init__ of the HttpServer class, on localhost:8080.",
    "cli.rst": "Run bertsearch index --rebuild after changing the model; version 3.11.7 is required.",
    "logs.txt": "Rotated logs are kept for fourteen days, then deleted by the cleanup job.",
}


@pytest.mark.parametrize("text,expected", [
    ("/etc/ssh/sshd_config", ["/etc/ssh/sshd_config", "etc", "ssh", "sshd_config", "sshd", "config"]),
    ("--rebuild", ["--rebuild", "rebuild"]),
    ("my_handler", ["my_handler", "my", "handler"]),
    ("__init__", ["__init__", "init"]),
    ("HttpServer", ["httpserver", "http", "server"]),
    ("localhost:8080", ["localhost:8080", "localhost", "8080"]),
    ("3.11.7", ["3.11.7", "3", "11", "7"]),
])
def test_terms_keep_compounds_whole_and_add_their_parts(text: str, expected: list[str]) -> None:
    assert lexical_terms(text) == expected


def test_a_query_leaves_out_stopwords_unless_nothing_else_is_left() -> None:
    assert query_terms("What is the default size of the buffer?") == ["default", "size", "buffer"]
    # "which" and "use" are words of technical text (shutil.which, "use sort -u"), "not" a meaning
    assert query_terms("Which function should I use if it is not there?") == ["which", "function", "use", "not",
                                                                              "there"]
    assert query_terms("what is it") == ["what", "is", "it"]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def make_settings(tmp_path: Path, db_url: str, tiny_bert_path: str):
    return lambda: Settings(index_dir=tmp_path / "idx", db_url=db_url, model_path=tiny_bert_path)


def _paths(index: Index, scored: list[tuple[int, float]]) -> list[str]:
    return [r.path for r in index.fetch_chunks([i for i, _ in scored])]


@pytest.mark.parametrize("query,path", [
    ("sshd_config", "ssh.txt"), ("PermitRootLogin", "ssh.txt"), ("root login", "ssh.txt"),
    ("--rebuild", "cli.rst"), ("version 3.11.7", "cli.rst"), ("my_handler", "api.md"),
    ("__init__", "api.md"), ("port 8080", "api.md"), ("how long are rotated logs kept", "logs.txt"),
    ("by", "logs.txt"),  # only stopwords: searched as they are
])
def test_lexical_search_finds_the_exact_words(make_settings, docs: Path, query: str, path: str) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(docs)
        assert _paths(index, index.search_lexical(query, 2))[0] == path


def test_the_lexical_index_follows_updates_incrementally_and_is_stamped(make_settings, docs: Path) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(docs)
        build = json.loads((index.index_dir / POINTER_FILE).read_text())["build"]
        (docs / "logs.txt").write_text("Audit records are archived yearly.", encoding="utf-8")
        (docs / "cli.rst").unlink()
        index.update(docs)
        assert json.loads((index.index_dir / POINTER_FILE).read_text())["build"] == build  # updated in place
        assert index.search_lexical("rotated logs", 5) == []
        assert index.search_lexical("--rebuild", 5) == []
        assert _paths(index, index.search_lexical("audit records", 5)) == ["logs.txt"]
        on_disk = LexicalIndex.load(index.index_dir)
        assert (on_disk.generation, on_disk.count) == (index.generation, 3)
        assert index.last_repair is None


@pytest.mark.parametrize("damage", ["missing", "corrupt", "stale"])
def test_a_missing_corrupt_or_stale_lexical_index_is_rebuilt_from_sql(make_settings, docs: Path, damage: str) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(docs)
        expected = _paths(index, index.search_lexical("sshd_config root login", 4))
        folder = index.index_dir / "lexical" / json.loads((index.index_dir / POINTER_FILE).read_text())["build"]
    if damage == "missing":
        (folder.parent.parent / POINTER_FILE).unlink()
    elif damage == "corrupt":
        shutil.rmtree(folder)
        folder.mkdir()
        (folder / "meta.json").write_text("{not json", encoding="utf-8")
    else:  # a copy of an older generation put back
        old = LexicalIndex.build(1, [(999, "sshd_config only here")], None)
        assert old.generation == 1
        shutil.rmtree(folder.parent)
        LexicalIndex.rebuild_on_disk(folder.parent.parent, 1, [(999, "sshd_config only here")])
    with Index.open(make_settings()) as index:
        assert index.last_repair is not None and "lexical index" in index.last_repair
        assert _paths(index, index.search_lexical("sshd_config root login", 4)) == expected
        assert LexicalIndex.load(index.index_dir).generation == index.generation  # the repair was saved


def test_a_path_filter_applies_to_lexical_search(make_settings, docs: Path) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(docs)
        assert _paths(index, index.search_lexical("root login logs", 5, path_glob="*.txt")) != []
        assert set(_paths(index, index.search_lexical("root login logs", 5, path_glob="*.txt"))) <= {"ssh.txt", "logs.txt"}
        assert index.search_lexical("root login", 5, path_glob="*.md") == []


def test_fusion_is_a_convex_combination_of_standardised_scores() -> None:
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    lexical = [(3, 12.0), (4, 6.0), (1, 0.0)]
    only_dense = fuse(dense, lexical, 1.0, 10)
    assert [r.chunk_id for r in only_dense][:3] == [1, 2, 3]
    only_lexical = fuse(dense, lexical, 0.0, 10)
    assert [r.chunk_id for r in only_lexical][:2] == [3, 4]
    # Each list standardised: z = 1.22, 0, -1.22 in both; a chunk missing from a list gets its
    # lowest (-1.22). At w = 0.5: chunks 1 and 3 fuse to 0, chunks 2 and 4 to -0.61; rescaled to [0, 1].
    even = {r.chunk_id: r for r in fuse(dense, lexical, 0.5, 10)}
    assert even[1].score == pytest.approx(1.0) and even[3].score == pytest.approx(1.0)
    assert even[2].score == pytest.approx(0.0) and even[4].score == pytest.approx(0.0)
    leaning = {r.chunk_id: r.score for r in fuse(dense, lexical, 0.7, 10)}
    assert leaning[1] == pytest.approx(1.0) and 0.0 < leaning[3] < leaning[1] and leaning[4] == pytest.approx(0.0)
    assert even[1].ranks == {"dense": 1, "lexical": 3} and even[4].ranks == {"lexical": 2}
    assert len(fuse(dense, lexical, 0.5, 2)) == 2
    assert [r.chunk_id for r in fuse(dense, [], 0.5, 10)] == [1, 2, 3]  # no lexical hit: dense decides


def test_fusion_ranks_every_candidate_on_both_of_its_scores() -> None:
    dense = [(1, 0.9), (2, 0.8)]
    lexical = [(3, 10.0), (1, 2.0)]
    # Without look-ups, chunk 3 gets the dense list's lowest (0.8) and chunk 2 the lexical list's
    # (2.0): chunks 1 and 3 tie, and 1 comes first on its better rank.
    assert [r.chunk_id for r in fuse(dense, lexical, 0.5, 10)] == [1, 3, 2]
    # Looked up: chunk 3 is nearly as close as chunk 1 (0.85) and chunk 2 holds no query word (0.0).
    # z (dense) = 1: 1.22, 2: -1.22, 3: 0; z (BM25) = 3: 1.39, 1: -0.46, 2: -0.93.
    fused = fuse(dense, lexical, 0.5, 10, dense_more={3: 0.85}, lexical_more={2: 0.0})
    assert [r.chunk_id for r in fused] == [3, 1, 2]
    by_id = {r.chunk_id: r for r in fused}
    assert (by_id[3].dense_score, by_id[3].lexical_score) == (0.85, 10.0)
    assert (by_id[2].dense_score, by_id[2].lexical_score) == (0.8, 0.0)
    assert by_id[3].ranks == {"lexical": 1} and by_id[2].ranks == {"dense": 2}  # ranks: who found it


def test_hybrid_search_looks_up_each_retrievers_score_of_what_the_other_found(make_settings, docs: Path) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(docs)
        query = "root login logs"
        vector = index.encoder.encode([query])[0]
        every_dense = dict(index.search(vector, 100))
        every_lexical = dict(index.search_lexical(query, 100))
        found = Hybrid.search(index, vector, query, 1)
        assert len(found.dense) == len(found.lexical) == 1
        (d, _), (l, _) = found.dense[0], found.lexical[0]
        assert d != l  # the tiny random encoder disagrees with BM25 here
        assert found.dense_more == {l: pytest.approx(every_dense[l], abs=1e-5)}
        assert found.lexical_more == {d: pytest.approx(every_lexical.get(d, 0.0))}
        assert {r.chunk_id for r in found.fuse(0.5, 5)} == {d, l}
        assert index.lexical_scores(query, [d, l]) == {d: pytest.approx(every_lexical.get(d, 0.0)),
                                                        l: pytest.approx(every_lexical[l])}
        api = next(r.chunk_id for r in index.fetch_chunks(list(every_dense)) if r.path == "api.md")
        assert api not in every_lexical and index.lexical_scores(query, [api]) == {api: 0.0}  # none of its words


def test_lexical_results_are_the_same_on_sqlite_and_postgresql(tmp_path: Path, docs: Path, tiny_bert_path: str,
                                                               pg_url: str) -> None:
    results = []
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'lite.db'}"), ("postgres", pg_url)):
        with Index.open(Settings(index_dir=tmp_path / name, db_url=url, model_path=tiny_bert_path), create=True) as index:
            index.update(docs)
            scored = index.search_lexical("root login sshd_config logs --rebuild", 4)
            results.append([(p, round(s, 4)) for p, (_, s) in zip(_paths(index, scored), scored)])
    assert results[0] == results[1]


def test_a_request_keeps_its_snapshot_while_a_refresh_swaps_in_the_next(make_settings, docs: Path) -> None:
    with Index.open(make_settings(), create=True) as writer:
        writer.update(docs)
        with Index.open(make_settings()) as reader:
            held = reader.snapshot  # what an in-flight request reads
            (docs / "logs.txt").write_text("Audit records are archived yearly.", encoding="utf-8")
            writer.update(docs)
            assert reader.refresh() is True
            assert reader.snapshot is not held and reader.snapshot.generation == writer.generation
            # the old snapshot still answers from its own generation, whole: FAISS and BM25 alike
            assert held.generation < reader.snapshot.generation
            assert held.lexical.generation == held.generation == held.vectors.generation
            old_hits = reader.search_lexical("rotated logs", 5, snapshot=held)
            assert old_hits and reader.search_lexical("rotated logs", 5) == []
            assert reader.search_lexical("audit records", 5, snapshot=held) == []
