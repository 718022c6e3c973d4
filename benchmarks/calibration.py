"""Whether ask's confidence means what it says, on questions no fit has seen.

For each set, every question is asked with ``Searcher.ask`` at the default settings (hybrid, 10
passages); its top answer's confidence and whether it is right make one pair
(``bertsearch.search.training.reliability``):

- ``heldout``: the held-out report set, ``tests/fixtures/heldout/`` (135 plain questions over 79
  documents, written before any tuning); right: ``answer_matches``.
- ``techqa_heldout``: generated questions about documents of the training sources that training
  never read (techqa's ``.heldout.json``, ``--techqa-heldout``; their documents from
  ``--tech-sources``); ``--tech-documents`` documents indexed, ``--tech-questions`` asked. No fit
  reads these questions, but the confidence fits read *written* questions about held-out documents
  (the written pairs' ``.heldout.json``, the same hash share of the documents), so many of these
  documents were seen by a fit, through other questions. Right: ``answer_matches``.
- ``squad_train_heldout``: SQuAD *train* articles outside the calibration corpus (the last
  ``--squad-articles`` titles of the order the calibration draws its 40 from, seed 0); each
  paragraph a document, ``--squad-questions`` of their questions asked. Right: F1 >= 0.5.

Reported per set: the expected calibration error (10 bins) with its bins, accuracy against
coverage as the threshold moves, and coverage, accuracy and the share of right answers kept at the
default threshold. The plot (``--plot``, default ``results/calibration.png``) draws the reliability
diagrams and the coverage curves.

Run: ``python benchmarks/calibration.py --techqa-heldout techqa.heldout.json --tech-sources SOURCES``
(``--answer-model FILE`` measures another fit than the shipped one; ``--large-reader FOLDER`` asks with two
heads read as one, and measures the fit in that folder).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import _common as c

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "fixtures" / "heldout"


def pairs_of(searcher: Any, questions: list[tuple[str, tuple[str, ...]]], judge: Any) -> list[tuple[float, bool]]:
    """(confidence, right) of each question's top answer; no answer: (0, wrong)."""
    pairs = []
    for text, golds in questions:
        answers = searcher.ask(text).answers
        best = answers[0] if answers else None
        pairs.append((best.confidence, judge(best.text, golds)) if best else (0.0, False))
    return pairs


def squad_right(answer: str, golds: tuple[str, ...]) -> bool:
    from bertsearch.search.training.metrics import f1_score

    return max((f1_score(answer, g) for g in golds), default=0.0) >= 0.5


def heldout_set(args: Any) -> tuple[Path, list[tuple[str, tuple[str, ...]]]]:
    data = json.loads((HELDOUT.parent / "heldout_questions.json").read_text(encoding="utf-8"))["questions"]
    return HELDOUT, [(q["q"], tuple(q["answers"])) for q in data]


def techqa_heldout_set(args: Any) -> tuple[Path, list[tuple[str, tuple[str, ...]]]]:
    from bertsearch.search.training.calibrate import technical_questions

    if args.techqa_heldout is None or args.tech_sources is None:
        raise c.Skip("techqa_heldout needs --techqa-heldout and --tech-sources")
    folder = args.work_dir / "calibration" / "techqa_heldout" / "docs"
    asked, _ = technical_questions(args.techqa_heldout, args.tech_sources, args.tech_documents, args.tech_questions,
                                   0, folder)
    return folder, asked


def squad_train_heldout_set(args: Any) -> tuple[Path, list[tuple[str, tuple[str, ...]]]]:
    from bertsearch.search.training.corpus import write_corpus
    from bertsearch.search.training.squad import squad_paragraphs

    train = args.squad_train
    if not train.is_file():
        raise c.Skip(f"SQuAD train not found at {train}; pass --squad-train")
    paragraphs = list(squad_paragraphs(train))
    titles = sorted({p.title for p in paragraphs})
    random.Random(0).shuffle(titles)  # calibrate.build_corpus's order: it takes the first 40
    chosen = set(titles[-args.squad_articles:])
    kept = [p for p in paragraphs if p.title in chosen]
    folder = write_corpus(kept, args.work_dir / "calibration" / "squad_train_heldout" / "docs")
    questions = [(e.question, tuple(a.text for a in e.answers)) for p in kept for e in p.examples if e.answers]
    random.Random(1).shuffle(questions)
    return folder, questions[: args.squad_questions]


SETS = {"heldout": heldout_set, "techqa_heldout": techqa_heldout_set, "squad_train_heldout": squad_train_heldout_set}


