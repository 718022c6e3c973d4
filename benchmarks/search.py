"""Search latency and memory for indexes of 10,000, 100,000 and 1,000,000 chunks.

The index is a real bertsearch index (SQLite + the FAISS file) grown size by size. Its chunks
are synthetic in one way only: their vectors are not encoded from their texts, so that a million
chunks need no hours of encoding. By default (``--vectors structured``) they are the SQuAD
paragraphs' own vectors perturbed in their principal subspace, as in ``benchmarks/ann.py``, so
that an HNSW graph (``--index-type``; ``auto`` picks it from 200,000 chunks) is built and searched
as on real data; ``--vectors random`` gives random unit vectors (the earlier runs; an exact index
costs the same per query whatever the vectors hold, a graph does not). Everything else is real:
chunk texts are SQuAD v1.1 dev paragraphs (reused), grouped ten to a document, written into the
``documents`` and ``chunks`` tables with their vectors by the same statements ``Index.update``
commits, the generation bumped, the in-memory FAISS index extended and the FAISS file saved by
the index's own code.

Queries are real SQuAD questions. For each size:
- library: ``Searcher.search(question, top_k=5)`` in a fresh process that opened the index with
  ``Searcher.open`` (as a user's script would): query encoding, FAISS, BM25, fusion, SQL fetch
  (the default hybrid mode), and the same in the dense and the lexical mode, side by side;
- its parts: ``Encoder.encode([question])`` only, ``Index.search(vector, 5)`` (FAISS, one
  OpenMP thread by default) only and the same with all of FAISS's threads, ``Index.fetch_chunks`` only;
- path filters: ``Index.search(vector, 5, path_glob=...)``, its first query (the matching chunk ids
  read from SQL) and the ones after it (kept per generation);
- HTTP: ``POST /search`` to a real ``bertsearch serve`` process on loopback (httpx, keep-alive),
  and the server's memory (RSS) once it has loaded the index and answered the queries; at the
  largest size, also side by side with a server of a copy of the smallest index, the same queries
  to each in turn (``http_side_by_side``): sizes measured minutes apart see a machine whose speed
  may have changed between them;
- a one-document change (10 chunks removed, 10 added, committed as ``bertsearch index`` does):
  how long until the server serves it, and whether the FAISS file was rewritten.

Run: ``python benchmarks/search.py [--sizes 10000,100000,1000000]``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import _common as c

CHUNKS_PER_DOCUMENT = 10
TOP_K = 5
# a folder-like filter, its literal start sent to SQL (the first 10,000 documents: all of them up to
# 100,000 chunks, a tenth at 1M), and a name-only one that matches every document (no SQL pre-filter)
PATH_FILTERS = ("synthetic/000*.txt", "*.txt")
_BATCH = 20_000  # chunks per committed transaction while growing the index


def main(args: Any) -> dict[str, Any]:
    import httpx

    from bertsearch.indexer.encoder import Encoder
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.common.settings import Settings
    sizes = sorted({int(s) for s in (args.sizes or ("300,1000" if args.smoke else "10000,100000,1000000")).split(",")})
    paragraphs, questions = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=50 if args.smoke else None)
    texts = [p.context for p in paragraphs]
    n_queries = args.queries or (10 if args.smoke else 300)
    rng = np.random.default_rng(0)
    picked = rng.choice(len(questions), size=min(len(questions), max(n_queries, args.queries_large)), replace=False)
    queries = [questions[i].question for i in picked]

    settings = Settings(**({"model_path": args.model} if args.model else {}))
    encoder = Encoder(settings.resolved_model_path(), precision=settings.precision, batch_size=settings.batch_size)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-", dir=args.work_dir))
    rows: list[dict[str, Any]] = []
    try:
        index_settings = Settings(index_dir=tmp / "index", model_path=settings.resolved_model_path(),
                                  index_type=args.index_type)
        index = Index.open(index_settings, create=True, encoder=encoder)
        sampler = None
        if args.vectors == "structured":  # real paragraph vectors, perturbed (as benchmarks/ann.py)
            sampler = c.Perturbations(encoder.encode(texts[: args.bases]), rng)
        grower = _Grower(index, texts, rng, sampler)
        first_copy: Path | None = None
        for size in sizes:
            build_s = grower.grow_to(size)
            if first_copy is None and len(sizes) > 1:  # kept for the side-by-side HTTP run at the largest size
                first_copy = tmp / f"index-{size}"
                # In another process: closing a descriptor of meta.db here would drop this process's
                # POSIX locks on it, and other processes would then read SQLite's WAL as if no one
                # had it open (https://www.sqlite.org/howtocorrupt.html, 2.2).
                subprocess.run(["cp", "-a", str(index_settings.index_dir), str(first_copy)], check=True)
            n = n_queries if size < 1_000_000 else min(n_queries, args.queries_large)
            qs = queries[:n]
            row: dict[str, Any] = {
                "chunks": index.vectors.count,
                "index_type": index.vectors.kind,
                "documents": grower.documents,
                "build_seconds": round(build_s, 1),
                "queries": n,
                "faiss_file_bytes": index.vectors_path.stat().st_size,
                "faiss_bytes_per_chunk": round(index.vectors_path.stat().st_size / index.vectors.count, 1),
            }
            # A fresh process, as a user's script: none of the builder's state (memory, threads) in the timings.
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                row.update(pool.submit(_library_latency, str(index_settings.index_dir), qs).result())
            with c.server(index_settings.index_dir) as (base, pid):
                rss_loaded = c.rss_mb(pid)
                took: list[float] = []
                with httpx.Client(base_url=base, timeout=120) as http:

                    def call(q: str) -> None:
                        r = http.post("/search", json={"query": q, "top_k": TOP_K})
                        r.raise_for_status()
                        took.append(r.json()["took_ms"])

                    seconds = c.time_calls(call, qs)
                row["http_search"] = c.latency_stats(seconds)
                row["http_server_took_ms_median"] = round(float(np.median(took[-len(qs):])), 2)
                row["server_rss_mb_loaded"] = rss_loaded
                row["server_rss_mb_after_queries"] = c.rss_mb(pid)
                if first_copy is not None and size == sizes[-1]:
                    row["http_side_by_side"] = _side_by_side(base, first_copy, sizes[0], qs)
                row["one_document_change"] = _pick_up(grower, base, pid)
            rows.append(row)
            _progress(row)
        index.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "what": "search latency (top_k=5) and memory by index size; vectors synthetic "
                f"({args.vectors}: see --vectors) written through the real SQL tables and FAISS file; "
                "queries real SQuAD v1.1 dev questions",
        "model": {"path": settings.resolved_model_path(), "id": encoder.model_id, "precision": encoder.precision},
        "index_type": f"--index-type {args.index_type} (each size says the kind it got); tantivy BM25 beside "
                      "it; SQLite metadata",
        "dimension": encoder.dimension,
        "top_k": TOP_K,
        "chunks_per_document": CHUNKS_PER_DOCUMENT,
        "goal": "issue 3: /search at 100,000 chunks under 50 ms median",
        "sizes": rows,
        "memory_per_chunk": _memory_per_chunk(rows),
    }


def _side_by_side(base: str, first_index: Path, first_size: int, queries: list[str]) -> dict[str, Any]:
    """``POST /search`` to the largest index and to a copy of the smallest, query by query in turn,
    so that both see the machine in the same state (a load that comes and goes, caches, clock)."""
    import httpx

    with c.server(first_index) as (first_base, _), \
            httpx.Client(base_url=first_base, timeout=120) as small, httpx.Client(base_url=base, timeout=120) as large:
        seconds: dict[str, list[float]] = {"first": [], "this": []}
        warmup = list(queries[:5])  # untimed
        for i, q in enumerate(warmup + list(queries)):
            for name, http in (("first", small), ("this", large)) if i % 2 == 0 else (("this", large), ("first", small)):
                began = time.perf_counter()
                http.post("/search", json={"query": q, "top_k": TOP_K}).raise_for_status()
                if i >= len(warmup):
                    seconds[name].append(time.perf_counter() - began)
    first, this = c.latency_stats(seconds["first"]), c.latency_stats(seconds["this"])
    return {"first_chunks": first_size, "first": first, "this": this,
            "ratio_median": round(this["median_ms"] / first["median_ms"], 3),
            "how": "the same queries to both servers in turn (the order alternating), after 5 untimed each"}


def _pick_up(grower: _Grower, base: str, pid: int) -> dict[str, Any]:
    """One document replaced (10 chunks removed, 10 added) and committed as `bertsearch index` does,
    then ``GET /health`` every 20 ms until the server serves the new generation: how long after
    the commit, and the server's RSS after it and its peak RSS over its life (VmHWM)."""
    index = grower.index
    with index.writer_lock():
        began = time.perf_counter()
        grower.replace_one()
        committed = time.perf_counter()
        index.save_vectors(lazy=True)  # what `bertsearch index` does at the end of a run
        saved = time.perf_counter()
    wrote_file = index.vectors.saved_generation == index.generation
    served = c.wait_for_generation(base, index.generation, timeout=60)
    return {"commit_ms": round((committed - began) * 1000, 1), "save_ms": round((saved - committed) * 1000, 1),
            "faiss_file_rewritten": wrote_file, "served": served == index.generation,
            "served_after_commit_ms": round((time.perf_counter() - committed) * 1000, 1),
            "server_rss_mb_after": c.rss_mb(pid), "server_peak_rss_mb": c.peak_rss_mb(pid)}


