"""`bertsearch index --rebuild` without an outage: readers serve the old index until the new one
commits whole, and a killed rebuild leaves the old index intact (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_crash import _corpus
from bertsearch.cli.main import cli
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index
from bertsearch.search import Searcher

N_FILES = 120


def _built(tmp_path: Path, db_url: str, tiny_bert_path: str) -> tuple[list[str], Settings]:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    _corpus(docs, N_FILES, seed=1)
    args = ["index", str(docs), "--index", str(idx), "--db", db_url, "--model", tiny_bert_path, "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--chunk-tokens", "64", "--chunk-overlap", "8"])
    assert result.exit_code == 0, result.output
    return args, Settings(index_dir=idx, db_url=db_url)


def _rebuild(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bertsearch.cli", *args, "--rebuild", "--chunk-tokens", "32", "--chunk-overlap", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _served(reader: Searcher) -> tuple[int, int, int, int]:
    """What a reader serves now: its chunking, FAISS and lexical counts, and how many whole hits a
    search gets (the commit may land between the refresh and the search: the searcher then
    catches up rather than answer short)."""
    reader.refresh()
    hits = reader.search("alpha bravo", top_k=5, mode="dense").hits
    assert all(hit.text for hit in hits)
    snapshot = reader.index.snapshot
    return snapshot.params.chunk_tokens, snapshot.vectors.count, snapshot.lexical.count, len(hits)


@pytest.mark.slow
def test_readers_serve_the_old_index_until_the_rebuild_commits(tmp_path: Path, db_url: str,
                                                               tiny_bert_path: str) -> None:
    args, settings = _built(tmp_path, db_url, tiny_bert_path)
    with Searcher.open(settings) as reader:
        tokens, old_chunks, _, _ = _served(reader)
        assert tokens == 64
        proc = _rebuild(args)
        seen = set()
        while proc.poll() is None:
            tokens, vectors, lexical, hits = _served(reader)
            seen.add(tokens)
            # Whole generations only: the old index, or the new one, never an empty or partial one.
            assert hits == 5 and vectors == lexical
            assert (tokens, vectors) == (64, old_chunks) or tokens == 32, (tokens, vectors)
            time.sleep(0.05)
        assert proc.returncode == 0, proc.stdout.read().decode()
        tokens, new_chunks, _, _ = _served(reader)
        assert tokens == 32 and new_chunks > old_chunks
        assert 64 in seen, "the reader never polled during the rebuild"
        info = reader.index.info()
        assert info["documents"] == N_FILES and info["chunks"] == info["faiss_vectors"] == new_chunks


@pytest.mark.slow
def test_a_killed_rebuild_leaves_the_old_index_whole(tmp_path: Path, db_url: str, tiny_bert_path: str) -> None:
    args, settings = _built(tmp_path, db_url, tiny_bert_path)
    with Index.open(settings) as index:
        before = index.info()
    proc = _rebuild(args)
    time.sleep(3.0)  # the model is loaded and the rebuild writes (one file takes milliseconds)
    assert proc.poll() is None, f"the rebuild ended before it could be killed:\n{proc.stdout.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Index.open(settings) as index:
        info = index.info()
        assert info["generation"] == before["generation"] and info["chunk_tokens"] == 64
        assert (info["documents"], info["chunks"]) == (N_FILES, before["chunks"])
        assert info["faiss_vectors"] == info["lexical_chunks"] == before["chunks"]
    result = CliRunner().invoke(cli, [*args, "--rebuild", "--chunk-tokens", "32", "--chunk-overlap", "4", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["added"] == N_FILES and summary["failed"] == 0
    with Index.open(settings) as index:
        info = index.info()
        assert info["chunk_tokens"] == 32 and info["documents"] == N_FILES
        assert info["chunks"] == info["faiss_vectors"] == info["lexical_chunks"] > before["chunks"]