def measure(args: Any, name: str) -> dict[str, Any]:
    from bertsearch.search.confidence import load_answer_model
    from bertsearch.search.searcher import Searcher
    from bertsearch.search.training.metrics import answer_matches
    from bertsearch.search.training.reliability import at_threshold, calibration_error, coverage_curve

    folder, questions = SETS[name](args)
    if args.smoke:
        questions = questions[:5]
    settings, _summary, info = c.index_folder(folder, args.work_dir / "calibration" / name / "index",
                                              chunk_header=args.chunk_header)
    model = load_answer_model(args.answer_model) if args.answer_model else None
    if args.large_reader:
        settings = settings.model_copy(update={"large_reader": args.large_reader})
    with Searcher.open(settings, answer_model=model) as searcher:
        searcher.load_models()
        pairs = pairs_of(searcher, questions, squad_right if name == "squad_train_heldout" else answer_matches)
        threshold = searcher.threshold
    return {"documents": info["documents"], "chunks": info["chunks"], "chunk_header": info["chunk_header"],
            "questions": len(pairs),
            "right_top_answer_any_confidence": round(sum(r for _, r in pairs) / len(pairs), 4),
            "at_default_threshold": at_threshold(pairs, threshold),
            "calibration": calibration_error(pairs), "coverage_curve": coverage_curve(pairs)}


def plot(sets: dict[str, Any], threshold: float, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rel, cov) = plt.subplots(1, 2, figsize=(11, 4.6))
    rel.plot([0, 1], [0, 1], color="gray", linestyle=":", label="perfectly calibrated")
    for name, s in sets.items():
        bins = s["calibration"]["bins"]
        rel.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                 label=f"{name} (ECE {s['calibration']['ece']:.3f}, n={s['questions']})")
        curve = s["coverage_curve"]
        cov.plot([p["coverage"] for p in curve], [p["accuracy"] for p in curve], marker=".", label=name)
        at = s["at_default_threshold"]
        cov.scatter([at["coverage"]], [at["accuracy"]], marker="x", s=60, color="black", zorder=3)
    rel.set(xlabel="confidence of the top answer (bin mean)", ylabel="share right", xlim=(0, 1), ylim=(0, 1),
            title="Reliability")
    cov.set(xlabel="coverage (share of questions answered)", ylabel="accuracy of the answered", xlim=(0, 1),
            ylim=(0, 1.02), title=f"Accuracy against coverage (x: default threshold {threshold:g})")
    rel.legend(fontsize=8, loc="upper left")
    cov.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.search.confidence import answer_model_of, load_answer_model, pair_answer_model_of

    settings = Settings()
    args.large_reader = args.large_reader or settings.large_reader  # the option's, or BERTSEARCH_LARGE_READER's
    model = (load_answer_model(args.answer_model) if args.answer_model
             else (pair_answer_model_of(args.large_reader) if args.large_reader else None)
             or answer_model_of(settings.qa_model_path))
    sets = {}
    for name in args.sets.split(","):
        try:
            sets[name] = measure(args, name)
        except c.Skip as exc:
            sets[name] = {"skipped": str(exc)}
    measured = {k: v for k, v in sets.items() if "skipped" not in v}
    if measured and not args.smoke:
        plot(measured, model.threshold, args.plot)
    return {"what": "the top answer's confidence against its being right, on questions no fit has seen",
            "answer_model": c.fit_source(args.answer_model, args.large_reader, settings.qa_model_path),
            "large_reader": c.shown(args.large_reader) if args.large_reader else None, "threshold": model.threshold,
            "ece_goal": 0.05, "sets": sets}


if __name__ == "__main__":
    p = c.parser("calibration", __doc__)
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    p.add_argument("--answer-model", type=Path, default=None, help="answer_model.json to measure (default: shipped)")
    p.add_argument("--large-reader", default=None,
                   help="a second QA model folder that rereads the best passages (its folder's fit is measured)")
    p.add_argument("--techqa-heldout", type=Path, default=None, help="techqa's .heldout.json")
    p.add_argument("--tech-sources", type=Path, default=None, help="the folder techqa read")
    p.add_argument("--tech-documents", type=int, default=100)
    p.add_argument("--tech-questions", type=int, default=500)
    p.add_argument("--squad-train", type=Path, default=c.DEFAULT_SQUAD_DIR / c.SQUAD_V1_TRAIN)
    p.add_argument("--squad-articles", type=int, default=10)
    p.add_argument("--squad-questions", type=int, default=500)
    c.add_chunk_header_option(p)
    p.add_argument("--plot", type=Path, default=c.RESULTS / "calibration.png")
    args = p.parse_args()
    if not set(args.sets.split(",")) <= set(SETS):
        p.error(f"--sets: choose among {', '.join(SETS)}")
    c.run("calibration", main, args)
