"""Fit the confidence of definition-list answers (:mod:`bertsearch.search.definitions`).

``python -m bertsearch.search.training.fit_definitions [--folder DIR] [--questions FILE] [--out FILE]
[--techqa FILE --tech-sources DIR]``

The fitting set is a checkout's ``tests/fixtures/techdocs_tune/`` (man pages and pydoc text; the
default ``--folder``, relative to the current folder: run it from the repository's root) and its
questions ``techdocs_tune_questions.json`` beside it; the reported set, ``techdocs/``, is never read
here. The folder is indexed with ``Index.update``, each question retrieves its passages as ``ask`` does (hybrid, the
default number of passages), and each definition answer the question gets (up to
``MAX_DEFINITION_ANSWERS``), and each of the reader's top answers to it, is labelled right when a gold answer is the term or one of its forms
(``-k`` or ``--keep`` of ``-k --keep``; stricter than the benchmark's ``answer_matches``, which
lets ``--unidirectional-new-file`` pass for ``--new-file``). One logistic regression over both
kinds (:func:`bertsearch.search.confidence.definition_confidence`) is written into ``answer_model.json`` under ``definitions``; the rest
of the file is kept.

With ``--techqa`` (the train file of :mod:`bertsearch.search.training.techqa`, never its
``.heldout.json``), generated questions about ``--tech-documents`` documents of ``--tech-sources``
join the fitting set, asked over an index of those documents
(:func:`bertsearch.search.training.calibrate.technical_questions` draws them).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bertsearch.search.training.calibrate import logistic, technical_questions
from bertsearch.search.training.metrics import loose

FEATURES = ("definition", "similarity", "margin", "overlap", "log_weight", "reader_logit")
READER_ANSWERS = 5
TUNE = Path("tests") / "fixtures" / "techdocs_tune"  # the default --folder, from a checkout's root


def is_right(term: str, golds: list[str]) -> bool:
    """Whether a gold answer is ``term`` or one of its forms (see the module docstring)."""
    forms = {loose(term)} | {loose(f) for f in re.split(r"[,\s]+", term) if f}
    return any(loose(g) in forms for g in golds)


def collect(searcher: Any, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per question that gets definition answers: the features of its definition answers and of
    the reader's top answers (the reader's own confidence as a logit), and whether each is right."""
    from bertsearch.search.answers import MAX_DEFINITION_ANSWERS, passage_weights
    from bertsearch.search.confidence import definition_features, reader_features
    from bertsearch.search.definitions import definition_answers
    from bertsearch.search.searcher import DEFAULT_PASSAGES

    encode = searcher.index.encoder.encode
    rows = []
    for q in questions:
        hits = searcher.retrieve(q["q"], DEFAULT_PASSAGES, mode="hybrid")
        texts = [h.text for h in hits]
        found = definition_answers(q["q"], texts, encode)[:MAX_DEFINITION_ANSWERS]
        if not found:
            continue
        weights = passage_weights([h.score for h in hits], "hybrid")
        answers = [{"text": texts[d.passage_index][d.entry.start:d.entry.end], **definition_features(d, weights)}
                   for d in found]
        read = [(a, f) for a, f in searcher.read_answers(q["q"], hits, "hybrid") if a.source == "reader"]
        answers += [{"text": a.text, **reader_features(f, searcher.answer_model)} for a, f in read[:READER_ANSWERS]]
        for a in answers:
            a["right"] = is_right(a["text"], q["answers"])
        rows.append({"q": q["q"], "answers": answers})
    return rows


