"""The SQL store (engines, errors, the writer lock) and the FAISS file on their own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from bertsearch.indexer import store
from bertsearch.indexer.common.errors import ConfigError, IndexLocked, StorageError
from bertsearch.indexer.vector_file import VectorFileError, read_generation
from bertsearch.indexer.vectors import VectorIndex


def test_mask_url_hides_the_password():
    assert store.mask_url("postgresql+psycopg://bob:s3cret@db/x") == "postgresql+psycopg://bob:***@db/x"


def test_unparsable_url_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot parse the database URL"):
        store.open_engine("not a url")


def test_unknown_database_type_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown database type"):
        store.open_engine("nosuchdb://host/x")


def test_unreachable_server_is_a_storage_error_with_the_password_masked():
    with pytest.raises(StorageError) as info:
        store.open_engine("postgresql+psycopg://bob:s3cret@127.0.0.1:1/x")
    assert "bob:***@127.0.0.1:1/x" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_sqlite_in_a_missing_folder_is_a_storage_error(tmp_path: Path):
    with pytest.raises(StorageError, match="cannot open the database"):
        store.open_engine(f"sqlite:///{tmp_path}/no/such/folder/meta.db")


def test_sqlite_gets_wal_and_foreign_keys(tmp_path: Path):
    engine = store.open_engine(f"sqlite:///{tmp_path}/meta.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_second_writer_is_refused_and_named(tmp_path: Path):
    with store.writer_lock(tmp_path):
        with pytest.raises(IndexLocked, match=rf"pid {os.getpid()}"):
            with store.writer_lock(tmp_path):
                pass
    with store.writer_lock(tmp_path):  # released: free again
        pass


def test_writer_in_another_process_is_refused(tmp_path: Path):
    code = (
        "import sys, time; from pathlib import Path; from bertsearch.indexer.store import writer_lock\n"
        "with writer_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLocked, match=rf"pid {proc.pid}"):
            with store.writer_lock(tmp_path):
                pass
    finally:
        proc.kill()
        proc.wait()
    with store.writer_lock(tmp_path):  # the lock dies with its holder
        pass


def test_lock_timeout_waits_for_the_holder(tmp_path: Path):
    held = threading.Event()

    def hold() -> None:
        with store.writer_lock(tmp_path):
            held.set()
            time.sleep(0.3)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    began = time.monotonic()
    with store.writer_lock(tmp_path, timeout=5):
        assert time.monotonic() - began >= 0.1
    thread.join()


def test_postgres_writers_sharing_a_database_are_serialised(pg_url: str, tmp_path: Path):
    engine = store.open_engine(pg_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        with store.writer_lock(tmp_path / "a", engine=engine):
            with pytest.raises(IndexLocked, match="another bertsearch writer"):
                with store.writer_lock(tmp_path / "b", engine=engine):
                    pass
        with store.writer_lock(tmp_path / "b", engine=engine):
            pass
    finally:
        engine.dispose()


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_faiss_file_round_trip(tmp_path: Path):
    vi = VectorIndex(8, generation=7)
    vi.add(np.arange(100, 120), _vectors(20))
    vi.save(tmp_path / "v.faiss")
    assert read_generation(tmp_path / "v.faiss") == 7
    back = VectorIndex.load(tmp_path / "v.faiss", 8)
    assert (back.generation, back.count) == (7, 20)
    q = _vectors(20)[3]
    assert back.search(q, 3) == vi.search(q, 3)
    assert back.search(q, 1)[0][0] == 103
    assert [p.name for p in tmp_path.iterdir()] == ["v.faiss"]  # no temp file left behind


@pytest.mark.parametrize("kind", ["hnsw", "hnsw-sq8"])
def test_an_hnsw_file_keeps_its_tombstones_and_finds_what_exact_search_finds(tmp_path: Path, kind: str):
    x = _vectors(3000, dim=32)
    exact = VectorIndex(32, generation=2)
    exact.add(np.arange(3000), x)
    vi = VectorIndex.from_batches(32, 2, [(np.arange(0, 1500), x[:1500]), (np.arange(1500, 3000), x[1500:])],
                                  kind=kind)
    assert vi.kind == kind and vi.count == 3000
    gone = list(range(0, 3000, 7))
    assert vi.remove(gone) == exact.remove(gone) == len(gone)
    assert vi.tombstones == len(gone) and vi.count == exact.count
    vi.save(tmp_path / "v.faiss")
    back = VectorIndex.load(tmp_path / "v.faiss", 32)
    assert (back.kind, back.count, back.tombstones) == (kind, exact.count, len(gone))
    queries = _vectors(50, dim=32, seed=3)
    found = 0
    for q in queries:
        hits = [i for i, _ in back.search(q, 10)]
        assert not set(hits) & set(gone)  # removed vectors never come back
        found += len(set(hits) & {i for i, _ in exact.search(q, 10)})
    assert found / (10 * len(queries)) >= 0.9  # recall@10 against exact search


def test_a_file_of_the_previous_format_is_rebuilt_not_read(tmp_path: Path):
    path = tmp_path / "v.faiss"
    VectorIndex(8, generation=1).save(path)
    data = bytearray(path.read_bytes())
    data[:8] = b"BSFAISS2"
    path.write_bytes(bytes(data))
    with pytest.raises(VectorFileError, match="an older format"):
        VectorIndex.load(path, 8)


def test_a_thread_cap_gives_the_same_hits_and_is_undone_after_the_search():
    import threading

    import faiss

    vi = VectorIndex(8)
    vi.add(np.arange(5000), _vectors(5000))
    q = _vectors(1, seed=1)[0]
    default = faiss.omp_get_max_threads()
    assert vi.search(q, 10, threads=1) == vi.search(q, 10)
    assert faiss.omp_get_max_threads() == default
    seen: list[int] = []

    def in_a_worker() -> None:  # a server's request thread, with its own cap
        faiss.omp_set_num_threads(3)
        vi.search(q, 10, threads=1)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=in_a_worker)
    worker.start()
    worker.join()
    assert seen == [3] and faiss.omp_get_max_threads() == default


@pytest.mark.parametrize("damage", ["missing", "truncated", "flipped", "garbage"])
def test_damaged_faiss_file_is_detected(tmp_path: Path, damage: str):
    path = tmp_path / "v.faiss"
    vi = VectorIndex(8, generation=1)
    vi.add(np.arange(10), _vectors(10))
    vi.save(path)
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    else:
        path.write_bytes(b"\x00" * 200)
    with pytest.raises(VectorFileError):
        VectorIndex.load(path, 8)


def test_faiss_file_of_another_dimension_is_refused(tmp_path: Path):
    VectorIndex(8).save(tmp_path / "v.faiss")
    with pytest.raises(VectorFileError, match="dimension"):
        VectorIndex.load(tmp_path / "v.faiss", 16)


def test_search_within_a_subset_is_exact(tmp_path: Path):
    vi = VectorIndex(8)
    x = _vectors(1000)
    vi.add(np.arange(1000), x)
    subset = np.array([5, 500, 999])
    hits = vi.search(x[0], 10, subset=subset)
    assert sorted(i for i, _ in hits) == [5, 500, 999]
    expected = sorted(((int(i), float(x[0] @ x[i])) for i in subset), key=lambda h: -h[1])
    assert [i for i, _ in hits] == [i for i, _ in expected]
    assert np.allclose([s for _, s in hits], [s for _, s in expected], atol=1e-5)
    assert vi.remove([5, 6, 12345]) == 2
    assert vi.count == 998


@pytest.mark.parametrize("kind", ["flat", "hnsw", "hnsw-sq8"])
def test_scores_by_id_are_what_a_search_scores_and_skip_removed_chunks(kind: str):
    x = _vectors(600, dim=32)
    base = VectorIndex.from_batches(32, 1, [(np.arange(1, 501), x[1:501])], kind=kind)
    # The next generation as a reader holds it: the base shared, chunk 7 removed, 501-599 in the delta.
    vi = base.advanced(2, np.arange(501, 600), x[501:600], np.array([7]))
    q = x[0] / np.linalg.norm(x[0])
    searched = dict(vi.search(q, 599, ef_search=2000))
    wanted = [3, 7, 250, 550, 599, 12345]
    scores = vi.scores(q, wanted)
    assert sorted(scores) == [3, 250, 550, 599]  # removed and unknown chunks are left out
    tolerance = 1e-5 if kind != "hnsw-sq8" else 2e-2  # 8-bit codes score approximately either way
    for chunk_id, score in scores.items():
        assert score == pytest.approx(float(x[chunk_id] @ q), abs=tolerance)
        if chunk_id in searched:
            assert score == pytest.approx(searched[chunk_id], abs=1e-4)
    assert vi.scores(q, []) == {}


def test_unwritable_faiss_file_is_a_storage_error(tmp_path: Path):
    with pytest.raises(StorageError, match="cannot write the FAISS file"):
        VectorIndex(8).save(tmp_path / "missing-folder" / "v.faiss")


def test_the_ef_search_setting_defaults_to_the_measured_value() -> None:
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.faiss_kinds import DEFAULT_EF_SEARCH, HNSW_M

    assert Settings().ef_search == DEFAULT_EF_SEARCH == 384 and HNSW_M == 48