def _library_latency(index_dir: str, queries: list[str]) -> dict[str, Any]:
    """In a fresh process: ``Searcher.open`` the index and time a search and each of its steps."""
    from bertsearch.search.searcher import Searcher

    rss_before = c.rss_mb()
    with Searcher.open(index_dir) as searcher:
        searcher.load_models(reader=False)
        rss_open = c.rss_mb()
        index, encoder = searcher.index, searcher.index.encoder
        out = {"library_search": c.latency_stats(c.time_calls(lambda q: searcher.search(q, top_k=TOP_K), queries)),
               "library_search_mode": "hybrid"}
        for mode in ("dense", "lexical"):
            out[f"library_search_{mode}"] = c.latency_stats(
                c.time_calls(lambda q: searcher.search(q, top_k=TOP_K, mode=mode), queries))
        out["hybrid_over_dense_median"] = round(
            out["library_search"]["median_ms"] / out["library_search_dense"]["median_ms"], 3)
        out["lexical_only"] = c.latency_stats(c.time_calls(lambda q: index.search_lexical(q, 50), queries))
        out["encode_only"] = c.latency_stats(c.time_calls(lambda q: encoder.encode([q]), queries))
        vectors = list(encoder.encode(queries))
        out["faiss_only"] = c.latency_stats(c.time_calls(lambda v: index.search(v, TOP_K), vectors))
        # `Index.search` caps FAISS at `search_threads` OpenMP threads (default 1); FAISS's own
        # default (all cores) for comparison, on the same vectors.
        import faiss

        out["faiss_search_threads"] = index.settings.search_threads
        out["faiss_only_all_omp_threads"] = c.latency_stats(
            c.time_calls(lambda v: index.vectors.search(v, TOP_K), vectors))
        out["faiss_omp_threads"] = faiss.omp_get_max_threads()
        out["path_filter"] = [_filtered(index, glob, vectors) for glob in PATH_FILTERS]
        ids = [i for i, _ in index.search(vectors[0], TOP_K)]
        out["fetch_only"] = c.latency_stats(c.time_calls(lambda _: index.fetch_chunks(ids), queries))
        out["library_rss_mb"] = {"before_open": rss_before, "after_open_and_model_load": rss_open,
                                 "after_queries": c.rss_mb()}
    return out


