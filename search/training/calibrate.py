"""Fit the hybrid fusion weight and the answer confidence on SQuAD *train* questions.

``python -m bertsearch.search.training.calibrate --train train-v1.0.json.gz --out search/answer_model.json``

1. A corpus of train articles (each paragraph a document) is indexed with ``Index.update``.
2. Fusion: answerable questions of those articles are asked in dense and lexical mode (the top
   ``depth`` chunks each); the dense weight ``w`` of :func:`bertsearch.search.retrieval.fuse`
   with the best paragraph MRR@10 is kept (a grid of 0.05). With ``--fusion-on technical`` the
   technical questions (below) are asked instead, and the best MRR@10 of their document is kept:
   for a head whose documents are not English, fitted on its own language's train questions.
3. Confidence: the same questions through the searcher's own reading path
   (:meth:`Searcher.read_answers`, hybrid mode with that ``w``), plus questions the corpus cannot
   answer: questions of other train articles, and near-miss rewrites of corpus questions
   (:mod:`bertsearch.search.training.perturb`). Each question's top 5 answers are labelled right when
   their F1 with a gold answer is at least 0.5 (never for an unanswerable question), and a logistic
   regression on :func:`bertsearch.search.confidence.confidence_features` is fitted (Newton, L2 1e-3)
   on the first ``--fit-answers`` of them as they were read (default 1: the top answer, what ``ask``
   is judged by); the threshold, the scale and the cross-check then take each question's answer
   that the fit ranks first (:func:`ranked_first`: among the rows' reader answers; ``ask`` also
   ranks the definition answers, fitted apart).
   ``--rows`` refits from the rows a run kept, reading nothing again; ``--leave-out`` drops a
   feature (to refit rows kept before it existed, or to see what it adds).
   With ``--techqa`` (questions generated from technical documents by
   :mod:`bertsearch.search.training.techqa`, its train file, never its ``.heldout.json``), technical
   questions join them: ``--tech-documents`` of their documents (from ``--tech-sources``) are indexed
   apart, ``--tech-questions`` of their questions are asked there, and as many questions of other
   documents serve as unanswerable ones; those that name their own document have the name swapped
   for an indexed document's (:func:`renamed`), so that unanswerable questions name an indexed page
   about as often as answerable ones do, and naming the answer's document is no sign of an answer by
   itself (the confidence reads it). A technical answer is right when it matches a gold answer
   as the technical report sets judge it (:func:`~bertsearch.search.training.metrics.answer_matches`).
   With ``--scale-on answerable`` the fitted logit is then rescaled on the answerable questions'
   top answers alone (:func:`rescaled`): the unanswerable questions teach the fit what a wrong
   answer looks like, but they also pull every confidence down, so a fit on all of them is
   under-confident wherever the documents do hold the answer. The scale keeps every order. The
   definition answers' fit reads the reader's logit, so rerun ``fit_definitions --out OUT`` after.
4. Threshold: the highest confidence that still leaves ``--keep`` of the answerable questions'
   right top answers above it, for each kind of question (SQuAD's and the technical ones): the
   lower of the two, so that right answers are dropped in neither (the default serves answering).
   On one threshold for all, SQuAD's many confident answers let it keep only 87.5% of the right
   technical ones.

Nothing here reads a dev or report set.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertsearch.search.confidence import probability
from bertsearch.search.naming import document_names, file_stem, mentions
from bertsearch.search.training.metrics import answer_matches, f1_score, ranking_scores
from bertsearch.search.training.reliability import calibration_error
from bertsearch.search.training.corpus import write_corpus
from bertsearch.search.training.squad import SquadExample, SquadParagraph, load_squad

FEATURES = ("log_reader", "log_null", "span_logit", "log_weight", "dense_rank1", "lexical_rank1", "both",
            "names_document", "names_other")
GRID = [round(0.05 * i, 2) for i in range(21)]


def build_corpus(examples: list[SquadExample], articles: int, seed: int, folder: Path) -> tuple[dict[str, int], list[str]]:
    """Write ``articles`` train articles as ``<article>/<pid>.txt``; paragraph ids by context, and the other titles."""
    titles = sorted({e.title for e in examples})
    random.Random(seed).shuffle(titles)
    chosen, others = set(titles[:articles]), titles[articles:]
    pids: dict[str, int] = {}
    paragraphs = []
    for e in examples:
        if e.title in chosen and e.context not in pids:
            pids[e.context] = len(pids)
            paragraphs.append(SquadParagraph(pid=pids[e.context], title=e.title, context=e.context, examples=()))
    write_corpus(paragraphs, folder)
    return pids, others


def searched(index: Any, questions: Sequence[tuple[str, Hashable]],
             depth: int) -> Iterator[tuple[str, Hashable, Any, list[Any]]]:
    """Each ``(text, target)`` of ``questions`` searched as ``ask`` retrieves (both lists to
    ``depth``, :class:`~bertsearch.search.retrieval.Hybrid`), for a fit to fuse at any weight:
    ``(text, target, found, records)``, ``records`` those of its candidate chunks (the only chunks
    a fusion of it can rank)."""
    from bertsearch.search.retrieval import Hybrid

    for text, target in questions:
        found = Hybrid.search(index, index.encoder.encode([text], query=True)[0], text, depth)
        yield text, target, found, index.fetch_chunks(found.candidates)


def fit_fusion(searcher: Any, questions: list[tuple[str, Hashable]], target_of: Callable[[str], Hashable],
               depth: int) -> dict[str, Any]:
    """The dense weight with the best MRR@10 of each question's target over ``questions``
    ((text, target) pairs: a SQuAD question and its paragraph, a technical question and its
    document); ``target_of`` gives the target of an indexed chunk's path."""
    runs = [(target, found, {r.chunk_id: target_of(r.path) for r in records})
            for _, target, found, records in searched(searcher.index, questions, depth)]

    table = {}
    for w in GRID:
        scores = ranking_scores([(target, [targets[item.chunk_id] for item in found.fuse(w, depth)])
                                 for target, found, targets in runs])
        table[w] = {"mrr@10": scores["mrr@10"], "recall@5": scores["top5"]}
    best = max(GRID, key=lambda w: (table[w]["mrr@10"], -abs(w - 0.5)))
    return {"dense_weight": best, "questions": len(runs), "table": {str(w): v for w, v in table.items()}}


