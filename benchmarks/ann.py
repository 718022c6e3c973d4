"""The FAISS index kinds side by side at 1M (and 10M) vectors: the index part of a search, recall@10
against exact search of the same vectors in the same run, build time, memory, file size, load, and
what a one-document change costs a reader.

Vectors with the structure of real ones: real chunk embeddings (SQuAD v1.0 train paragraphs,
chunked and encoded by the packaged encoder, as ``bertsearch index`` does) and perturbations of
them in their own subspace (Gaussian noise along their top principal components, with their
variances), L2-normalised. Queries: real SQuAD v1.1 dev questions, encoded the same way. Nothing
here is fitted on dev: the questions only query.

Per kind (``flat``: exact; ``hnsw``; ``hnsw-sq8``), through bertsearch's own ``VectorIndex``
(the object a server searches, one OpenMP thread, its default):
- ``faiss_only``: ``VectorIndex.search(query, 10)`` per query, p50 and p99;
- recall@10 against the flat index's top 10, for each ``ef_search`` of HNSW;
- build seconds (``VectorIndex.from_batches``, as a rebuild from SQL does), RSS growth;
- the file: ``save`` seconds and bytes; ``load`` seconds and the peak RSS of a fresh process that
  loads it (steady RSS after the load beside it: a reload holds one copy, not three);
- a one-document change (10 chunks added, 10 removed) applied as a reader does (``advanced``).

With ``--ivf 4096``, also a raw FAISS inverted file with SQ8 codes (not a bertsearch kind yet), as
a probe for the 10M design (``ivf_probe``).

Run: ``python benchmarks/ann.py --sizes 1000000`` (``--kinds``, ``--queries``, ``--ivf``).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import _common as c

K = 10
PCS = 64  # principal components the perturbations follow


def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer import faiss_kinds
    from bertsearch.indexer.vectors import VectorIndex

    if args.ef_construction:  # to compare graph qualities; the product uses its constant
        faiss_kinds.HNSW_EF_CONSTRUCTION = args.ef_construction
    if args.m:
        faiss_kinds.HNSW_M = args.m

    sizes = [int(s) for s in (args.sizes or ("3000" if args.smoke else "1000000")).split(",")]
    kinds = [k.strip() for k in args.kinds.split(",")]
    efs = [int(e) for e in args.ef.split(",")]
    bases, queries, source = _real_vectors(args)
    rng = np.random.default_rng(0)
    sampler = c.Perturbations(bases, rng, PCS)
    results: dict[str, Any] = {}
    for n in sizes:
        vectors, cos_to_base = _structured(sampler, n)
        ids = np.arange(1, n + 1, dtype=np.int64)
        exact = None
        per_kind: dict[str, Any] = {}
        for kind in ["flat"] + [k for k in kinds if k != "flat"]:
            gc.collect()
            rss0 = c.rss_mb()
            began = time.perf_counter()
            vi = VectorIndex.from_batches(vectors.shape[1], 1, _batches(ids, vectors), kind=kind)
            build = time.perf_counter() - began
            rss1 = c.rss_mb()
            entry: dict[str, Any] = {"build_seconds": round(build, 1),
                                     "rss_growth_mb": round((rss1 or 0) - (rss0 or 0), 1)}
            if kind == "flat":
                exact = [[i for i, _ in vi.search(q, K)] for q in queries]
            assert exact is not None
            for ef in (efs if kind != "flat" else [0]):
                vi.ef_search = ef or vi.ef_search
                timings = c.time_calls(lambda q: vi.search(q, K, threads=1), list(queries))
                found = [[i for i, _ in vi.search(q, K, threads=1)] for q in queries]
                recall = float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))
                key = "faiss_only" if kind == "flat" else f"ef_search_{ef}"
                entry[key] = {"recall_at_10": round(recall, 4), **c.latency_stats(timings)}
            entry.update(_file_costs(vi, args.work_dir / "ann", kind, vectors.shape[1]))
            entry["one_document_change_ms"] = _change_cost(vi, vectors, rng)
            per_kind[kind] = entry
            vi = None  # freed before the next kind is built
        results[str(n)] = {"vectors": n, "mean_cosine_to_its_real_vector": round(cos_to_base, 3), "kinds": per_kind}
        if args.ivf:
            results[str(n)]["ivf_probe"] = {f"IVF{nlist}_HNSW32,SQ8": _ivf_probe(vectors, queries, exact, nlist, args)
                                            for nlist in (int(x) for x in args.ivf.split(","))}
        del vectors
    return {
        "what": "FAISS index kinds through VectorIndex: index part of a search, recall@10 vs exact, memory, files",
        "hnsw": {"M": faiss_kinds.HNSW_M, "ef_construction": faiss_kinds.HNSW_EF_CONSTRUCTION},
        "vectors": source,
        "k": K,
        "ef_search": efs,
        "sizes": results,
    }


def _ivf_probe(vectors: np.ndarray, queries: np.ndarray, exact: Any, nlist: int, args: Any) -> dict[str, Any]:
    """Raw FAISS, not a bertsearch kind (yet): an inverted file of ``nlist`` lists with an HNSW
    coarse quantizer and 8-bit scalar codes, trained on a sample of ``40 * nlist`` vectors; the
    candidate for 10M chunks. Its train and add seconds, memory, and per ``nprobe`` recall@10
    against the same exact top 10 and the latency of one query on one OpenMP thread."""
    import faiss

    rng = np.random.default_rng(2)
    gc.collect()
    rss0 = c.rss_mb()
    began = time.perf_counter()
    quantizer = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexIVFScalarQuantizer(quantizer, vectors.shape[1], nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    index.cp.min_points_per_centroid = 5
    sample = vectors[rng.choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)]
    index.train(sample)
    trained = time.perf_counter()
    index.add(vectors)
    added = time.perf_counter()
    out: dict[str, Any] = {"train_vectors": len(sample), "train_seconds": round(trained - began, 1),
                           "add_seconds": round(added - trained, 1),
                           "rss_growth_mb": round((c.rss_mb() or 0) - (rss0 or 0), 1),
                           "file_bytes": int(faiss.serialize_index(index).size)}
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for nprobe in (int(x) for x in args.nprobe.split(",")):
            index.nprobe = nprobe
            timings = c.time_calls(lambda q: index.search(q.reshape(1, -1), K), list(queries))
            found = [index.search(q.reshape(1, -1), K)[1][0] for q in queries]
            recall = float(np.mean([len(set(f.tolist()) & {i - 1 for i in e}) / K for f, e in zip(found, exact)]))
            out[f"nprobe_{nprobe}"] = {"recall_at_10": round(recall, 4), **c.latency_stats(timings)}
    finally:
        faiss.omp_set_num_threads(threads)
    return out


def _real_vectors(args: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Real chunk vectors (train paragraphs) and real question vectors (dev), cached in the work folder."""
    from bertsearch.indexer.chunking import chunk_text
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.encoder import Encoder

    cache = args.work_dir / "ann" / ("smoke" if args.smoke else "full")
    cache.mkdir(parents=True, exist_ok=True)
    settings = Settings(**({"model_path": args.model} if args.model else {}))
    files = cache / "bases.npy", cache / "queries.npy"
    if not all(f.is_file() for f in files):
        train = args.squad_dir / c.SQUAD_V1_TRAIN
        if not train.is_file():
            raise c.Skip(f"SQuAD train not found in {args.squad_dir}")
        encoder = Encoder(settings.resolved_model_path(), batch_size=settings.batch_size)
        paragraphs, _ = c.load_squad(train, max_paragraphs=200 if args.smoke else args.bases)
        chunks = [ch.text for p in paragraphs
                  for ch in chunk_text(p.context, encoder.tokenizer, settings.chunk_tokens, settings.chunk_overlap)]
        _, questions = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=100 if args.smoke else None)
        rng = np.random.default_rng(1)
        picked = rng.choice(len(questions), size=min(len(questions), args.queries), replace=False)
        np.save(files[0], encoder.encode(chunks, show_progress=not args.smoke))
        np.save(files[1], encoder.encode([questions[i].question for i in picked]))
    bases, queries = np.load(files[0]), np.load(files[1])
    return bases, queries, {"real_chunks": len(bases), "source": "SQuAD v1.0 train paragraphs, chunked and encoded",
                            "queries": len(queries), "query_source": "SQuAD v1.1 dev questions, encoded",
                            "perturbation": f"Gaussian noise along the top {PCS} principal components of the real "
                                            "chunks, with their variances, then L2-normalised"}


