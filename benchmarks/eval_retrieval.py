"""Retrieval quality on SQuAD v1.1 dev: recall@1/5/20 and MRR@10 of dense, lexical and hybrid, in one run.

All 2,067 dev paragraphs are indexed as documents (``Index.update``, the default chunking);
each of the 10,570 questions is a query, and the right document is the paragraph it was asked
on. A paragraph cut into several chunks counts once, at the rank of its best chunk.

The queries go through the steps of ``Searcher.search`` (the index's own encoder, then
``Index.search``, ``Index.search_lexical`` and ``retrieval.fuse`` with the shipped fit), with
the questions encoded in batches rather than one by one, which changes the speed, not the vectors.

``--precision fp32,int8`` evaluates each precision on an index of its own, in one run, and
reports the differences from the first (the bound for int8: within 0.5 points of fp32).

``--split train`` asks the questions of the first ``--paragraphs`` paragraphs of SQuAD train
instead (``c.SQUAD_V1_TRAIN``), the data choices are made on (e.g. the default
encoder, ``--model multilingual-e5-small``); dev is for reporting.

``--chunk-header none|title`` builds the index with that chunk header (an index of its own; default:
the settings' ``title``). A SQuAD paragraph's title is its file name, ``00042``, which has no letter,
so it gets no header: both give the same vectors.

Run: ``python benchmarks/eval_retrieval.py`` (the precision ``auto`` stands for on this CPU).
"""

from __future__ import annotations

import time
from typing import Any

import _common as c

KS = (1, 5, 20)
MRR_AT = 10


def main(args: Any) -> dict[str, Any]:
    if args.split == "train":
        path = args.squad_dir / c.SQUAD_V1_TRAIN
        if not path.is_file():
            raise c.Skip(f"SQuAD train not found: {path}; pass --squad-dir")
        paragraphs, questions = c.load_squad(path, max_paragraphs=30 if args.smoke else args.paragraphs)
    else:
        paragraphs, questions = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=30 if args.smoke else None)
    if args.limit:
        questions = questions[: args.limit]
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    runs = {p: evaluate(args, paragraphs, questions, p) for p in precisions}
    first = runs[precisions[0]]
    if len(runs) == 1:
        return first
    return {
        "what": first["what"],
        "settings": first["settings"],
        "documents": first["documents"],
        "questions": first["questions"],
        "by_precision": runs,
        # Points (x100) each precision loses (-) or gains against the first, mode by mode.
        "difference_points": {
            p: {mode: {k: round(100 * (v - first["modes"][mode][k]), 2) for k, v in scores.items()}
                for mode, scores in run["modes"].items()}
            for p, run in runs.items() if run is not first
        },
    }


def evaluate(args: Any, paragraphs: list, questions: list, precision: str) -> dict[str, Any]:
    from bertsearch.indexer.index import Index
    from bertsearch.search.confidence import answer_model
    from bertsearch.search.retrieval import Hybrid

    name = "squad-v1.1-dev" if args.split == "dev" else f"squad-train-{len(paragraphs)}"
    settings, built = c.squad_index(args, paragraphs, name=name, precision=precision)
    fit = answer_model()
    depth = max(max(max(KS), MRR_AT) * 3, fit.depth)  # chunks fetched, so that 20 distinct paragraphs remain
    ranks: dict[str, list[int | None]] = {"dense": [], "lexical": [], "hybrid": []}
    with Index.open(settings) as index:
        chunk_pid = {r.chunk_id: c.pid_of_path(r.path) for r in index.fetch_chunks(index.vectors.ids().tolist())}
        began = time.perf_counter()
        vectors = index.encoder.encode([q.question for q in questions])
        encoded = time.perf_counter() - began
        timings = {"dense": 0.0, "lexical": 0.0, "hybrid": 0.0}
        for q, vector in zip(questions, vectors):
            t0 = time.perf_counter()
            dense = index.search(vector, depth)
            t1 = time.perf_counter()
            lexical = index.search_lexical(q.question, depth)
            t2 = time.perf_counter()
            hybrid = [(r.chunk_id, r.score) for r in Hybrid.search(index, vector, q.question, depth).fuse(fit.dense_weight, depth)]
            timings["dense"] += t1 - t0
            timings["lexical"] += t2 - t1
            timings["hybrid"] += time.perf_counter() - t2  # both searches again, the look-ups and the fusion
            for mode, scored in (("dense", dense), ("lexical", lexical), ("hybrid", hybrid)):
                ranked: list[int] = []
                for chunk_id, _score in scored:
                    pid = chunk_pid[chunk_id]
                    if pid not in ranked:
                        ranked.append(pid)
                ranks[mode].append(ranked.index(q.pid) + 1 if q.pid in ranked else None)
        encoder = index.encoder
    n = len(questions)

    def scores(found: list[int | None]) -> dict[str, float]:
        out = {f"recall@{k}": round(sum(1 for r in found if r is not None and r <= k) / n, 4) for k in KS}
        out[f"mrr@{MRR_AT}"] = round(sum(1.0 / r for r in found if r is not None and r <= MRR_AT) / n, 4)
        return out

    return {
        "what": ("SQuAD v1.1 dev" if args.split == "dev" else f"SQuAD train, its first {len(paragraphs)} paragraphs")
                + ": every paragraph a document, every question a query; the right document is the question's own paragraph",
        "encoder": {"id": built["model_id"], "precision": encoder.precision, "max_length": encoder.max_length},
        "settings": {"chunk_tokens": built["chunk_tokens"], "chunk_overlap": built["chunk_overlap"],
                     "chunk_header": built["chunk_header"],
                     "dense": "exact inner product (cosine) over L2-normalised mean-pooled vectors",
                     "lexical": "BM25 (tantivy) over bertsearch.indexer.terms, English stemming",
                     "hybrid": f"convex combination of the candidates' z-scored dense and BM25 scores (each looked up where that retriever missed it), dense weight {fit.dense_weight} (fitted on SQuAD train), "
                               f"{fit.depth} chunks from each",
                     "paragraph_rank": "rank of the paragraph's best chunk among distinct paragraphs"},
        "documents": built["documents"],
        "chunks": built["chunks"],
        "questions": n,
        "modes": {mode: scores(found) for mode, found in ranks.items()},
        "timing": {"encode_questions_s": round(encoded, 1), **{f"{k}_s": round(v, 1) for k, v in timings.items()},
                   "index_update": built["update"]},
    }


if __name__ == "__main__":
    p = c.parser("eval_retrieval", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p)
    c.add_chunk_header_option(p)
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--split", choices=("dev", "train"), default="dev",
                   help="dev (report) or train (the first --paragraphs paragraphs, for choosing)")
    p.add_argument("--paragraphs", type=int, default=2000, help="with --split train: paragraphs indexed")
    p.add_argument("--precision", default="auto",
                   help="comma-separated precisions to compare (auto, bf16, fp32, int8), each on its own index")
    c.run("eval_retrieval", main, p.parse_args())