def question_documents(path: Path) -> dict[str, str]:
    """The document (title) each answerable question of a techqa train file asks about; a question
    asked of two documents ("What does -v do?") is left out: it has no one right document."""
    seen: dict[str, set[str]] = {}
    for e in load_squad(path):
        if "/" in e.title and not e.is_impossible and e.answers:
            seen.setdefault(e.question, set()).add(e.title.split("#")[0])
    return {q: next(iter(titles)) for q, titles in seen.items() if len(titles) == 1}


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> tuple[np.ndarray, float]:
    """Weights and intercept of an L2-regularised logistic regression (Newton's method)."""
    X = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -50, 50)))
        grad = X.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0.0]
        hess = (X.T * (p * (1 - p))) @ X / len(y) + l2 * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def collect(searcher: Any, questions: list[tuple[str, tuple[str, ...]]], passages: int, top: int,
            technical: bool = False) -> list[dict[str, Any]]:
    """Per question: the top answers' features, their F1 with the gold answers (none: unanswerable).

    With ``technical``, an answer that :func:`answer_matches` a gold answer counts as F1 1."""
    rows = []
    for text, golds in questions:
        hits = searcher.retrieve(text, passages, mode="hybrid")
        found = [(a, f) for a, f in searcher.read_answers(text, hits, "hybrid") if a.source == "reader"][:top]
        rows.append({"answerable": bool(golds), "technical": technical, "answers": [
            {"features": f, "f1": 1.0 if technical and golds and answer_matches(a.text, golds)
             else max((f1_score(a.text, g) for g in golds), default=0.0)} for a, f in found]})
    return rows


def technical_questions(path: Path, sources: Path, documents: int, questions: int, seed: int,
                        folder: Path) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    """Copy ``documents`` documents of a techqa train file into ``folder``; ``questions`` of their
    answerable questions with their gold answers, and as many questions of other documents."""
    import shutil

    by_title: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for e in load_squad(path):
        if "/" in e.title and not e.is_impossible and e.answers:  # SQuAD's titles have no slash
            by_title.setdefault(e.title, []).append((e.question, tuple(a.text for a in e.answers)))
    titles = sorted(t for t in by_title if (sources / t).is_file())
    rng = random.Random(seed)
    rng.shuffle(titles)
    chosen, others = titles[:documents], titles[documents:]
    if folder.exists():
        shutil.rmtree(folder)
    for t in chosen:
        (folder / t).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources / t, folder / t)
    inside = [q for t in chosen for q in by_title[t]]
    outside = [(t, q) for t in others for q, _ in by_title[t]]
    rng.shuffle(inside)
    rng.shuffle(outside)
    named = [t for t in chosen if document_names(t)]
    off = [(renamed(q, t, rng.choice(named)) if named else None) or q for t, q in outside[:questions]]
    return inside[:questions], off