def fit(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answers = [a for r in rows for a in r["answers"]]
    x = np.array([[a.get(k, 0.0) for k in FEATURES] for a in answers])
    y = np.array([1.0 if a["right"] else 0.0 for a in answers])
    w, b = logistic(x, y, l2=1e-2)
    z = x @ w + b
    best = [max(range(len(r["answers"])), key=lambda j, lo=lo: z[lo + j]) for lo, r in _offsets(rows)]
    return {"coefficients": {k: round(float(v), 6) for k, v in zip(FEATURES, w)}, "intercept": round(b, 6),
            "answers_fitted": len(answers), "right_share": round(float(y.mean()), 4), "questions": len(rows),
            "best_right": sum(r["answers"][j]["right"] for r, j in zip(rows, best)),
            "best_right_before": sum(_before(r)["right"] for r in rows)}


def _offsets(rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    out, lo = [], 0
    for r in rows:
        out.append((lo, r))
        lo += len(r["answers"])
    return out


def _before(row: dict[str, Any]) -> dict[str, Any]:
    """The answer the reader alone gave first (what ask returned before definition answers)."""
    return next((a for a in row["answers"] if "reader_logit" in a), {"right": False})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from bertsearch.indexer import Index, Settings
    from bertsearch.search.confidence import MODEL_FILE, AnswerModel
    from bertsearch.search.searcher import Searcher

    p = argparse.ArgumentParser(prog="python -m bertsearch.search.training.fit_definitions", description=__doc__)
    p.add_argument("--folder", type=Path, default=TUNE,
                   help=f"the tuning documents (default: {TUNE}, from the repository's root)")
    p.add_argument("--questions", type=Path, default=None,
                   help="their questions (default: FOLDER_questions.json beside the folder)")
    p.add_argument("--out", type=Path, default=MODEL_FILE, help="answer_model.json to update (default: the installed one)")
    p.add_argument("--techqa", type=Path, help="generated technical questions (techqa's train file)")
    p.add_argument("--tech-sources", type=Path, help="the folder techqa read")
    p.add_argument("--tech-documents", type=int, default=150)
    p.add_argument("--tech-questions", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1, help="which technical documents are drawn")
    args = p.parse_args(argv)
    if (args.techqa is None) != (args.tech_sources is None):
        p.error("--techqa and --tech-sources go together")
    questions_file = args.questions or args.folder.parent / f"{args.folder.name}_questions.json"
    if not args.folder.is_dir():
        p.error(f"no folder {args.folder}: give --folder, the tuning set (tests/fixtures/techdocs_tune of a checkout)")
    if not questions_file.is_file():
        p.error(f"no file {questions_file}: give --questions, the tuning set's questions")
    began = time.time()
    questions = json.loads(questions_file.read_text(encoding="utf-8"))["questions"]
    model = json.loads(args.out.read_text(encoding="utf-8"))
    # The reader's answers as ask ranks them without definition answers (the fit's baseline).
    bare = AnswerModel.from_dict({k: v for k, v in model.items() if k != "definitions"})
    sets = [(args.folder, questions)]
    tech_note = ""
    with tempfile.TemporaryDirectory() as tmp:
        if args.techqa is not None:
            asked, _ = technical_questions(args.techqa, args.tech_sources, args.tech_documents, args.tech_questions,
                                           args.seed, Path(tmp) / "techdocs")
            sets.append((Path(tmp) / "techdocs", [{"q": q, "answers": list(golds)} for q, golds in asked]))
            tech_note = (f"; {args.techqa.name}: {len(asked)} generated questions about {args.tech_documents} "
                         f"documents of the training sources (seed {args.seed})")
        rows = []
        for n, (folder, asked_here) in enumerate(sets):
            settings = Settings(index_dir=Path(tmp) / f"index{n}")
            with Index.open(settings, create=True) as index:
                index.update(folder)
            with Searcher.open(settings, answer_model=bare) as searcher:
                rows += collect(searcher, asked_here)
    result = fit(rows)
    model["definitions"] = {
        "coefficients": result.pop("coefficients"), "intercept": result.pop("intercept"),
        "fitted": {"data": f"{args.folder.as_posix()}: {len(questions)} questions about "
                           f"{len(list(args.folder.rglob('*.txt')))} documents (man pages and pydoc text); "
                           "never the reported techdocs set" + tech_note,
                   "command": "python -m bertsearch.search.training.fit_definitions " + " ".join(argv or []),
                   **result, "seconds": round(time.time() - began, 1)},
    }
    args.out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    return {"definitions": model["definitions"], "rows": rows}


if __name__ == "__main__":
    import sys

    out = main(sys.argv[1:])
    for row in out["rows"]:
        print(row["q"])
        for a in row["answers"]:
            print("   ", "+" if a["right"] else "-", repr(a["text"][:40]),
                  {k: round(v, 3) for k, v in a.items() if k in FEATURES})
    print(json.dumps(out["definitions"], indent=2))
