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

With ``--techqa`` (a SQuAD-shaped file of technical questions: the train file of
:mod:`bertsearch.search.training.techqa`, or the written pairs' held-out file that the reader's
confidence is fitted on; never techqa's ``.heldout.json``, which ``benchmarks/calibration.py``
reports on), questions about ``--tech-documents`` documents of ``--tech-sources`` join the fitting
set, asked over an index of those documents
(:func:`bertsearch.search.training.calibrate.technical_questions` draws them).

The fit reads every answer a question gets, so it learns to rank definition answers against the
reader's. Its confidence of each question's *top* answer, the one ``ask`` is judged by, need not
mean what it says: ``--scale-on top`` rescales the fitted logit ``z`` to ``a * z + c`` (Platt
scaling on the top answers, :func:`bertsearch.search.training.calibrate.platt`), which keeps the
order of every question's answers and changes only which of them clear the threshold.
``--scale-on top-techqa`` fits that scale on the ``--techqa`` questions' top answers alone: with
the written pairs, on questions as people write them (the tuning set's are few, and its documents
shaped the definition rules).
``--work DIR`` keeps the labelled answers (``DIR/rows.json``); ``--rows DIR/rows.json`` refits from
them without indexing or asking anything again. ``--scale-rows FILE`` fits the scale on the top
answers of rows another run kept, which rank nothing: the ranking can be learnt from many generated
questions and its confidence scaled on written ones.
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

from bertsearch.search.confidence import MODEL_FILE
from bertsearch.search.training.calibrate import logistic, platt, technical_questions
from bertsearch.search.training.metrics import loose
from bertsearch.search.training.reliability import calibration_error

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


def fit(rows: list[dict[str, Any]], scale_top: bool = False, scale_set: str | None = None,
        scale_rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The logistic model of :data:`FEATURES` on every answer of ``rows``, and how its top answers
    fare. With ``scale_top`` its logit is then Platt-scaled on each question's top answer (see
    the module docstring): the same answers come first, with a confidence fitted to them. The
    scale is fitted on the top answers of ``scale_rows`` where given (rows kept by another run:
    they rank nothing), else of ``rows``; with ``scale_set``, of the rows of that set alone."""
    rows = [r for r in rows if r["answers"]]
    answers = [a for r in rows for a in r["answers"]]
    if not answers:
        raise ValueError("no definition answers to fit on")
    x = _matrix(answers)
    y = np.array([1.0 if a["right"] else 0.0 for a in answers])
    w, b = logistic(x, y, l2=1e-2)
    z_top, top_right = _tops(rows, w, b)

    def top_ece(logits: np.ndarray, right: np.ndarray = top_right) -> float:
        conf = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        return calibration_error(list(zip(conf.tolist(), right.astype(bool).tolist())))["ece"]

    scale = {}
    if scale_top:
        pool = [r for r in (rows if scale_rows is None else scale_rows) if scale_set is None or r.get("set") == scale_set]
        z_pool, right_pool = _tops(pool, w, b)
        if not len(z_pool):
            raise ValueError(f"no top answers of the set {scale_set!r} to scale on")
        a, c = platt(z_pool, right_pool, "on the definition questions' top answers")
        scale = {"scaled_on_top": {"a": round(a, 6), "c": round(c, 6), "answers": len(z_pool),
                                   **({"set": scale_set} if scale_set else {}),
                                   **({"rows": "another run's"} if scale_rows is not None else {}),
                                   "top_answer_ece_in_sample_before": top_ece(z_top),
                                   "scaled_answers_ece_before": top_ece(z_pool, right_pool),
                                   "scaled_answers_ece": top_ece(a * z_pool + c, right_pool)}}
        w, b = w * a, float(b * a + c)
        z_top = a * z_top + c  # monotone: the same top answers, at the scaled fit
    return {"coefficients": {k: round(float(v), 6) for k, v in zip(FEATURES, w)}, "intercept": round(b, 6),
            "answers_fitted": len(answers), "right_share": round(float(y.mean()), 4), "questions": len(rows),
            "best_right": int(top_right.sum()), "best_right_before": sum(_before(r)["right"] for r in rows),
            "top_answer_ece_in_sample": top_ece(z_top), **scale}


def _matrix(answers: list[dict[str, Any]]) -> np.ndarray:
    """The answers' :data:`FEATURES`, one row each (a feature an answer lacks counts 0)."""
    return np.array([[a.get(k, 0.0) for k in FEATURES] for a in answers])