def renamed(question: str, path: str, other: str) -> str | None:
    """``question`` with the name of its document (at ``path``) swapped for the name of the
    document at ``other`` ("Which wipefs option ..." -> "Which lsblk option ..."), or ``None`` where
    it does not name its document (:func:`~bertsearch.search.naming.document_names`). The other
    document may answer it all the same (two pages of one package share options): a little noise
    in the unanswerable questions."""
    spans = mentions(question, document_names(path))
    if not spans or len(question.lower()) != len(question):  # the offsets are those of the lower-cased text
        return None
    for lo, hi in reversed(spans):
        question = question[:lo] + file_stem(other) + question[hi:]
    return question


def fit_confidence(rows: list[dict[str, Any]], keep: float, answers: int = 1,
                   features: tuple[str, ...] = FEATURES, scale_on_answerable: bool = False) -> dict[str, Any]:
    """The logistic model of ``features`` on the first ``answers`` answers of each question, and
    the threshold.

    The top answer is the one ``ask`` is judged by: fitted on the top answers alone, its
    confidence means what it says (top-answer ECE on the fitting rows 0.029 on SQuAD, 0.048 on the
    technical questions, against 0.078 and 0.030 fitted on the top 5, whose ECE of the answers
    below the top goes from 0.019 to 0.031).

    With ``scale_on_answerable``, the fitted logit ``z`` becomes ``a * z + c``, with ``a`` and
    ``c`` fitted on the top answers of the answerable questions alone (:func:`rescaled`): the
    confidence then says how often an answer is right where the documents hold one, which is what
    a set of answerable questions measures. The scale is monotone, so each question's answers keep
    their order and the threshold, chosen below by the same rule, passes the same reader answers (up
    to its rounding to 0.001; the definition answers' fit reads the logit and is refitted after).
    """
    fitted = [a for r in rows for a in r["answers"][:answers]]
    missing = sorted({k for a in fitted for k in features if k not in a["features"]})
    if missing:
        raise ValueError(f"the rows carry no {', '.join(missing)} (kept before the feature existed?): "
                         + " ".join(f"--leave-out {k}" for k in missing) + " refits without it")
    x = np.array([[a["features"][k] for k in features] for a in fitted])
    y = np.array([1.0 if a["f1"] >= 0.5 else 0.0 for a in fitted])
    w, b = logistic(x, y)
    scale = None
    if scale_on_answerable:
        w, b, scale = rescaled(w, b, features, [r for r in rows if r["answerable"]])
    tops = top_answers(rows, b, {k: float(wi) for k, wi in zip(features, w)})
    by_kind, reliability = {}, {}
    for kind in sorted({t[0] for t in tops}):
        mine = [t for t in tops if t[0] == kind]
        right_tops = sorted(c for _, answerable, c, right in mine if answerable and right)
        if right_tops:
            by_kind[kind] = right_tops[int((1.0 - keep) * len(right_tops))]
        # In sample (what the fit saw): the top answers' reliability.
        reliability[kind] = calibration_error([(c, right) for _, _, c, right in mine])["ece"]
    threshold = math.floor(min(by_kind.values(), default=0.0) * 1000) / 1000
    pos = [c for _, answerable, c, _ in tops if answerable]
    neg = [c for _, answerable, c, _ in tops if not answerable]
    answerable_tops = [t for t in tops if t[1]]
    return {
        "coefficients": {k: round(float(v), 6) for k, v in zip(features, w)}, "intercept": round(b, 6),
        "threshold": threshold,
        **({"scaled_on_answerable": scale} if scale is not None else {}),
        "threshold_by_kind": {k: math.floor(v * 1000) / 1000 for k, v in by_kind.items()},
        "train_answered_at_threshold": round(sum(c >= threshold for c in pos) / max(1, len(pos)), 4),
        "train_unanswerable_abstained_at_threshold": round(sum(c < threshold for c in neg) / max(1, len(neg)), 4),
        "answers_fitted": int(len(y)), "right_share": round(float(y.mean()), 4),
        "top_answer_ece_in_sample": reliability,
        "top_answer_ece_in_sample_answerable": {
            kind: calibration_error([(c, right) for k, _, c, right in answerable_tops if k == kind])["ece"]
            for kind in sorted({t[0] for t in answerable_tops})},
    }


