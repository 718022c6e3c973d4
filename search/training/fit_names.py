"""Fit the hybrid fusion's name weight (``name_weight`` of ``answer_model.json``).

``python -m bertsearch.search.training.fit_names WRITTEN.json ... --index-dir DIR --answer-model IN --out OUT``

What a question that names a document (:mod:`bertsearch.search.naming`) adds to the fused score of
that document's chunks (:func:`bertsearch.search.retrieval.fuse`), fitted on written questions of
the documents held out from training (``techqa.held_out``, the ``--holdout-frac`` share no head
trains on; never a report set): each is searched as ``ask`` retrieves (hybrid, the fit's dense
weight and depth) in the index ``--index-dir`` (built with ``bertsearch index`` over the folder the
questions' paths are relative to, with the encoder and chunk header the fit serves), and the weight
of :data:`GRID` with the best MRR@10 of the question's page is kept (ties: the smaller). The rest of
``--answer-model`` is copied to ``--out`` unchanged; ``fitted.name_weight`` records the table.

With ``--fit-dense`` the fusion's dense weight is fitted with the name weight on the same questions
(calibrate fits it on SQuAD paragraphs, which are not the pages an index of another language
holds): the pair with the best MRR@10, recorded with each dense weight's best in ``fitted.name_weight``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def fit_name_weight(index: Any, questions: Sequence[tuple[str, str]], dense_weight: float, depth: int,
                    grid: Sequence[float] = GRID, dense_grid: Sequence[float] | None = None) -> dict[str, Any]:
    """The weight of ``grid`` with the best MRR@10 of each question's page over ``questions``
    (``(text, path)`` pairs; ``index`` an open :class:`~bertsearch.indexer.Index`), and each
    weight's MRR@10, page_top1 and page_top5 (``table``).

    With ``dense_grid`` the dense weight is fitted with it: the pair with the best MRR@10 (ties:
    the dense weight nearest ``dense_weight``, then the smaller name weight); ``table`` is then the
    name weights' at the chosen dense weight, and ``dense_table`` each dense weight's best (with the
    name weight that gave it)."""
    from bertsearch.search.retrieval import named_chunks
    from bertsearch.search.training.calibrate import searched
    from bertsearch.search.training.metrics import ranking_scores

    runs = [(path, found, named_chunks(text, records), {r.chunk_id: r.path for r in records})
            for text, path, found, records in searched(index, questions, depth)]
    tables: dict[float, dict[float, dict[str, float]]] = {}
    for dense in [dense_weight] if dense_grid is None else dense_grid:
        tables[dense] = {}
        for weight in grid:
            scores = ranking_scores([(path, [paths.get(item.chunk_id)
                                             for item in found.fuse(dense, depth, named, weight)])
                                     for path, found, named, paths in runs])
            tables[dense][weight] = {"mrr@10": scores["mrr@10"], "page_top1": scores["top1"],
                                     "page_top5": scores["top5"]}
    dense, best = max(((d, w) for d in tables for w in grid),
                      key=lambda dw: (tables[dw[0]][dw[1]]["mrr@10"], -abs(dw[0] - dense_weight), -dw[1]))
    result = {"name_weight": best, "questions": len(runs), "table": {str(w): v for w, v in tables[dense].items()}}
    if dense_grid is not None:
        result["dense_weight"] = dense
        result["dense_table"] = {str(d): max(({**v, "name_weight": w} for w, v in t.items()), key=lambda v: v["mrr@10"])
                                 for d, t in tables.items()}
    return result


def held_out_questions(files: Sequence[Path], holdout_frac: float, indexed: set[str]) -> list[tuple[str, str]]:
    """``(question, path)`` of the written pairs of the held-out documents that ``indexed`` holds."""
    from bertsearch.search.training.techqa import held_out
    from bertsearch.search.training.written import load_pairs

    return [(p.question, p.path) for p in load_pairs(files) if held_out(p.path, holdout_frac) and p.path in indexed]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bertsearch.search.training.fit_names", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("written", nargs="+", type=Path, help="written question files (search/training/written_questions)")
    p.add_argument("--index-dir", type=Path, required=True, help="an index of the documents the questions are about")
    p.add_argument("--model", help="the encoder the index was built with (a folder or a name), where not the packaged one")
    p.add_argument("--answer-model", type=Path, required=True, help="the answer_model.json to complete")
    p.add_argument("--out", type=Path, required=True, help="answer_model.json to write")
    p.add_argument("--holdout-frac", type=float, default=0.2, help="the held-out share of documents (techqa.held_out)")
    p.add_argument("--fit-dense", action="store_true",
                   help="fit the dense weight with the name weight, over calibrate's grid (0 to 1 by 0.05), on the same "
                        "questions, instead of keeping the answer model's")
    args = p.parse_args(argv)

    from bertsearch.indexer import Index, Settings
    from bertsearch.search.confidence import load_answer_model
    from bertsearch.search.training.calibrate import GRID as DENSE_GRID

    fit = load_answer_model(args.answer_model)
    settings = Settings(index_dir=args.index_dir, **({"model_path": args.model} if args.model else {}))
    with Index.open(settings) as index:
        indexed = {fields["path"] for _, fields in index.reader.catalog(index.snapshot).documents}
        questions = held_out_questions(args.written, args.holdout_frac, indexed)
        if not questions:
            p.error("no held-out written question is about a document of the index")
        result = fit_name_weight(index, questions, fit.dense_weight, fit.depth,
                                 dense_grid=DENSE_GRID if args.fit_dense else None)
        encoder = index.params.model_id
    model = json.loads(args.answer_model.read_text(encoding="utf-8"))
    model["name_weight"] = result["name_weight"]
    fitted = {
        "data": f"{result['questions']} written questions of the held-out documents ({args.holdout_frac:.0%} share) "
                f"of {', '.join(f.name for f in args.written)}",
        "index": {"documents": len(indexed), "encoder": encoder},
        "table": result["table"],
        "command": "python -m bertsearch.search.training.fit_names " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    if args.fit_dense:  # the fusion fitted here, on these pages, replaces calibrate's
        model["dense_weight"] = result["dense_weight"]
        fitted.update(dense_weight=result["dense_weight"], dense_weight_before=fit.dense_weight,
                      dense_table=result["dense_table"])
    model.setdefault("fitted", {})["name_weight"] = fitted
    args.out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    json.dump({k: v for k, v in result.items() if k != "dense_table"}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