def _tops(rows: list[dict[str, Any]], w: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    """The fitted logit of each question's top answer (the one ``ask`` returns first) and whether
    it is right."""
    z, right = [], []
    for r in rows:
        if r["answers"]:
            logits = _matrix(r["answers"]) @ w + b
            top = int(np.argmax(logits))
            z.append(float(logits[top]))
            right.append(1.0 if r["answers"][top]["right"] else 0.0)
    return np.array(z), np.array(right)


def _before(row: dict[str, Any]) -> dict[str, Any]:
    """The answer the reader alone gave first (what ask returned before definition answers)."""
    return next((a for a in row["answers"] if "reader_logit" in a), {"right": False})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bertsearch.search.training.fit_definitions", description=__doc__)
    p.add_argument("--folder", type=Path, default=TUNE,
                   help=f"the tuning documents (default: {TUNE}, from the repository's root)")
    p.add_argument("--questions", type=Path, default=None,
                   help="their questions (default: FOLDER_questions.json beside the folder)")
    p.add_argument("--out", type=Path, default=MODEL_FILE, help="answer_model.json to update (default: the installed one)")
    p.add_argument("--techqa", type=Path, help="technical questions (techqa's train file, or the written pairs' held-out file)")
    p.add_argument("--tech-sources", type=Path, help="the folder techqa read")
    p.add_argument("--tech-documents", type=int, default=150)
    p.add_argument("--tech-questions", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1, help="which technical documents are drawn")
    p.add_argument("--scale-on", choices=("none", "top", "top-techqa"), default="none",
                   help="top: Platt-scale the fitted confidence on each question's top answer (keeps their order); "
                        "top-techqa: on the top answers of the --techqa questions only")
    p.add_argument("--work", type=Path, help="a folder to keep the labelled answers in (WORK/rows.json)")
    p.add_argument("--rows", type=Path, help="refit from the rows a run kept (WORK/rows.json), reading nothing again")
    p.add_argument("--scale-rows", type=Path,
                   help="with --scale-on: fit the scale on the top answers of the rows another run kept (and ranked "
                        "nothing with), e.g. written questions where the ranking is fitted on generated ones")
    args = p.parse_args(argv)
    if (args.techqa is None) != (args.tech_sources is None):
        p.error("--techqa and --tech-sources go together")
    if args.scale_rows is not None and args.scale_on == "none":
        p.error("--scale-rows fits a scale: give --scale-on top or top-techqa")
    began = time.time()
    model = json.loads(args.out.read_text(encoding="utf-8"))
    if args.rows is not None:
        if args.techqa is not None:
            p.error("--rows refits what a run kept: it reads no --techqa")
        rows, data = _kept(p, "--rows", args.rows)
    else:
        rows, data = _read(p, args, model)
        if args.work is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            (args.work / "rows.json").write_text(json.dumps({"data": data, "rows": rows}) + "\n", encoding="utf-8")
    scale_rows = None
    if args.scale_rows is not None:
        scale_rows, scale_data = _kept(p, "--scale-rows", args.scale_rows)
        data += f"; scaled on the top answers of another run's rows: {scale_data}"
    try:
        result = fit(rows, scale_top=args.scale_on != "none", scale_set="techqa" if args.scale_on == "top-techqa" else None,
                     scale_rows=scale_rows)
    except ValueError as exc:  # nothing to fit on, or a scale that would reverse the order
        p.error(str(exc))
    model["definitions"] = {
        "coefficients": result.pop("coefficients"), "intercept": result.pop("intercept"),
        "fitted": {"data": data, "command": "python -m bertsearch.search.training.fit_definitions " + " ".join(argv or []),
                   "scale_on": args.scale_on, **result, "seconds": round(time.time() - began, 1)},
    }
    args.out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    return {"definitions": model["definitions"], "rows": rows}


def _kept(p: argparse.ArgumentParser, flag: str, path: Path) -> tuple[list[dict[str, Any]], str]:
    """The rows and their description from a rows file a run kept (``--work``)."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        return list(kept["rows"]), str(kept["data"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        p.error(f"{flag} {path} is not a rows file this command kept ({type(exc).__name__})")


def _read(p: argparse.ArgumentParser, args: argparse.Namespace, model: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Index the fitting sets, ask their questions, label the answers: the rows, and what they are."""
    from bertsearch.indexer import Index, Settings
    from bertsearch.search.confidence import AnswerModel
    from bertsearch.search.searcher import Searcher

    questions_file = args.questions or args.folder.parent / f"{args.folder.name}_questions.json"
    if not args.folder.is_dir():
        p.error(f"no folder {args.folder}: give --folder, the tuning set (tests/fixtures/techdocs_tune of a checkout)")
    if not questions_file.is_file():
        p.error(f"no file {questions_file}: give --questions, the tuning set's questions")
    questions = json.loads(questions_file.read_text(encoding="utf-8"))["questions"]
    # The reader's answers as ask ranks them without definition answers (the fit's baseline).
    bare = AnswerModel.from_dict({k: v for k, v in model.items() if k != "definitions"})
    sets = [(args.folder, questions)]
    data = (f"{args.folder.as_posix()}: {len(questions)} questions about {len(list(args.folder.rglob('*.txt')))} "
            "documents (man pages and pydoc text); never the reported techdocs set")
    with tempfile.TemporaryDirectory() as tmp:
        if args.techqa is not None:
            asked, _ = technical_questions(args.techqa, args.tech_sources, args.tech_documents, args.tech_questions,
                                           args.seed, Path(tmp) / "techdocs")
            sets.append((Path(tmp) / "techdocs", [{"q": q, "answers": list(golds)} for q, golds in asked]))
            data += (f"; {args.techqa.name}: {len(asked)} questions about {args.tech_documents} "
                     f"documents of the training sources (seed {args.seed})")
        rows = []
        for n, (folder, asked_here) in enumerate(sets):
            settings = Settings(index_dir=Path(tmp) / f"index{n}")
            with Index.open(settings, create=True) as index:
                index.update(folder)
            with Searcher.open(settings, answer_model=bare) as searcher:
                rows += [{**row, "set": "tune" if n == 0 else "techqa"} for row in collect(searcher, asked_here)]
    return rows, data


if __name__ == "__main__":
    import sys

    out = main(sys.argv[1:])
    for row in out["rows"]:
        print(row["q"])
        for a in row["answers"]:
            print("   ", "+" if a["right"] else "-", repr(a["text"][:40]),
                  {k: round(v, 3) for k, v in a.items() if k in FEATURES})
    print(json.dumps(out["definitions"], indent=2))