def top_answers(rows: list[dict[str, Any]], intercept: float,
                coefficients: dict[str, float]) -> list[tuple[str, bool, float, bool]]:
    """Each question's top answer once, at the fit ``(intercept, coefficients)`` (the runtime's
    confidence, which ranks the answers: :func:`ranked_first`): its kind (``squad`` or
    ``technical``), whether the question is answerable, its confidence (0 for no answer) and
    whether it is right."""
    out = []
    for r in rows:
        best = ranked_first(r, intercept, coefficients)
        out.append(("technical" if r.get("technical") else "squad", r["answerable"],
                    probability(intercept, coefficients, best["features"]) if best else 0.0,
                    best is not None and best["f1"] >= 0.5))
    return out


def ranked_first(row: dict[str, Any], intercept: float, coefficients: dict[str, float]) -> dict[str, Any] | None:
    """The answer of ``row`` that the fit ``(intercept, coefficients)`` ranks first, as ``ask``
    ranks them by their confidence (the earlier one on a tie: the rows keep the order they were read
    in); None when the row has no answer."""
    if not row["answers"]:
        return None
    return max(row["answers"], key=lambda a: probability(intercept, coefficients, a["features"]))


def rescaled(w: np.ndarray, b: float, features: tuple[str, ...],
             rows: list[dict[str, Any]]) -> tuple[np.ndarray, float, dict[str, float]]:
    """The logistic model ``(w, b)`` with its logit ``z`` mapped to ``a * z + c``, where ``a`` and
    ``c`` are a one-feature logistic regression of whether each of ``rows``' top answers is right
    on its ``z`` (Platt scaling); ``a`` and ``c`` are returned too. ``a`` is kept positive, so the
    order of the answers is kept."""
    fit = {k: float(wi) for k, wi in zip(features, w)}
    tops = [a for a in (ranked_first(r, b, fit) for r in rows) if a is not None]
    if not tops:
        raise ValueError("no answerable question with an answer to scale the confidence on")
    z = np.array([float(np.dot(w, [a["features"][k] for k in features]) + b) for a in tops])
    a, c = platt(z, np.array([a["f1"] >= 0.5 for a in tops]), "on the answerable questions")
    return w * a, float(b * a + c), {"a": round(a, 6), "c": round(c, 6), "answers": len(tops)}