def _structured(sampler: c.Perturbations, n: int) -> tuple[np.ndarray, float]:
    """``n`` vectors: the real ones, then perturbations of them (see :class:`_common.Perturbations`);
    and the mean cosine of a perturbed vector to the real one it came from."""
    bases = sampler.bases
    out = np.empty((n, bases.shape[1]), dtype=np.float32)
    first = min(n, len(bases))
    out[:first] = bases[:first]
    cosines = []
    for lo in range(first, n, 100_000):
        hi = min(n, lo + 100_000)
        out[lo:hi], cos = sampler.sample(hi - lo)
        cosines.append(cos)
    return out, float(np.mean(cosines)) if cosines else 1.0


def _batches(ids: np.ndarray, vectors: np.ndarray, size: int = 65_536):
    for lo in range(0, len(ids), size):
        yield ids[lo : lo + size], vectors[lo : lo + size]


def _file_costs(vi: Any, folder: Path, kind: str, dimension: int) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.faiss"
    began = time.perf_counter()
    vi.save(path)
    saved = time.perf_counter() - began
    code = ("import sys, time, json; sys.path.insert(0, %r); import _common as c\n"
            "from bertsearch.indexer.vectors import VectorIndex\n"
            "from pathlib import Path\n"
            "before = c.rss_mb(); t = time.perf_counter(); v = VectorIndex.load(Path(%r), %d)\n"
            "print(json.dumps({'seconds': time.perf_counter() - t, 'rss_before_mb': before,\n"
            "                  'rss_mb': c.rss_mb(), 'peak_rss_mb': c.peak_rss_mb(), 'count': v.count}))\n"
            % (str(Path(__file__).parent), str(path), dimension))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    load = json.loads(out.stdout.strip().splitlines()[-1])
    size = path.stat().st_size
    path.unlink()
    steady = load["rss_mb"] - load["rss_before_mb"]
    peak = load["peak_rss_mb"] - load["rss_before_mb"]
    return {"file_bytes": size, "save_seconds": round(saved, 2), "load_seconds": round(load["seconds"], 2),
            "load_process_rss_mb": load["rss_mb"], "load_process_peak_rss_mb": load["peak_rss_mb"],
            "load_peak_over_steady": round(peak / steady, 3) if steady > 0 else None}


