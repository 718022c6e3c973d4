"""Open question answering on SQuAD v1.1 dev: retrieve, then read; exact match and F1.

The index holds all 2,067 dev paragraphs as documents (as in ``eval_retrieval.py``). For each
question (a seeded random sample of ``--limit``), ``Searcher.ask`` retrieves ``--passages``
passages from the whole corpus and reads them; its best answer is scored against the gold
answers with the official SQuAD normalisation (``bertsearch.search.training.metrics``).

Everything goes through ``Searcher.ask`` with the threshold itself (default: the searcher's):
an answer flagged ``below_threshold`` is an abstention, and an abstention counts as wrong.

Trust: ``--unanswerable N`` also asks a seeded sample of SQuAD 2.0 dev's unanswerable questions.
Their paragraphs are all in the corpus (SQuAD 2.0 dev reuses v1.1 dev's), written to look as if
they held the answer, so a good system abstains. ``threshold_sweep`` gives, for each confidence
threshold, the share of answerable questions answered and their EM/F1 beside the share of
unanswerable ones abstained on (``ask`` returns the same top answer at every threshold and flags
it by its confidence, so one run gives the sweep).

Run: ``python benchmarks/eval_openqa.py [--qa-model PATH] [--limit 1000] [--unanswerable 500] [--large-reader FOLDER]``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import _common as c

SQUAD_V2_DEV = ("dev-v2.0-reconstructed.json.gz", "dev-v2.0.json.gz", "dev-v2.0.json")
SWEEP = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7)


def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer.index import Index
    from bertsearch.search.training.metrics import squad_scores
    from bertsearch.search.searcher import Searcher

    paragraphs, questions = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=30 if args.smoke else None)
    settings, built = c.squad_index(args, paragraphs)
    qa_path, qa_note = c.qa_model_for_speed(args)
    limit = 5 if args.smoke else args.limit
    if limit and limit < len(questions):
        rng = np.random.default_rng(args.seed)
        questions = [questions[i] for i in sorted(rng.choice(len(questions), size=limit, replace=False))]

    unanswerable, unanswerable_note = _unanswerable_sample(args) if args.unanswerable else ([], None)
    predictions: dict[str, str] = {}  # "" when ask abstains: counted as wrong
    best_text: dict[str, str] = {}
    confidence: dict[str, float] = {}  # the top answer's confidence, what the threshold is compared with
    from_gold_paragraph = 0
    large = args.large_reader or settings.large_reader  # the option's, or BERTSEARCH_LARGE_READER's
    with Searcher(Index.open(settings), qa_model_path=qa_path, precision=settings.precision,
                  large_reader=large, rereads=settings.large_reader_rereads) as searcher:
        searcher.load_models()
        threshold = searcher.threshold if args.threshold is None else args.threshold
        began = time.perf_counter()
        for q in questions:
            result = searcher.ask(q.question, top_k=1, passages=args.passages, threshold=threshold, mode=args.mode)
            best = result.answers[0] if result.answers else None
            answered = best is not None and not best.below_threshold
            predictions[q.qid] = best.text if answered else ""
            best_text[q.qid] = best.text if best else ""
            confidence[q.qid] = best.confidence if best else 0.0
            from_gold_paragraph += best is not None and c.pid_of_path(best.path) == q.pid
        seconds = time.perf_counter() - began
        abstained = 0
        for q in unanswerable:
            result = searcher.ask(q.question, top_k=1, passages=args.passages, threshold=threshold, mode=args.mode)
            best = result.answers[0] if result.answers else None
            abstained += best is None or best.below_threshold
            confidence[q.qid] = best.confidence if best else 0.0
        reader = searcher.reader
        first = getattr(reader, "first", reader)  # a pair: its first head's windows
        reader_facts = {"precision": reader.precision, "max_seq_len": first.max_seq_len, "stride": first.stride,
                        "max_answer_len": first.max_answer_len, "large_reader": c.shown(large) if large else None,
                        "answer_model": c.fit_source(None, large, qa_path)}
    gold = {q.qid: list(q.answers) for q in questions}
    scores = squad_scores(gold, predictions)
    always = squad_scores(gold, best_text)
    n = len(questions)
    # ask(threshold=t) returns the same top answer for every t and flags it below_threshold when its
    # confidence is under t, so one run gives the whole sweep of the rule ask applies.
    sweep = []
    for t in SWEEP:
        kept = {qid: text if confidence[qid] >= t else "" for qid, text in best_text.items()}
        at = squad_scores(gold, kept)
        row = {"threshold": t, "answerable_answered": round(sum(map(bool, kept.values())) / n, 4),
               "exact_match": round(at["exact"], 2), "f1": round(at["f1"], 2)}
        if unanswerable:
            row["unanswerable_abstained"] = round(sum(confidence[q.qid] < t for q in unanswerable) / len(unanswerable), 4)
        sweep.append(row)
    return {
        "what": "open QA over all SQuAD v1.1 dev paragraphs through Searcher.ask(question, top_k=1, passages=P, "
                "threshold, mode): an answer flagged below_threshold counts as an abstention, and an abstention "
                "as wrong; scored with the official EM/F1 normalisation",
        "encoder": {"id": built["model_id"], "chunk_tokens": built["chunk_tokens"],
                    "chunk_overlap": built["chunk_overlap"]},
        "qa_model": {"path": qa_path or "shipped default", "note": qa_note, **reader_facts},
        "metrics": "bertsearch.search.training.metrics.squad_scores (official SQuAD normalisation)",
        "documents": built["documents"],
        "chunks": built["chunks"],
        "mode": args.mode,
        "passages": args.passages,
        "questions": n,
        "sample": f"seeded random sample (seed {args.seed}) of the 10,570 questions" if limit else "all questions",
        "threshold": threshold,
        "exact_match": round(scores["exact"], 2),
        "f1": round(scores["f1"], 2),
        "answered": round(sum(map(bool, predictions.values())) / n, 4),
        "f1_without_threshold": round(always["f1"], 2),
        "answer_from_the_right_paragraph": round(from_gold_paragraph / n, 4),
        "seconds_per_question": round(seconds / n, 3),
        "unanswerable_questions": len(unanswerable),
        "unanswerable_sample": unanswerable_note,
        "unanswerable_abstained": round(abstained / len(unanswerable), 4) if unanswerable else None,
        "threshold_sweep": sweep,
    }


def _unanswerable_sample(args: Any) -> tuple[list[Any], str]:
    """A seeded sample of SQuAD 2.0 dev's unanswerable questions and what it is (none, and why,
    when the file is absent)."""
    path = next((args.squad_dir / name for name in SQUAD_V2_DEV if (args.squad_dir / name).is_file()), None)
    if path is None:
        return [], f"none: SQuAD 2.0 dev not found in {args.squad_dir} ({' or '.join(SQUAD_V2_DEV)})"
    _, questions = c.load_squad(path)
    questions = [q for q in questions if not q.answers]
    size = min(len(questions), 5 if args.smoke else args.unanswerable)
    rng = np.random.default_rng(args.seed)
    sample = [questions[i] for i in sorted(rng.choice(len(questions), size=size, replace=False))]
    return sample, (f"seeded random sample (seed {args.seed}) of the {len(questions):,} unanswerable questions "
                    f"of {path.name}, asked against the same corpus")


if __name__ == "__main__":
    p = c.parser("eval_openqa", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p, qa=True)
    p.add_argument("--limit", type=int, default=1000, help="questions (a seeded random sample); 0 for all 10,570")
    p.add_argument("--passages", type=int, default=10,
                   help="passages retrieved and read per question (the default of ask: searcher.DEFAULT_PASSAGES)")
    p.add_argument("--seed", type=int, default=0, help="seed of the question sample")
    p.add_argument("--threshold", type=float, default=None,
                   help="minimum answer confidence (default: the searcher's default, what `ask` applies)")
    p.add_argument("--mode", default="hybrid", choices=("hybrid", "dense", "lexical"), help="retrieval mode")
    p.add_argument("--large-reader", default=None, help="a second QA model folder that rereads the best passages")
    p.add_argument("--unanswerable", type=int, default=500,
                   help="also ask this many of SQuAD 2.0 dev's unanswerable questions (0: none)")
    c.run("eval_openqa", main, p.parse_args())
