"""Open question answering on SQuAD v1.1 dev: retrieve, then read; exact match and F1.

The index holds all 2,067 dev paragraphs as documents (as in ``eval_retrieval.py``). For each
question (a seeded random sample of ``--limit``), ``Searcher.ask`` retrieves ``--passages``
passages from the whole corpus and reads them; its best answer is scored against the gold
answers with the official SQuAD normalisation (``bertsearch.search.training.metrics``).

Trust: ``--unanswerable N`` also asks a seeded sample of SQuAD 2.0 dev's unanswerable questions.
Their paragraphs are all in the corpus (SQuAD 2.0 dev reuses v1.1 dev's), written to look as if
they held the answer, so a good system answers nothing. ``threshold_sweep`` gives, for each
reader-score threshold, the share of answerable questions still answered and their EM/F1
(unanswered counts as wrong) beside the share of unanswerable ones left unanswered. The best
answer's reader score is recorded once per question, so the sweep costs no extra runs.

Run: ``python benchmarks/eval_openqa.py [--qa-model PATH] [--limit 1000] [--unanswerable 500]``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import _common as c

SQUAD_V2_DEV = ("dev-v2.0-reconstructed.json.gz", "dev-v2.0.json.gz", "dev-v2.0.json")
SWEEP = (0.0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5)


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
    predictions: dict[str, str] = {}
    best_scores: dict[str, float] = {}  # reader score of the best answer, 0 when none
    from_gold_paragraph = 0
    answered = 0
    above_default = 0
    with Searcher(Index.open(settings), qa_model_path=qa_path, precision=settings.precision) as searcher:
        searcher.load_models()
        default_threshold = searcher.threshold
        began = time.perf_counter()
        for q in questions:
            result = searcher.ask(q.question, top_k=1, passages=args.passages, threshold=args.threshold)
            best = result.answers[0] if result.answers else None
            predictions[q.qid] = best.text if best else ""
            best_scores[q.qid] = best.reader_score if best else 0.0
            answered += best is not None
            # the searcher's threshold applies to the reader score, not to the passage-weighted score
            above_default += best is not None and best.reader_score >= default_threshold
            from_gold_paragraph += best is not None and c.pid_of_path(best.path) == q.pid
        seconds = time.perf_counter() - began
        for q in unanswerable:
            result = searcher.ask(q.question, top_k=1, passages=args.passages, threshold=0.0)
            best_scores[q.qid] = result.answers[0].reader_score if result.answers else 0.0
        reader = searcher.reader
        reader_facts = {"precision": reader.precision, "max_seq_len": reader.max_seq_len, "stride": reader.stride,
                        "reader_threshold": reader.threshold, "max_answer_len": reader.max_answer_len}
    gold = {q.qid: list(q.answers) for q in questions}
    scores = squad_scores(gold, predictions)
    n = len(questions)
    sweep = []
    for t in SWEEP:
        kept = {qid: text if best_scores[qid] >= t else "" for qid, text in predictions.items()}
        at = squad_scores(gold, kept)
        row = {"threshold": t, "answerable_answered": round(sum(map(bool, kept.values())) / n, 4),
               "exact_match": round(at["exact"], 2), "f1": round(at["f1"], 2)}
        if unanswerable:
            row["unanswerable_abstained"] = round(
                sum(best_scores[q.qid] < t for q in unanswerable) / len(unanswerable), 4)
        sweep.append(row)
    return {
        "what": "open QA over all SQuAD v1.1 dev paragraphs: Searcher.ask(question, top_k=1, passages=P, threshold), "
                "best answer scored with the official EM/F1 normalisation",
        "encoder": {"id": built["model_id"], "chunk_tokens": built["chunk_tokens"],
                    "chunk_overlap": built["chunk_overlap"]},
        "qa_model": {"path": qa_path or "shipped default", "note": qa_note, **reader_facts},
        "metrics": "bertsearch.search.training.metrics.squad_scores (official SQuAD normalisation)",
        "documents": built["documents"],
        "chunks": built["chunks"],
        "passages": args.passages,
        "questions": n,
        "sample": f"seeded random sample (seed {args.seed}) of the 10,570 questions" if limit else "all questions",
        "exact_match": round(scores["exact"], 2),
        "f1": round(scores["f1"], 2),
        "threshold": args.threshold,
        "answered": round(answered / n, 4),
        "searcher_default_threshold": default_threshold,
        "answered_at_default_threshold": round(above_default / n, 4),
        "answer_from_the_right_paragraph": round(from_gold_paragraph / n, 4),
        "seconds_per_question": round(seconds / n, 3),
        "unanswerable_questions": len(unanswerable),
        "unanswerable_sample": unanswerable_note,
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
    p.add_argument("--passages", type=int, default=5, help="passages retrieved and read per question")
    p.add_argument("--seed", type=int, default=0, help="seed of the question sample")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="answer score threshold; 0 always answers (every SQuAD v1.1 question has an answer)")
    p.add_argument("--unanswerable", type=int, default=500,
                   help="also ask this many of SQuAD 2.0 dev's unanswerable questions (0: none)")
    c.run("eval_openqa", main, p.parse_args())
