"""A metadata filter that keeps 1% of the chunks against the same search unfiltered, on one index.

The index is grown as ``benchmarks/search.py`` grows it (real SQL tables, FAISS file and tantivy
index; vectors synthetic, ``--vectors structured`` by default; SQuAD dev paragraphs as texts, ten
to a document), each document with the metadata ``{"team": "t<n mod 100>", "year": ...}``, so
``{"team": "t7"}`` keeps one document in a hundred: 1% of the chunks.

In a fresh process that opened the index with ``Searcher.open``: ``Searcher.search(question,
top_k=5, where=...)`` and the same without the filter, query by query in turn (the order
alternating), in each mode (hybrid, dense, lexical), p50 and p99 side by side; the retrievers
alone (``Index.search`` and ``Index.search_lexical``, the query vectors encoded beforehand); and
the first filtered query of a generation, which reads every document's metadata and chunk ids
from SQL (later ones reuse them, and the chunk ids the filter keeps), and the first filtered
lexical query, which reads the kept chunks' texts for their terms; BM25's recall@10 filtered
against the exact search over the matching chunks (every hit unfiltered, filtered afterwards).

Run: ``python benchmarks/filter.py [--size 100000] [--index-type auto]``.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import _common as c
from search import _Grower

TOP_K = 5
TEAMS = 100
WHERE = {"team": "t7"}


def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.encoder import Encoder
    from bertsearch.indexer.index import Index

    size = 300 if args.smoke else args.size
    paragraphs, questions = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=50 if args.smoke else None)
    texts = [p.context for p in paragraphs]
    n_queries = min(10, args.queries) if args.smoke else args.queries
    rng = np.random.default_rng(0)
    picked = rng.choice(len(questions), size=min(len(questions), n_queries), replace=False)
    queries = [questions[i].question for i in picked]
    settings = Settings(**({"model_path": args.model} if args.model else {}))
    encoder = Encoder(settings.resolved_model_path(), precision=settings.precision, batch_size=settings.batch_size)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-filter-", dir=args.work_dir))
    try:
        index_settings = Settings(index_dir=tmp / "index", model_path=settings.resolved_model_path(),
                                  index_type=args.index_type)
        with Index.open(index_settings, create=True, encoder=encoder) as index:
            sampler = c.Perturbations(encoder.encode(texts[: args.bases]), rng) if args.vectors == "structured" else None
            grower = _Grower(index, texts, rng, sampler,
                             metadata=lambda n: {"team": f"t{n % TEAMS}", "year": 2000 + n % 25})
            build_s = grower.grow_to(size)
            built = {"chunks": index.vectors.count, "index_type": index.vectors.kind, "documents": grower.documents,
                     "build_seconds": round(build_s, 1)}
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            measured = pool.submit(_measure, str(index_settings.index_dir), queries).result()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "what": "Searcher.search (top_k=5) with the where filter {\"team\": \"t7\"}, which keeps 1% of the chunks, "
                "against the same search unfiltered on the same index, query by query in turn; vectors synthetic "
                f"({args.vectors}), written through the real SQL tables, FAISS file and tantivy index; queries real "
                "SQuAD v1.1 dev questions",
        "goal": "issue 34: a filtered search keeping 1% of the chunks within 2x of the unfiltered one at 1M chunks",
        "model": {"path": settings.resolved_model_path(), "id": encoder.model_id, "precision": encoder.precision},
        "where": WHERE,
        "top_k": TOP_K,
        "queries": len(queries),
        **built,
        **measured,
    }


def _measure(index_dir: str, queries: list[str]) -> dict[str, Any]:
    """In a fresh process: filtered against unfiltered, side by side, each mode and each retriever."""
    from bertsearch.search.searcher import Searcher

    out: dict[str, Any] = {}
    with Searcher.open(index_dir) as searcher:
        searcher.load_models(reader=False)
        index = searcher.index
        began = time.perf_counter()
        kept = index.reader.allowed(index.snapshot, None, _parsed())
        out["first_filtered_query_setup_ms"] = round((time.perf_counter() - began) * 1000, 1)
        out["matching_chunks"] = int(kept.size)
        out["matching_share"] = round(kept.size / index.vectors.count, 4)
        began = time.perf_counter()
        index.search_lexical(queries[0], TOP_K, where=WHERE)
        out["first_filtered_lexical_query_ms"] = round((time.perf_counter() - began) * 1000, 1)
        out["lexical_recall_at_10"] = _lexical_recall(index, queries[:50], set(kept.tolist()))
        for mode in ("hybrid", "dense", "lexical"):
            out[f"search_{mode}"] = _side_by_side(
                lambda q, w, mode=mode: searcher.search(q, top_k=TOP_K, mode=mode, where=w), queries)
        vectors = list(index.encoder.encode(queries))
        out["faiss_only"] = _side_by_side(lambda v, w: index.search(v, TOP_K, where=w), vectors)
        out["lexical_only"] = _side_by_side(lambda q, w: index.search_lexical(q, TOP_K, where=w), queries)
        hits = [h for q in queries[:20] for h in searcher.search(q, top_k=TOP_K, where=WHERE).hits]
        out["filtered_hits_all_match"] = all(index.get_document(h.document_id).metadata["team"] == "t7" for h in hits)
    return out


def _lexical_recall(index: Any, queries: list[str], kept: set[int], k: int = 10) -> float:
    """Filtered BM25's share of the exact top ``k`` over the kept chunks (every hit of the query
    unfiltered, filtered afterwards); a hit tied with the exact k-th counts."""
    found = wanted = 0
    for query in queries:
        exact = [(c, s) for c, s in index.search_lexical(query, index.vectors.count) if c in kept][:k]
        if exact:
            got = index.search_lexical(query, k, where=WHERE)
            ids = {c for c, _ in exact}
            found += sum(c in ids or s >= exact[-1][1] - 1e-5 for c, s in got)
            wanted += len(exact)
    return round(found / wanted, 4) if wanted else 1.0


def _parsed() -> Any:
    from bertsearch.indexer.filters import parse_where

    return parse_where(WHERE)


def _side_by_side(call: Any, items: list[Any], warmup: int = 5) -> dict[str, Any]:
    """``call(item, where)`` filtered and unfiltered, item by item in turn, the order alternating."""
    seconds: dict[str, list[float]] = {"filtered": [], "unfiltered": []}
    for i, item in enumerate(items[:warmup] + items):
        order = (("filtered", WHERE), ("unfiltered", None))
        for name, where in order if i % 2 == 0 else order[::-1]:
            began = time.perf_counter()
            call(item, where)
            if i >= warmup:
                seconds[name].append(time.perf_counter() - began)
    filtered, unfiltered = c.latency_stats(seconds["filtered"]), c.latency_stats(seconds["unfiltered"])
    return {"filtered": filtered, "unfiltered": unfiltered,
            "ratio_median": round(filtered["median_ms"] / unfiltered["median_ms"], 3)}


if __name__ == "__main__":
    p = c.parser("filter", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p)
    p.add_argument("--size", type=int, default=100_000, help="chunks in the index")
    p.add_argument("--queries", type=int, default=200, help="timed queries per mode")
    p.add_argument("--vectors", choices=("structured", "random"), default="structured",
                   help="structured: the SQuAD paragraphs' own vectors perturbed (as benchmarks/search.py); random")
    p.add_argument("--bases", type=int, default=2067, help="paragraphs encoded as the real vectors (structured)")
    p.add_argument("--index-type", default="auto", help="auto, flat, hnsw or hnsw-sq8 (BERTSEARCH_INDEX_TYPE)")
    c.run("filter", main, p.parse_args())
