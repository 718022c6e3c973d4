"""A reload costs what changed: a reader brings its snapshot forward with the chunks added and
removed since (SQL's removal log), sharing the FAISS base; the poll reads one row; the removal
log is pruned behind the FAISS file, and a reader further behind loads the generation whole.

Every reader is checked against a fresh full load of the same generation: same ids, same hits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, func, select

from bertsearch.indexer import upkeep
from bertsearch.indexer import snapshot as snapshot_module
from bertsearch.indexer.encoder import Encoder
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index
from bertsearch.indexer.models import ChunkRemoval, ChunkRow
from bertsearch.indexer.vector_file import read_generation

# Every test here runs with an exact and with an approximate index.
pytestmark = pytest.mark.usefixtures("index_kind")

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()


@pytest.fixture(scope="module")
def encoder(tiny_bert_path: str) -> Encoder:
    return Encoder(tiny_bert_path, precision="fp32")


@pytest.fixture
def settings(tmp_path: Path, db_url: str, tiny_bert_path: str) -> Settings:
    return Settings(index_dir=tmp_path / "idx", db_url=db_url, model_path=tiny_bert_path,
                    chunk_tokens=32, chunk_overlap=4)


def _text(seed: int, n_words: int = 60) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words)) + "."


def _write(root: Path, name: str, seed: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(_text(seed), encoding="utf-8")


def _same_as_a_full_load(reader: Index, settings: Settings, encoder: Encoder) -> None:
    """The reader's snapshot holds exactly the chunks SQL holds at its generation, and ranks them as
    an exact search over the vectors read from SQL does."""
    with reader.transaction() as s:
        rows = s.execute(select(ChunkRow.id, ChunkRow.vector).order_by(ChunkRow.id)).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
    assert sorted(reader.vectors.ids().tolist()) == ids.tolist()
    assert reader.vectors.count == len(ids) == reader.info()["chunks"]
    rng = np.random.default_rng(0)
    for _ in range(5):
        query = rng.standard_normal(matrix.shape[1]).astype(np.float32)
        query /= np.linalg.norm(query)
        scores = matrix @ query
        best = np.argsort(-scores, kind="stable")[:10]
        ours = reader.search(query, 10)
        np.testing.assert_allclose([s for _, s in ours], scores[best], rtol=1e-4, atol=1e-6)
        assert {i for i, _ in ours} == set(ids[best].tolist())


def test_a_reader_applies_what_changed_and_shares_the_rest(tmp_path: Path, settings: Settings, encoder: Encoder):
    root = tmp_path / "docs"
    for i in range(8):
        _write(root, f"d{i}.txt", i)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
    reader = Index.open(settings, encoder=encoder)
    try:
        before = reader.snapshot
        base = before.vectors._index
        held = sorted(before.vectors.ids().tolist())
        # One document changed, one removed, one added: a new generation.
        _write(root, "d1.txt", 101)
        (root / "d2.txt").unlink()
        _write(root, "d8.txt", 108)
        with Index.open(settings, encoder=encoder) as writer:
            summary = writer.update(root)
            assert (summary.added, summary.updated, summary.removed) == (1, 1, 1)
            with writer.transaction() as s:
                logged = s.scalar(select(func.count()).select_from(ChunkRemoval))
        assert logged > 0
        assert reader.refresh()
        after = reader.snapshot
        assert after.vectors._index is base  # shared, not copied or reread
        assert after.vectors.delta_count > 0 and after.repaired is None
        _same_as_a_full_load(reader, settings, encoder)
        # The snapshot a request held is untouched: its generation, its chunks.
        assert before.generation < after.generation
        assert sorted(before.vectors.ids().tolist()) == held != sorted(after.vectors.ids().tolist())
        # Two more generations on top of the delta.
        for step in range(2):
            _write(root, f"d{3 + step}.txt", 200 + step)
            with Index.open(settings, encoder=encoder) as writer:
                writer.update(root)
            assert reader.refresh()
            assert reader.vectors._index is base
            _same_as_a_full_load(reader, settings, encoder)
    finally:
        reader.close()


def test_the_poll_reads_one_row(tmp_path: Path, settings: Settings, encoder: Encoder):
    root = tmp_path / "docs"
    _write(root, "a.txt", 1)
    with Index.open(settings, create=True, encoder=encoder) as index:
        index.update(root)
    with Index.open(settings, encoder=encoder) as reader:
        statements: list[str] = []
        event.listen(reader._engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *args: statements.append(statement))
        assert reader.refresh() is False
        assert len(statements) == 1, statements
        assert "FROM index_state" in statements[0] and "count(" not in statements[0].lower()


def test_a_delta_past_its_bound_loads_the_generation_whole(tmp_path: Path, settings: Settings, encoder: Encoder,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(snapshot_module, "MAX_DELTA", 3)
    root = tmp_path / "docs"
    _write(root, "a.txt", 1)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
    with Index.open(settings, encoder=encoder) as reader:
        base = reader.vectors._index
        for i in range(3):
            _write(root, f"new{i}.txt", 10 + i)  # several chunks each: past the bound
        with Index.open(settings, encoder=encoder) as writer:
            writer.update(root)
        assert reader.refresh()
        assert reader.vectors._index is not base and reader.vectors._delta is None
        _same_as_a_full_load(reader, settings, encoder)


def test_the_removal_log_is_pruned_behind_the_faiss_file(tmp_path: Path, settings: Settings, encoder: Encoder,
                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(upkeep, "REMOVALS_KEPT", 1)
    monkeypatch.setattr(upkeep, "SAVE_AFTER", 0)  # every run rewrites the FAISS file
    root = tmp_path / "docs"
    for i in range(3):
        _write(root, f"d{i}.txt", i)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
    reader = Index.open(settings, encoder=encoder)  # stays behind while the log is pruned
    try:
        for step in range(4):
            _write(root, "d0.txt", 50 + step)
            with Index.open(settings, encoder=encoder) as writer:
                writer.update(root)  # saves the FAISS file, then prunes the log behind it
        with Index.open(settings, encoder=encoder) as writer:
            params = writer.params
            with writer.transaction() as s:
                oldest = s.scalar(select(func.min(ChunkRemoval.generation)))
            assert params.removals_from is not None and params.removals_from > reader.generation
            assert oldest is None or oldest > params.removals_from
        # The reader is behind the log: it loads the generation whole (the file, then the log).
        assert reader.refresh()
        assert reader.vectors._delta is None  # loaded whole: no delta beside the base
        _same_as_a_full_load(reader, settings, encoder)
    finally:
        reader.close()


def test_a_small_run_on_an_index_does_not_rewrite_the_faiss_file(tmp_path: Path, settings: Settings,
                                                                 encoder: Encoder):
    root = tmp_path / "docs"
    for i in range(6):
        _write(root, f"d{i}.txt", i)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
        path = writer.vectors_path
    written = path.stat().st_mtime_ns, read_generation(path)
    _write(root, "d0.txt", 99)
    (root / "d1.txt").unlink()
    with Index.open(settings, encoder=encoder) as writer:
        writer.update(root)
        generation = writer.generation
    assert (path.stat().st_mtime_ns, read_generation(path)) == written < (written[0], generation)
    # A new reader loads the file and brings it forward from SQL: the same as a rebuild.
    with Index.open(settings, encoder=encoder) as reader:
        assert reader.last_repair is None and reader.generation == generation
        _same_as_a_full_load(reader, settings, encoder)
        with reader.transaction() as s:
            assert set(reader.vectors.ids().tolist()) == set(s.scalars(select(ChunkRow.id)))


def test_a_rebuild_is_loaded_whole_by_readers(tmp_path: Path, settings: Settings, encoder: Encoder):
    root = tmp_path / "docs"
    for i in range(3):
        _write(root, f"d{i}.txt", i)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
    with Index.open(settings, encoder=encoder) as reader:
        old_ids = set(reader.vectors.ids().tolist())
        with Index.open(settings, rebuild=True, encoder=encoder) as writer:
            writer.update(root)
            with writer.transaction() as s:
                assert s.scalar(select(func.count()).select_from(ChunkRemoval)) == 0  # nothing logged
                new_ids = set(s.scalars(select(ChunkRow.id)))
        assert reader.refresh()
        assert not old_ids & new_ids and set(reader.vectors.ids().tolist()) == new_ids
        _same_as_a_full_load(reader, settings, encoder)


def test_auto_switches_to_hnsw_as_the_index_grows_and_a_setting_changes_it_back(
        tmp_path: Path, settings: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch):
    from click.testing import CliRunner

    from bertsearch.cli.main import cli
    from bertsearch.indexer import faiss_kinds

    monkeypatch.delenv("BERTSEARCH_INDEX_TYPE")
    monkeypatch.setattr(faiss_kinds, "AUTO_HNSW_FROM", 20)
    settings = Settings(**{**settings.model_dump(), "db_url": settings.resolved_db_url(), "index_type": "auto"})
    root = tmp_path / "docs"
    _write(root, "a.txt", 1)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
        assert writer.info()["index_type"] == "flat"  # a few chunks: exact
    for i in range(8):
        _write(root, f"more{i}.txt", 10 + i)
    with Index.open(settings, encoder=encoder) as writer:
        writer.update(root)
        info = writer.info()
        assert info["chunks"] >= 20 and info["index_type"] == "hnsw" and info["index_type_setting"] == "auto"
    with Index.open(settings, encoder=encoder) as reader:
        assert reader.vectors.kind == "hnsw" and reader.last_repair is None  # read from the saved file
        _same_as_a_full_load(reader, settings, encoder)
    # A reader may not ask for another type; `bertsearch index --index-type` changes it, re-encoding nothing.
    with pytest.raises(Exception, match="--index-type flat"):
        Index.open(settings.model_copy(update={"index_type": "flat"}))
    args = ["index", str(root), "--index", str(settings.index_dir), "--db", settings.resolved_db_url(),
            "--model", str(settings.model_path), "--chunk-tokens", "32", "--chunk-overlap", "4", "--quiet", "--json"]
    result = CliRunner().invoke(cli, [*args, "--index-type", "flat"])
    assert result.exit_code == 0, result.output
    assert '"chunks_written": 0' in result.output
    with Index.open(Settings(index_dir=settings.index_dir, db_url=settings.resolved_db_url())) as reader:
        assert reader.vectors.kind == "flat" and reader.params.index_type == "flat"
        _same_as_a_full_load(reader, settings, encoder)


def test_hnsw_tombstones_are_filtered_and_rebuilt_when_they_pile_up(tmp_path: Path, settings: Settings,
                                                                   encoder: Encoder, monkeypatch: pytest.MonkeyPatch):
    from bertsearch.indexer import vectors as vectors_module

    monkeypatch.setenv("BERTSEARCH_INDEX_TYPE", "hnsw")
    monkeypatch.setattr(vectors_module, "REBUILD_TOMBSTONES_MIN", 1)
    monkeypatch.setattr(vectors_module, "REBUILD_TOMBSTONES", 0.5)
    settings = Settings(**{**settings.model_dump(), "db_url": settings.resolved_db_url(), "index_type": "hnsw"})
    root = tmp_path / "docs"
    for i in range(6):
        _write(root, f"d{i}.txt", i)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
        total = writer.vectors.count
        (root / "d0.txt").unlink()
        writer.update(root)
        stones = writer.vectors.tombstones
        assert 0 < stones <= total // 2  # removed chunks stay in the graph, filtered out
        _same_as_a_full_load(writer, settings, encoder)
        for i in range(1, 4):
            (root / f"d{i}.txt").unlink()
        writer.update(root)  # past half: the graph is rebuilt from SQL at the save
        assert writer.vectors.tombstones == 0 and writer.vectors.kind == "hnsw"
        _same_as_a_full_load(writer, settings, encoder)


def test_a_request_may_set_ef_search_within_limits(tmp_path: Path, settings: Settings, encoder: Encoder):
    from fastapi.testclient import TestClient

    from bertsearch.cli.api import create_app
    from bertsearch.indexer.common.errors import InvalidQuery
    from bertsearch.search import Searcher

    root = tmp_path / "docs"
    for i in range(4):
        _write(root, f"d{i}.txt", i)
    with Index.open(settings, create=True, encoder=encoder) as writer:
        writer.update(root)
    with Searcher.open(settings) as searcher:
        wide = searcher.search("alpha bravo", top_k=3, mode="dense", ef_search=1024)
        assert [h.chunk_id for h in wide.hits] == [h.chunk_id for h in searcher.search("alpha bravo", 3, mode="dense").hits]
        assert searcher.search("alpha bravo", top_k=3, mode="dense", ef_search=1).hits
        for bad in (0, 1025, 2.5):
            with pytest.raises(InvalidQuery, match="ef_search"):
                searcher.search("alpha", ef_search=bad)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        assert client.post("/search", json={"query": "alpha", "ef_search": 32}).status_code == 200
        refused = client.post("/search", json={"query": "alpha", "ef_search": 5000})
        assert refused.status_code == 422 and "detail" in refused.json()