def cross_checked(rows: list[dict[str, Any]], keep: float, answers: int = 1, features: tuple[str, ...] = FEATURES,
                  seeds: int = 3) -> dict[str, dict[str, float]]:
    """How well the confidence, plain and scaled on the answerable questions, holds on rows it was
    not fitted on: for each of ``seeds`` random halvings of ``rows``, fitted on one half, the top-answer
    ECE of the other half's answerable questions by kind, and (``right_top``) the share of them
    whose answer ranked first is right (the ranking is the plain fit's and the scaled one's both);
    the means over the halvings. It tells from training data alone whether ``--scale-on answerable``
    helps, and what a feature adds to the ranking of the answers."""
    out: dict[str, dict[str, list[float]]] = {"plain": {}, "scaled": {}, "right_top": {}}
    for seed in range(seeds):
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        fitted, other = [rows[i] for i in order[: len(order) // 2]], [rows[i] for i in order[len(order) // 2:]]
        for name, scale in (("plain", False), ("scaled", True)):
            fit = fit_confidence(fitted, keep, answers, features, scale)
            tops = top_answers(other, fit["intercept"], fit["coefficients"])
            for kind in sorted({t[0] for t in tops if t[1]}):
                pairs = [(c, right) for k, answerable, c, right in tops if answerable and k == kind]
                out[name].setdefault(kind, []).append(calibration_error(pairs)["ece"])
                if scale:
                    out["right_top"].setdefault(kind, []).append(sum(right for _, right in pairs) / len(pairs))
    return {name: {kind: round(sum(v) / len(v), 4) for kind, v in kinds.items()} for name, kinds in out.items()}


def platt(z: np.ndarray, right: np.ndarray, where: str) -> tuple[float, float]:
    """``a`` and ``c`` of a one-feature logistic regression of ``right`` on the logits ``z`` (Platt
    scaling: ``a * z + c`` is the calibrated logit). ``a`` must come out positive, so that the
    scale keeps the order of the answers; otherwise a ValueError names ``where``."""
    (a,), c = logistic(np.asarray(z, dtype=float).reshape(-1, 1), np.asarray(right, dtype=float))
    if a <= 0:
        raise ValueError(f"the confidence does not rise with the fitted logit {where} (slope {a:.3f})")
    return float(a), float(c)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=Path, help="SQuAD v1 train file (.json or .json.gz); not read with --rows")
    p.add_argument("--out", type=Path, required=True, help="answer_model.json to write")
    p.add_argument("--work", type=Path, default=Path("benchmarks/work/calibrate"))
    p.add_argument("--articles", type=int, default=30)
    p.add_argument("--questions", type=int, default=1200, help="answerable questions")
    p.add_argument("--unanswerable", type=int, default=800, help="off-corpus plus near-miss questions")
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--passages", type=int, default=10, help="passages read per question (ask's default)")
    p.add_argument("--keep", type=float, default=0.95, help="share of right top answers kept by the threshold")
    p.add_argument("--techqa", type=Path, help="generated technical questions (techqa's train file)")
    p.add_argument("--tech-sources", type=Path, help="the folder techqa read (its titles are paths under it)")
    p.add_argument("--tech-documents", type=int, default=150, help="technical documents indexed")
    p.add_argument("--tech-questions", type=int, default=1000,
                   help="their questions asked, and as many questions of other documents (unanswerable)")
    p.add_argument("--fit-answers", type=int, default=1, help="answers of each question the model is fitted on")
    p.add_argument("--rows", type=Path, help="refit from the rows a run kept (WORK/rows.json), reading nothing again")
    p.add_argument("--leave-out", action="append", default=[], choices=FEATURES, metavar="FEATURE",
                   help="a feature the confidence does not read (repeatable: what a feature adds, or rows kept before it existed)")
    p.add_argument("--fusion-on", choices=("squad", "technical"), default="squad",
                   help="the questions the hybrid fusion weight is fitted on: SQuAD's (the right paragraph) or, "
                        "with --techqa, the technical ones (the right document; for documents in another language)")
    p.add_argument("--fit-on", choices=("all", "answerable"), default="all",
                   help="the questions the confidence is fitted on: all (the unanswerable ones too) or the "
                        "answerable ones (then it estimates whether an answer is right where the documents hold one)")
    p.add_argument("--scale-on", choices=("none", "answerable"), default="none",
                   help="answerable: rescale the fitted confidence (Platt scaling of its logit on the answerable "
                        "questions' top answers) so that it says how often an answer is right where the documents "
                        "hold one; monotone, so the threshold passes the same reader answers (rerun fit_definitions "
                        "after)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.train is None and args.rows is None:
        p.error("--train is needed unless --rows refits from a run's kept rows")
    if (args.techqa is None) != (args.tech_sources is None):
        p.error("--techqa and --tech-sources go together")
    if args.fusion_on == "technical" and args.techqa is None:
        p.error("--fusion-on technical needs --techqa and --tech-sources")
    from bertsearch.indexer import Index, Settings
    from bertsearch.search.confidence import MODEL_FILE, AnswerModel
    from bertsearch.search.searcher import Searcher
    from bertsearch.search.training.perturb import add_perturbed_negatives

    began = time.time()
    if args.rows is not None:
        kept = json.loads(args.rows.read_text(encoding="utf-8"))
        return _write(args, argv, kept["fusion"], kept["rows"], kept["data"], began)
    examples = load_squad(args.train)
    pids, others = build_corpus(examples, args.articles, args.seed, args.work / "docs")
    settings = Settings(index_dir=args.work / "index")
    with Index.open(settings, create=True) as index:
        index.update(args.work / "docs")
    rng = random.Random(args.seed)
    inside = [e for e in examples if e.context in pids]
    rng.shuffle(inside)
    asked = inside[: args.questions]
    other_set = set(others)
    outside = [e for e in examples if e.title in other_set]
    rng.shuffle(outside)
    near = [e for e in add_perturbed_negatives(inside[args.questions: args.questions + 3 * args.unanswerable], 1.0,
                                               seed=args.seed, weights=(3, 1, 1, 1, 3, 1, 1, 1)) if e.is_impossible]
    rng.shuffle(near)
    unanswerable = [e.question for e in outside[: args.unanswerable // 2]] + [e.question for e in near[: args.unanswerable // 2]]
    if args.techqa is not None:
        asked_tech, off_tech = technical_questions(args.techqa, args.tech_sources, args.tech_documents,
                                                   args.tech_questions, args.seed, args.work / "techdocs")
        tech_settings = Settings(index_dir=args.work / "techindex")
        with Index.open(tech_settings, create=True) as index:
            index.update(args.work / "techdocs")
    if args.fusion_on == "technical":
        documents = question_documents(args.techqa)
        with Searcher.open(tech_settings) as searcher:
            fusion = fit_fusion(searcher, [(q, documents[q]) for q, _ in asked_tech if q in documents],
                                str, args.depth)  # an indexed path is its file's path under the folder
        fusion["on"] = "technical"
    else:
        with Searcher.open(settings) as searcher:
            fusion = fit_fusion(searcher, [(q.question, pids[q.context]) for q in asked],
                                lambda path: int(Path(path).stem), args.depth)
        fusion["on"] = "squad"
    model = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    model.update(dense_weight=fusion["dense_weight"], depth=args.depth)
    args.out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    # The answers are read as ask reads them with the fitted fusion (the confidence is refitted below).
    with Searcher.open(settings, answer_model=AnswerModel.from_dict(model)) as searcher:
        rows = collect(searcher, [(q.question, tuple(a.text for a in q.answers)) for q in asked]
                       + [(q, ()) for q in unanswerable], args.passages, top=5)
    tech_note = ""
    if args.techqa is not None:
        with Searcher.open(tech_settings, answer_model=AnswerModel.from_dict(model)) as searcher:
            rows += collect(searcher, asked_tech + [(q, ()) for q in off_tech], args.passages, top=5, technical=True)
        tech_note = (f"; {args.techqa.name}: {args.tech_documents} technical documents, {len(asked_tech)} of their "
                     f"generated questions, {len(off_tech)} of other documents' (unanswerable)")
    data = (f"{args.train.name}: {args.articles} articles ({len(pids)} paragraphs as documents), "
            f"{len(asked)} of their questions, {len(unanswerable)} unanswerable (half from other articles, "
            "half near-miss rewrites)" + tech_note
            + ("; the fusion fitted on the technical questions" if args.fusion_on == "technical" else "")
            + "; no dev or report data")
    # What the fit reads, kept beside the work folder: a refit (--rows) need not read again.
    (args.work / "rows.json").write_text(json.dumps({"fusion": fusion, "data": data, "rows": rows}), encoding="utf-8")
    return _write(args, argv, fusion, rows, data, began)


def _cross_checked(rows: list[dict[str, Any]], keep: float, answers: int,
                   features: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """:func:`cross_checked` as the fit records it."""
    checked = cross_checked(rows, keep, answers, features)
    return {"cross_checked_answerable_ece": {k: checked[k] for k in ("plain", "scaled")},
            "cross_checked_right_top": checked["right_top"]}


def _reader_read() -> dict[str, Any]:
    """What read the answers when a large reader was set (``BERTSEARCH_LARGE_READER``): the fit is
    the pair's, to be kept as ``pair_answer_model.json`` in its folder."""
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.search.reader_pair import SECOND_WEIGHT

    settings = Settings()
    if settings.large_reader is None:
        return {}
    return {"large_reader": {"folder": Path(settings.large_reader).name, "rereads": settings.large_reader_rereads,
                             "weight": SECOND_WEIGHT}}


def _write(args: Any, argv: list[str] | None, fusion: dict[str, Any], rows: list[dict[str, Any]], data: str,
           began: float) -> dict[str, Any]:
    from bertsearch.search.confidence import MODEL_FILE

    model = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    features = tuple(k for k in FEATURES if k not in args.leave_out)
    fitted_rows = [r for r in rows if r["answerable"]] if args.fit_on == "answerable" else rows
    fit = fit_confidence(fitted_rows, args.keep, args.fit_answers, features, args.scale_on == "answerable")
    out = {
        "dense_weight": fusion["dense_weight"], "depth": args.depth, "coefficients": fit.pop("coefficients"),
        "intercept": fit.pop("intercept"), "threshold": fit.pop("threshold"),
        "fitted": {
            "data": data,
            "command": "python -m bertsearch.search.training.calibrate " + " ".join(argv or []),
            "fusion": fusion, "confidence": fit, "keep": args.keep, "fit_answers": args.fit_answers,
            "fit_on": args.fit_on, "scale_on": args.scale_on,
            **_cross_checked(fitted_rows, args.keep, args.fit_answers, features),
            "features": list(features),
            "seconds": round(time.time() - began, 1),
            **_reader_read(),
        },
        "definitions": model.get("definitions", {}),  # fitted apart (fit_definitions)
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    import sys

    result = main(sys.argv[1:])
    print(json.dumps({k: v for k, v in result.items() if k != "fitted"} | {"confidence": result["fitted"]["confidence"]}))