def _change_cost(vi: Any, vectors: np.ndarray, rng: np.random.Generator) -> float:
    added = (vectors[:10] + 0.01).astype(np.float32)
    added /= np.linalg.norm(added, axis=1, keepdims=True)
    removed = rng.choice(vi.count, 10, replace=False).astype(np.int64) + 1
    began = time.perf_counter()
    vi.advanced(2, np.arange(10**9, 10**9 + 10, dtype=np.int64), added, removed)
    return round((time.perf_counter() - began) * 1000.0, 3)


if __name__ == "__main__":
    p = c.parser("ann", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p)
    p.add_argument("--sizes", default=None, help="comma-separated vector counts (default 1000000)")
    p.add_argument("--kinds", default="flat,hnsw,hnsw-sq8", help="index kinds to compare with exact search")
    p.add_argument("--ef", default="16,32,64,128", help="HNSW ef_search values to measure")
    p.add_argument("--ef-construction", type=int, default=None, help="HNSW efConstruction (default: the product's)")
    p.add_argument("--m", type=int, default=None, help="HNSW neighbours per vector, M (default: the product's)")
    p.add_argument("--ivf", default=None, help="also probe raw FAISS IVF<nlist>_HNSW32,SQ8 for these comma-separated "
                   "nlist values (not a bertsearch kind yet: the 10M candidate)")
    p.add_argument("--nprobe", default="8,16,32,64", help="IVF lists searched per query, for --ivf")
    p.add_argument("--queries", type=int, default=500, help="real questions as queries")
    p.add_argument("--bases", type=int, default=6000, help="SQuAD train paragraphs whose chunks are the real vectors")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    c.run("ann", main, p.parse_args())
