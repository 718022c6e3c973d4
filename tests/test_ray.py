"""`bertsearch index --ray` on a real local Ray cluster (started by the run, as a user's first try):
the same documents, chunks and vectors as a local run, and a killed run that reopens consistent
and finishes. Each run is a real `bertsearch` process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _server import bertsearch_command
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index
from bertsearch.indexer.models import ChunkRow, Document

SAMPLE_DOCS = Path(__file__).resolve().parents[1] / "samples" / "docs"
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()


def _index(docs: Path, index_dir: Path, model: str, *extra: str, timeout: float = 600) -> dict:
    run = subprocess.run([*bertsearch_command(), "index", str(docs), "--index", str(index_dir), "--model", model,
                          "--precision", "fp32", "--quiet", "--json", *extra],
                         capture_output=True, text=True, timeout=timeout, env={**os.environ, "RAY_ADDRESS": ""})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _contents(index_dir: Path) -> dict[str, list[tuple[int, int, str, np.ndarray]]]:
    """Every document's chunks: offsets, text, vector; and the index is consistent (FAISS = SQL)."""
    with Index.open(Settings(index_dir=index_dir)) as index:
        info = index.info()
        assert info["chunks"] == info["faiss_vectors"] == info["lexical_chunks"]
        out: dict[str, list] = {}
        with index.transaction() as s:
            for path, start, end, text, blob in s.query(Document.path, ChunkRow.start, ChunkRow.end, ChunkRow.text,
                                                        ChunkRow.vector).join(ChunkRow).order_by(
                                                            Document.path, ChunkRow.ordinal):
                out.setdefault(path, []).append((start, end, text, np.frombuffer(blob, dtype="<f4")))
            assert set(index.vectors.ids().tolist()) == set(s.scalars(s.query(ChunkRow.id).statement))
    return out


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for path in a:
        assert [c[:3] for c in a[path]] == [c[:3] for c in b[path]], path
        for (*_, u), (*_, v) in zip(a[path], b[path]):
            assert float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))) >= 0.9999


@pytest.mark.slow
def test_ray_indexes_what_a_local_run_indexes(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    local = _index(docs, tmp_path / "local", tiny_bert_path)
    distributed = _index(docs, tmp_path / "ray", tiny_bert_path, "--ray", "--ray-actors", "2")
    for key in ("added", "updated", "unchanged", "removed", "failed", "chunks_written", "documents", "chunks"):
        assert distributed[key] == local[key], key
    assert [f["path"] for f in distributed["failures"]] == [f["path"] for f in local["failures"]] == ["broken.pdf"]
    _same(_contents(tmp_path / "ray"), _contents(tmp_path / "local"))
    # Incremental with Ray too: one file changed, one removed.
    (docs / "logging.md").write_text("# Logging\n\nLogs are shipped to the collector every minute.\n")
    (docs / "backups.txt").unlink()
    again = _index(docs, tmp_path / "ray", tiny_bert_path, "--ray")
    assert (again["updated"], again["removed"], again["added"]) == (1, 1, 0)
    _index(docs, tmp_path / "local", tiny_bert_path)
    _same(_contents(tmp_path / "ray"), _contents(tmp_path / "local"))


@pytest.mark.slow
def test_ray_workers_encode_with_the_chunk_header_of_the_index(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    _index(docs, tmp_path / "local", tiny_bert_path, "--chunk-header", "title")
    _index(docs, tmp_path / "ray", tiny_bert_path, "--chunk-header", "title", "--ray", "--ray-actors", "2")
    titled = _contents(tmp_path / "local")
    _same(_contents(tmp_path / "ray"), titled)
    _index(docs, tmp_path / "plain", tiny_bert_path, "--chunk-header", "none")
    plain = _contents(tmp_path / "plain")
    cosines = [float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
               for path in plain for (*_, u), (*_, v) in zip(plain[path], titled[path])]
    assert min(cosines) < 0.9999  # the header reached the workers: their vectors are not the plain ones


@pytest.mark.slow
def test_a_killed_ray_run_reopens_consistent_and_finishes(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(240):  # several commits of 512 chunks
        (docs / f"f{i:03d}.txt").write_text(" ".join(rng.choice(WORDS, 300)) + ".\n")
    index_dir = tmp_path / "idx"
    process = subprocess.Popen([*bertsearch_command(), "index", str(docs), "--index", str(index_dir), "--model",
                                tiny_bert_path, "--precision", "fp32", "--quiet", "--ray", "--ray-actors", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "RAY_ADDRESS": ""}, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if _committed_documents(index_dir / "meta.db") > 0:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)  # the driver, mid-run
        process.wait(timeout=30)
    finally:
        # The local Ray cluster the killed driver started (its own process group) goes with it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    partial = _contents(index_dir)
    assert 0 < len(partial) < 240
    finished = _index(docs, index_dir, tiny_bert_path, "--ray")
    assert finished["documents"] == 240 and finished["added"] == 240 - len(partial)
    _index(docs, tmp_path / "local", tiny_bert_path)
    _same(_contents(index_dir), _contents(tmp_path / "local"))


def _committed_documents(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_without_ray_the_option_says_how_to_install_it(tmp_path: Path, tiny_bert_path: str) -> None:
    code = ("import sys; sys.modules['ray'] = None\n"
            "from bertsearch.cli.main import main\n"
            f"sys.argv = ['bertsearch', 'index', {str(SAMPLE_DOCS)!r}, '--index', {str(tmp_path / 'idx')!r}, '--ray']\n"
            "main()\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "Error: --ray needs Ray: pip install 'bertsearch[ray]'" in run.stderr + run.stdout
    assert not (tmp_path / "idx").exists()