def _filtered(index: Any, glob: str, vectors: list[Any]) -> dict[str, Any]:
    """``Index.search`` with a path filter: the first query (reads the matching chunk ids from SQL)
    and the ones after it (the ids are kept for the generation)."""
    began = time.perf_counter()
    index.search(vectors[0], TOP_K, path_glob=glob)
    first_ms = (time.perf_counter() - began) * 1000
    return {"glob": glob, "matching_chunks": int(len(index.reader.subset(index.snapshot, glob))),
            "first_query_ms": round(first_ms, 2),
            "repeated": c.latency_stats(c.time_calls(lambda v: index.search(v, TOP_K, path_glob=glob), vectors))}


def _memory_per_chunk(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"faiss_bytes_per_chunk": rows[-1]["faiss_bytes_per_chunk"] if rows else None}
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        grown = last["chunks"] - first["chunks"]
        out["server_rss_bytes_per_chunk"] = round(
            (last["server_rss_mb_after_queries"] - first["server_rss_mb_after_queries"]) * 2**20 / grown, 1)
        out["note"] = (f"RSS growth of the `bertsearch serve` process between {first['chunks']:,} and "
                       f"{last['chunks']:,} chunks, divided by the chunks added")
    return out


def _progress(row: dict[str, Any]) -> None:
    import sys

    side = row.get("http_side_by_side")
    print(f"{row['chunks']:>9,} chunks: library {row['library_search']['median_ms']} ms, "
          f"http {row['http_search']['median_ms']} ms, faiss {row['faiss_only']['median_ms']} ms (median)"
          + (f"; side by side with {side['first_chunks']:,}: {side['this']['median_ms']} vs "
             f"{side['first']['median_ms']} ms ({side['ratio_median']}x)" if side else ""),
          file=sys.stderr, flush=True)


