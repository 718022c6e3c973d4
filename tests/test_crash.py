"""Kill -9 a real ``bertsearch index`` in the middle of a run: the index stays consistent and the
next run finishes the work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text

from bertsearch.cli.main import cli
from bertsearch.indexer.index import Index
from bertsearch.indexer.models import ChunkRow, Document
from bertsearch.indexer.common.settings import Settings

from _consistency import assert_consistent

N_FILES = 150
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()


def _corpus(root: Path, n_files: int = N_FILES, seed: int = 0) -> None:
    """``n_files`` documents of 250 random words in 7 folders (``part<i % 7>/doc<i>.txt``)."""
    rng = np.random.default_rng(seed)
    for i in range(n_files):
        path = root / f"part{i % 7}" / f"doc{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Document {i}. " + " ".join(rng.choice(WORDS, 250)) + "\n")


def _documents_committed(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM documents")).scalar() or 0
    except Exception:
        return 0  # schema not created yet
    finally:
        engine.dispose()


@pytest.mark.slow
def test_kill_9_mid_run_then_reopen_and_finish(tmp_path: Path, db_url: str, tiny_bert_path: str):
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    _corpus(docs)
    args = ["index", str(docs), "--index", str(idx), "--db", db_url, "--model", tiny_bert_path,
            "--chunk-tokens", "32", "--chunk-overlap", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bertsearch.cli", *args, "--quiet"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 120
    committed = 0
    while proc.poll() is None and time.monotonic() < deadline:
        committed = _documents_committed(db_url)
        if committed:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed:\n{proc.stdout.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    settings = Settings(index_dir=idx, db_url=db_url)
    with Index.open(settings) as index:
        info = index.info()
        assert info["chunks"] == info["faiss_vectors"]
        assert 0 < info["documents"] < N_FILES, "killed mid-run: some, not all, documents committed"
        with index.transaction() as s:
            # Whole documents only: every committed document has all of its chunks.
            per_doc = dict(s.execute(select(ChunkRow.document_id, func.count()).group_by(ChunkRow.document_id)).all())
            for doc_id, n_chunks in s.execute(select(Document.id, Document.n_chunks)):
                assert per_doc.get(doc_id, 0) == n_chunks
            assert set(index.vectors.ids().tolist()) == set(s.scalars(select(ChunkRow.id)))
        done = info["documents"]

    result = CliRunner().invoke(cli, [*args, "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["added"], summary["unchanged"], summary["failed"]) == (N_FILES - done, done, 0)
    with Index.open(settings) as index:
        info = index.info()
        assert index.last_repair is None
        assert info["documents"] == N_FILES and info["chunks"] == info["faiss_vectors"]


# Runs `bertsearch index` with VectorIndex.save killing the process once the temporary FAISS file
# is written and before it replaces the old one: a kill -9 exactly during a FAISS save.
_KILLED_IN_SAVE = """
import os, signal, sys
from bertsearch.indexer import upkeep, vector_file
upkeep.SAVE_AFTER = 0  # every run rewrites the FAISS file (a small run would not), so a save is killed
real_replace = os.replace
def replace(src, dst, *a, **k):
    if str(dst).endswith(vector_file.FILE_NAME):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *a, **k)
os.replace = replace
from bertsearch.cli.main import cli
cli(sys.argv[1:], prog_name="bertsearch")
"""


@pytest.mark.slow
def test_kill_9_at_20_instants_during_runs_saves_and_rebuilds(tmp_path: Path, db_url: str,
                                                              tiny_bert_path: str) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    _corpus(docs)
    base = ["index", str(docs), "--index", str(idx), "--db", db_url, "--model", tiny_bert_path, "--quiet"]
    rng = np.random.default_rng(7)
    settings = Settings(index_dir=idx, db_url=db_url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    chunking = ["--chunk-tokens", "32", "--chunk-overlap", "4"]
    assert CliRunner().invoke(cli, [*base, *chunking]).exit_code == 0
    kinds = ["update"] * 12 + ["rebuild"] * 5 + ["save"] * 3
    rng.shuffle(kinds)
    killed = {"update": 0, "rebuild": 0, "save": 0}
    for n, kind in enumerate(kinds):
        # Change the folder: files edited, one added, one removed.
        for i in rng.choice(N_FILES, 8, replace=False):
            path = docs / f"part{i % 7}" / f"doc{i:04d}.txt"
            if path.exists():
                path.write_text(path.read_text() + f" edit {n} " + " ".join(rng.choice(WORDS, 40)) + "\n")
        (docs / "added" / f"new{n}.txt").parent.mkdir(exist_ok=True)
        (docs / "added" / f"new{n}.txt").write_text(f"New {n}. " + " ".join(rng.choice(WORDS, 200)))
        if n >= 3:
            (docs / "added" / f"new{n - 3}.txt").unlink(missing_ok=True)
        args = list(base)
        if kind == "rebuild":
            chunking = ["--chunk-tokens", "48" if chunking[1] == "32" else "32", "--chunk-overlap", "4"]
            args += ["--rebuild", *chunking]
        command = [sys.executable, "-c", _KILLED_IN_SAVE, *args] if kind == "save" else \
            [sys.executable, "-m", "bertsearch.cli", *args]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        if kind != "save":
            time.sleep(float(rng.uniform(1.0, 7.0)))  # start-up is about 3 s here
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=300)
        if proc.returncode == -signal.SIGKILL:
            killed[kind] += 1
        else:
            assert proc.returncode == 0, proc.stdout.read().decode()
        assert_consistent(settings)
    assert killed["save"] == 3, killed
    assert killed["update"] + killed["rebuild"] >= 8, killed  # most random instants fell inside a run
    result = CliRunner().invoke(cli, [*base, "--json"])
    assert result.exit_code == 0, result.output
    info = assert_consistent(settings)
    on_disk = sum(1 for p in docs.rglob("*.txt"))
    assert info["documents"] == on_disk
