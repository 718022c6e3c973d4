"""Ingestion over HTTP: the SQuAD v1.1 dev paragraphs put into a real `bertsearch serve` in
batches of 32 (`POST /documents:batch`, one commit each), against `bertsearch index` of the same
texts written as files, in one run, side by side (goal: HTTP within 1.3x the time).

`bertsearch index` runs in a child process into a fresh index (its ``update_s``, model loading
included, as a user waits for it; and the process's wall time). The HTTP side starts a server
on another fresh index of the same model and chunking (model loaded before the clock starts, as
a running server has it) and times the batches from the first request to the last reply; each
reply means committed and served. Then the same batches again: nothing is encoded.

Run: ``python benchmarks/ingest.py`` (``--limit N``: the first N paragraphs).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
from index import _index_run  # the `bertsearch index` child process of benchmarks/index.py


def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.index import Index
    from bertsearch.search import Client
    from bertsearch.search.training.corpus import document_path

    paragraphs, _ = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=40 if args.smoke else args.limit)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=args.work_dir) as tmp:
        docs = c.write_corpus(paragraphs, Path(tmp) / "docs")
        files = _index_run(docs, Path(tmp) / "index-files", args.model)
        index_dir = Path(tmp) / "index-http"
        with Index.open(Settings(index_dir=index_dir, model_path=args.model), create=True):
            pass  # an empty index for the server to serve
        batches = [[{"key": document_path(Path(), p.title, p.pid).as_posix(), "text": p.context}
                    for p in paragraphs[i:i + args.batch]] for i in range(0, len(paragraphs), args.batch)]
        with c.server(index_dir) as (base, pid), Client(base, timeout=600) as client:
            cold, chunks, latencies = _put_all(client, batches)
            warm, encoded_again, _ = _put_all(client, batches)
            server_rss = c.peak_rss_mb(pid)
        with Index.open(Settings(index_dir=index_dir)) as index:
            info = index.info()
    update_s = files["summary"]["seconds"]
    return {
        "what": "SQuAD v1.1 dev paragraphs put over HTTP in batches (POST /documents:batch: one commit, one "
                "generation each, replied once committed and served) against `bertsearch index` of the same "
                "texts as .txt files",
        "model": args.model or "packaged all-MiniLM-L6-v2",
        "documents": len(paragraphs),
        "batch": args.batch,
        "index_command": {"update_s": update_s, "process_wall_s": round(files["wall_s"], 2),
                          "chunks_written": files["summary"]["chunks_written"],
                          "chunks_per_s": files["summary"]["chunks_per_second"],
                          "peak_rss_mb": files["peak_rss_mb"]},
        "http": {"seconds": round(cold, 2), "chunks_written": chunks,
                 "chunks_per_s": round(chunks / cold, 1) if cold else None,
                 "documents_per_s": round(len(paragraphs) / cold, 1) if cold else None,
                 "batch_latency": c.latency_stats(latencies), "server_peak_rss_mb": server_rss,
                 "same_batches_again_s": round(warm, 2), "encoded_again": encoded_again,
                 "index_chunks": info["chunks"], "faiss_vectors": info["faiss_vectors"],
                 "lexical_chunks": info.get("lexical_chunks")},
        "ratio": {"http_over_index_update": round(cold / update_s, 2) if update_s else None,
                  "http_over_index_process": round(cold / files["wall_s"], 2),
                  "goal": 1.3,
                  "note": "HTTP time over `bertsearch index`'s update (model loading included there, not on the "
                          "server, which loaded it at start) and over its whole process"},
    }


def _put_all(client: Any, batches: list[list[dict[str, str]]]) -> tuple[float, int, list[float]]:
    """Every batch, one after the other: the seconds taken, the chunks the server encoded, each batch's seconds."""
    encoded, latencies = 0, []
    began = time.perf_counter()
    for batch in batches:
        started = time.perf_counter()
        encoded += client.batch(put=batch)["chunks_encoded"]
        latencies.append(time.perf_counter() - started)
    return time.perf_counter() - began, encoded, latencies


if __name__ == "__main__":
    p = c.parser("ingest", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p)
    p.add_argument("--limit", type=int, default=None, help="only the first N paragraphs (default: all 2,067)")
    p.add_argument("--batch", type=int, default=32, help="documents per POST /documents:batch")
    c.run("ingest", main, p.parse_args())