class _Grower:
    """Adds synthetic chunks to an open index the way ``Index.update`` commits encoded ones."""

    def __init__(self, index: Any, texts: list[str], rng: np.random.Generator, sampler: Any = None,
                 metadata: Any = None) -> None:
        self.index = index
        self.metadata = metadata  # document number -> its metadata (benchmarks/filter.py)
        self.texts = texts
        self.rng = rng
        self.sampler = sampler
        self.documents = 0
        self.next_text = 0
        tokenizer = index.encoder.tokenizer
        self.n_tokens = [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]

    def grow_to(self, size: int) -> float:
        began = time.perf_counter()
        with self.index.writer_lock():
            while self.index.vectors.count < size:
                self._commit(min(_BATCH, size - self.index.vectors.count))
            self.index.save_vectors()
        return time.perf_counter() - began

    def replace_one(self) -> None:
        """Remove the first synthetic document and add a new one of 10 chunks, in one commit."""
        from bertsearch.indexer.models import Document

        with self.index.transaction() as s:
            first = s.query(Document.id).order_by(Document.id).limit(1).scalar()
        self._commit(CHUNKS_PER_DOCUMENT, remove=[first] if first is not None else [])

    def _commit(self, n: int, remove: list[int] | None = None) -> None:
        from bertsearch.indexer.chunking import Chunk
        from bertsearch.indexer.commit import Batch, DocumentWrite

        dim = self.index.params.dimension
        if self.sampler is not None:
            vectors, _ = self.sampler.sample(n)
        else:
            vectors = self.rng.standard_normal((n, dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        docs = []
        for first in range(0, n, CHUNKS_PER_DOCUMENT):
            picks = [(self.next_text + i) % len(self.texts) for i in range(min(CHUNKS_PER_DOCUMENT, n - first))]
            parts = [self.texts[i] for i in picks]
            self.next_text += len(parts)
            text = "\n\n".join(parts)
            chunks, start = [], 0
            for part, k in zip(parts, picks):
                chunks.append(Chunk(part, start, start + len(part), self.n_tokens[k]))
                start += len(part) + 2
            encoded = text.encode("utf-8")
            docs.append(DocumentWrite(
                doc_id=None, path=f"synthetic/{self.documents:07d}.txt", title=f"synthetic {self.documents}",
                text=text, content_hash=hashlib.sha256(encoded).hexdigest(), size=len(encoded), mtime=0.0,
                chunks=chunks, metadata=self.metadata(self.documents) if self.metadata else None))
            self.documents += 1
        # the same commit as `bertsearch index`
        self.index.commit(Batch(remove_documents=remove or [], documents=docs, vectors=vectors))

if __name__ == "__main__":
    p = c.parser("search", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p)
    p.add_argument("--sizes", default=None, help="comma-separated index sizes in chunks (default 10000,100000,1000000)")
    p.add_argument("--queries", type=int, default=None, help="timed queries per size and path (default 300; 10 with --smoke)")
    p.add_argument("--vectors", choices=("structured", "random"), default="structured",
                   help="structured: the SQuAD paragraphs' own vectors perturbed in their principal subspace "
                        "(an HNSW graph builds and searches as on real data); random: unit vectors")
    p.add_argument("--bases", type=int, default=2067, help="paragraphs encoded as the real vectors (structured)")
    p.add_argument("--index-type", default="auto", help="auto, flat, hnsw or hnsw-sq8 (BERTSEARCH_INDEX_TYPE)")
    p.add_argument("--queries-large", type=int, default=100, help="timed queries per path at 1,000,000 chunks and more")
    c.run("search", main, p.parse_args())
