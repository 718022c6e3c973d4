"""Two QA heads combined span by span: how far a second, larger reader lifts the shipped one.

Each question is read against its own context, as ``bertsearch eval-qa`` reads it (the same
``Reader``, batch size and ``read_examples``), by the small head (``--small``, default the
shipped one) and by the large one (``--large``). Each keeps its n-best spans and its no-answer
score. For each weight ``w`` of ``--weights`` they are combined as ``--large-reader`` combines them
(:func:`bertsearch.search.reader_pair.combine`: a span's score is
``w * P_large(span) + (1 - w) * P_small(span)``, a span a head does not list counting 0 for it, and
the null's the same); the prediction is the best combined span, or nothing where the data holds
unanswerable questions and the combined null beats it (eval-qa's rule at threshold 0). Weight 0 is
the small head's eval-qa score and weight 1 the large head's, so every row compares in one run.

Choose a weight on data held out from training (the written pairs' held-out file), never on the
file you report.

Run: ``python benchmarks/combine_readers.py --large FOLDER --data FILE [--limit 1000]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import _common as c

def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.search.reader import Reader
    from bertsearch.search.reader_pair import combine
    from bertsearch.search.training.evaluate import best_span, predictions_at, read_examples
    from bertsearch.search.training.metrics import squad_scores
    from bertsearch.search.training.squad import load_squad

    settings = Settings()  # BERTSEARCH_CACHE_DIR (a named encoder's folder) and BERTSEARCH_NATIVE_BF16, as eval-qa reads them
    examples = load_squad(args.data, limit=args.limit or (12 if args.smoke else 1000))
    weights = args.weights
    read: dict[str, dict[str, Any]] = {}
    readers: dict[str, Any] = {}
    for name, folder in (("small", args.small), ("large", args.large)):
        reader = Reader(folder, precision=args.precision, batch_size=32, cache_dir=settings.cache_dir)
        began = time.perf_counter()
        read[name] = {example.id: result for example, result in read_examples(reader, examples)}
        readers[name] = {"model": str(folder) if folder else "shipped", "precision": reader.precision,
                         "seconds": round(time.perf_counter() - began, 1)}
    gold = {e.id: [a.text for a in e.answers] for e in examples}
    contexts = {e.id: e.context for e in examples}
    abstain = any(e.is_impossible for e in examples)
    rows = []
    for w in weights:
        spans = {q: best_span(contexts[q], combine(read["small"][q], read["large"][q], w)) for q in gold}
        predictions = predictions_at(spans, abstain, 0.0)
        scores = squad_scores(gold, predictions)
        rows.append({"large_weight": w, **{k: round(v, 2) for k, v in scores.items()
                                            if k in ("exact", "f1", "HasAns_f1", "NoAns_f1", "abstain_rate")}})
    return {
        "what": "two QA heads combined span by span, each question read against its own context (eval-qa's reading)",
        "data": Path(args.data).name,
        "questions": len(examples),
        "readers": readers,
        "by_weight": rows,
        "x_large_seconds": round(readers["large"]["seconds"] / max(readers["small"]["seconds"], 1e-9), 2),
    }


def _weights(text: str) -> list[float]:
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated numbers from 0 to 1") from None
    if any(not 0.0 <= w <= 1.0 for w in weights):
        raise argparse.ArgumentTypeError("comma-separated numbers from 0 to 1")
    return weights


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("a whole number of questions, at least 1")
    return int(text)


if __name__ == "__main__":
    p = c.parser("combine_readers", __doc__)
    p.add_argument("--large", required=True, help="the second QA model folder (e.g. models/large-reader)")
    p.add_argument("--small", default=None, help="the first QA model folder (default: the shipped head)")
    p.add_argument("--data", required=True, help="a SQuAD-format file (.json or .json.gz)")
    p.add_argument("--limit", type=_limit, default=None, help="the first N questions (1,000 unless set; 12 with --smoke)")
    p.add_argument("--weights", type=_weights, default="0,0.25,0.4,0.5,0.6,0.75,1",
                   help="the large head's weights to score, comma-separated, from 0 to 1")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32", "int8"), default="auto",
                   help="both readers' precision (auto as eval-qa)")
    c.run("combine_readers", main, p.parse_args())
