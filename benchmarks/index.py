"""Indexing: `bertsearch index` of the SQuAD v1.1 dev paragraphs (one document each), cold and warm.

The 2,067 paragraphs are written as text files into a fresh folder and indexed by the real
command (`python -m bertsearch.cli index DIR --index IDX --json`, i.e. ``Index.update``), in
a child process so that its wall time (model loading included) and peak memory are its own.
The warm run indexes the same folder again: nothing changed, nothing should be encoded.
For reference, the same chunks are then encoded by a hand-rolled sentence-transformers script
(``SentenceTransformer(model).encode`` with its defaults, then ``faiss.IndexFlatIP.add``).

``--ray`` also runs the cold index with ``--ray`` (a local Ray cluster started by the run, an
encoder actor per CPU) into another index, in the same run: chunks/s of both paths and the
overhead of Ray here. ``--writer-db URL`` (e.g. a PostgreSQL server) measures the writer alone:
the cold run's chunks and vectors committed again through ``Index.commit`` in batches of 512,
with no encoding, which bounds how many encoding nodes one writer can absorb.

Run: ``python benchmarks/index.py`` (after ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c


def main(args: Any) -> dict[str, Any]:
    paragraphs, _ = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=20 if args.smoke else args.limit)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-index-", dir=args.work_dir) as tmp:
        docs = c.write_corpus(paragraphs, Path(tmp) / "docs")
        index_dir = Path(tmp) / "index"
        cold = _index_run(docs, index_dir, args.model)
        warm = _index_run(docs, index_dir, args.model)
        reference = None if args.no_reference else _reference(index_dir, cold)
        ray = _index_run(docs, Path(tmp) / "index-ray", args.model, "--ray") if args.ray else None
        writer = _writer_rate(index_dir, args.writer_db) if args.writer_db else None
    bytes_on_disk = cold["summary"].get("size_bytes")
    result = {
        "what": "`bertsearch index` (Index.update) of SQuAD v1.1 dev paragraphs written as .txt documents; "
                "cold = new index, warm = the same folder again (nothing changed)",
        "model": {"path": args.model or "packaged all-MiniLM-L6-v2", "id": cold["summary"]["model_id"]},
        "settings": {k: cold["summary"][k] for k in ("chunk_tokens", "chunk_overlap")},
        "documents": cold["summary"]["documents"],
        "chunks": cold["summary"]["chunks"],
        "cold": _rates(cold),
        "warm": _rates(warm),
        "index_bytes": bytes_on_disk,
    }
    if ray is not None:
        result["ray"] = {**_rates(ray), "what": "the same cold run with --ray: a local Ray cluster started by the "
                                                "run, one encoder actor per CPU; this process commits"}
        result["ray_overhead"] = {
            "update_s_ratio": round(ray["summary"]["seconds"] / cold["summary"]["seconds"], 2),
            "process_wall_s_ratio": round(ray["wall_s"] / cold["wall_s"], 2),
            "note": "Ray's time over the local path's on the same CPUs (>1: Ray costs more here)",
        }
    if writer is not None:
        result["writer_commit_rate"] = writer
        per_node = result["cold"]["update_chunks_per_s"]
        result["writer_commit_rate"]["encoding_nodes_one_writer_absorbs"] = round(
            writer["chunks_per_s"] / per_node, 1) if per_node else None
    if reference is not None:
        result["reference_sentence_transformers"] = reference
    if reference is not None and "chunks_per_s" in reference:
        result["ratio_vs_reference"] = {
            "update_chunks_per_s": round(result["cold"]["update_chunks_per_s"] / reference["chunks_per_s"], 2),
            "note": "bertsearch's whole update (read, chunk, encode, SQL commit, FAISS save) against the "
                    "reference's encode + FAISS add only",
        }
    return result


def _index_run(docs: Path, index_dir: Path, model: str | None, *extra: str) -> dict[str, Any]:
    """One `bertsearch index` child process: its JSON summary, wall time and peak RSS."""
    cmd = [sys.executable, "-m", "bertsearch.cli", "index", str(docs), "--index", str(index_dir), "--json", "--quiet",
           *extra]
    if model:
        cmd += ["--model", str(model)]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.stdout.close(), proc.stderr.close()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"bertsearch index failed: {err[-2000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.common.settings import Settings

    with Index.open(Settings(index_dir=index_dir)) as index:  # reads SQL and the FAISS file, no model
        info = index.info()
    summary.update({k: v for k, v in info.items()
                    if k in ("model_id", "chunk_tokens", "chunk_overlap", "size_bytes", "faiss_vectors")})
    return {"summary": summary, "wall_s": wall, "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1)}


def _writer_rate(index_dir: Path, db_url: str) -> dict[str, Any]:
    """The cold index's documents, chunks and vectors committed again into a fresh database through
    ``Index.commit`` (batches of about 512 chunks, as `bertsearch index` commits): the writer alone."""
    import uuid

    import numpy as np
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bertsearch.indexer.chunking import Chunk
    from bertsearch.indexer.commit import Batch, DocumentWrite
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.models import ChunkRow, Document

    with Index.open(Settings(index_dir=index_dir)) as source:
        model_path = source.params.model_path
        with source.transaction() as s:
            docs = s.query(Document).order_by(Document.id).all()
            chunks = {}
            for row in s.query(ChunkRow).order_by(ChunkRow.document_id, ChunkRow.ordinal):
                chunks.setdefault(row.document_id, []).append(row)
            writes = [(DocumentWrite(None, d.path, d.title, d.text, d.content_hash, d.size, d.mtime,
                                     [Chunk(r.text, r.start, r.end, r.n_tokens) for r in chunks.get(d.id, [])]),
                       [np.frombuffer(r.vector, dtype="<f4") for r in chunks.get(d.id, [])]) for d in docs]
    url, drop = db_url, None
    if db_url.startswith("postgresql"):
        name = f"bench_writer_{uuid.uuid4().hex[:8]}"
        admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url, drop = make_url(db_url).set(database=name).render_as_string(hide_password=False), (admin, name)
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as tmp:
        settings = Settings(index_dir=Path(tmp) / "idx", db_url=url, model_path=model_path)
        try:
            with Index.open(settings, create=True) as index, index.writer_lock():
                began = time.perf_counter()
                batch, vectors, n = [], [], 0
                for doc, vecs in writes + [(None, [])]:
                    if doc is not None:
                        batch.append(doc)
                        vectors.extend(vecs)
                        n += len(vecs)
                    if batch and (n >= 512 or doc is None):
                        index.commit(Batch(documents=batch, vectors=np.vstack(vectors) if vectors else None))
                        batch, vectors, n = [], [], 0
                index.save_vectors(lazy=True)
                seconds = time.perf_counter() - began
                total = index.vectors.count
        finally:
            if drop is not None:
                with drop[0].connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)'))
                drop[0].dispose()
    return {"database": make_url(db_url).get_backend_name(), "chunks": total, "seconds": round(seconds, 2),
            "chunks_per_s": round(total / seconds, 1),
            "what": "Index.commit of the cold run's documents with their vectors (no encoding), 512 chunks a commit"}


def _rates(run: dict[str, Any]) -> dict[str, Any]:
    s = run["summary"]
    docs = s["added"] + s["updated"]
    return {
        "process_wall_s": round(run["wall_s"], 2),
        "update_s": s["seconds"],
        "documents_encoded": docs,
        "unchanged": s["unchanged"],
        "chunks_written": s["chunks_written"],
        "update_documents_per_s": round(docs / s["seconds"], 1) if s["seconds"] else None,
        "update_chunks_per_s": s["chunks_per_second"],
        "process_documents_per_s": round(docs / run["wall_s"], 1),
        "process_chunks_per_s": round(s["chunks_written"] / run["wall_s"], 1),
        "peak_rss_mb": run["peak_rss_mb"],
        "faiss_vectors": s.get("faiss_vectors"),
    }


def _reference(index_dir: Path, cold: dict[str, Any]) -> dict[str, Any]:
    """The same chunks through sentence-transformers (defaults) + a FAISS flat index."""
    import faiss
    import numpy as np

    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return {"skipped": "sentence-transformers is not installed (pip install -e '.[bench]')"}

    from bertsearch.indexer.index import Index
    from bertsearch.indexer.common.settings import Settings

    with Index.open(Settings(index_dir=index_dir)) as index:
        ids = index.vectors.ids().tolist()
        texts = [r.text for r in index.fetch_chunks(ids)]
        model_path = index.params.model_path
    model = SentenceTransformer(model_path, device="cpu")
    began = time.perf_counter()
    vectors = np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)
    encoded = time.perf_counter() - began
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    total = time.perf_counter() - began
    return {
        "what": "SentenceTransformer(model_folder).encode(chunks, normalize_embeddings=True) with its defaults "
                "(batch 32, fp32), then faiss.IndexFlatIP.add; in this process",
        "chunks": len(texts),
        "seconds": round(total, 2),
        "encode_seconds": round(encoded, 2),
        "chunks_per_s": round(len(texts) / total, 1),
    }


if __name__ == "__main__":
    p = c.parser("index", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p)
    p.add_argument("--limit", type=int, default=None, help="index only the first N paragraphs")
    p.add_argument("--no-reference", action="store_true", help="skip the sentence-transformers reference")
    p.add_argument("--ray", action="store_true", help="also index with --ray (a local Ray cluster) in the same run")
    p.add_argument("--writer-db", default=None, metavar="URL",
                   help="measure the writer's commit rate alone on this database (e.g. PostgreSQL)")
    c.run("index", main, p.parse_args())
