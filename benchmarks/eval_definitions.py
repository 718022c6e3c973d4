"""Definition answers against the reader, on questions held out from the training sources.

``ask`` answers a question two ways: the extractive reader's spans and, for a question that asks
for a term of a definition list (``definitions.asks_for``), the entries of the passages ranked by
``definitions.definition_answers``; ``answers.assemble`` ranks both by confidence. A definition
path is kept only where it beats the trained reader on data never trained on. This script measures
that on a SQuAD-format held-out file (``--heldout``: passages of man pages, pydoc text and Debian
Policy documents, each question with a ``kind`` such as option, function or status), each
answerable question compared four ways (right: ``training.metrics.answer_matches``):

- ``reader``: the reader's best span in the question's own paragraph (``Reader.read``);
- ``definitions``: the best definition answer in the same paragraph (``definition_answers`` with
  the index's encoder, as ``Searcher`` calls it), for the questions ``asks_for`` accepts; scored on
  the questions it answers and on all (no answer counts as wrong);
- ``combined``: what ``answers.assemble`` ranks first of both in that paragraph (the paragraph
  given as the first hit of both retrievers, weight 1): the shipped combination without retrieval;
- ``ask``: the top answer of ``Searcher.ask(question)`` at the default settings over an index of
  every paragraph of the file (one document each), right whatever its confidence, and
  ``ask_above_threshold``: right and not flagged ``below_threshold``; ``ask_from_own_paragraph``:
  the top answer comes from the question's own paragraph (its neighbours may hold the entry too).
  On a question no definition answers, ``combined`` is the reader's spans ranked by confidence.

Reported overall, per gold ``kind`` and per kind ``asks_for`` gives, with the head-to-head on the
questions the definitions answer (``definition_right_reader_wrong`` and the reverse) and a few
examples of each. ``--limit N`` takes a seeded sample stratified by kind (every kind at least once
when N allows); the index always holds every paragraph of the file (except with ``--smoke``).

Run: ``python benchmarks/eval_definitions.py --heldout PATH``.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c

SMOKE_QUESTIONS = 6
EXAMPLES = 5  # of each kind of disagreement


@dataclass(frozen=True)
class HeldOut:
    """One answerable question of the held-out file, with its paragraph and gold ``kind``."""

    qid: str
    question: str
    kind: str
    pid: int
    answers: tuple[str, ...]


def load_heldout(path: Path) -> tuple[list[c.Paragraph], list[HeldOut]]:
    """The paragraphs of ``path`` and its answerable questions (``is_impossible`` ones left out)."""
    from bertsearch.search.training.squad import read_squad_json, squad_paragraphs

    kinds = {str(qa["id"]): str(qa.get("kind") or "unknown")
             for article in read_squad_json(path)["data"] for para in article["paragraphs"] for qa in para["qas"]}
    paragraphs: list[c.Paragraph] = []
    questions: list[HeldOut] = []
    for para in squad_paragraphs(path):
        paragraphs.append(c.Paragraph(para.pid, para.title, para.context))
        questions.extend(HeldOut(ex.id, ex.question, kinds[ex.id], para.pid, tuple(a.text for a in ex.answers))
                         for ex in para.examples if not ex.is_impossible)
    return paragraphs, questions


def sample(questions: list[HeldOut], limit: int, seed: int) -> list[HeldOut]:
    """``limit`` questions (all for 0), stratified by kind: each kind at least once when ``limit``
    allows, the rest in proportion (largest remainders); in a seeded random order."""
    rng = random.Random(seed)
    by_kind: dict[str, list[HeldOut]] = defaultdict(list)
    for q in questions:
        by_kind[q.kind].append(q)
    if limit <= 0 or limit >= len(questions):
        picked = list(questions)
    else:
        kinds = sorted(by_kind, key=lambda k: (-len(by_kind[k]), k))
        quota = dict.fromkeys(kinds, 0)
        if limit >= len(kinds):
            quota = dict.fromkeys(kinds, 1)
        left = limit - sum(quota.values())
        room = {k: len(by_kind[k]) - quota[k] for k in kinds}
        total = sum(room.values())
        shares = {k: left * room[k] / total for k in kinds}
        for k in kinds:
            quota[k] += int(shares[k])
        rest = limit - sum(quota.values())
        for k in sorted(kinds, key=lambda k: -(shares[k] - int(shares[k])))[:rest]:
            quota[k] += 1
        picked = [q for k in kinds for q in rng.sample(by_kind[k], quota[k])]
    rng.shuffle(picked)
    return picked


def evaluate_one(q: HeldOut, context: str, searcher: Any) -> dict[str, Any]:
    """The four answers to ``q`` and whether each is right."""
    from bertsearch.search.answers import MAX_DEFINITION_ANSWERS, assemble
    from bertsearch.search.definitions import asks_for, definition_answers
    from bertsearch.search.retrieval import DEFAULT_MODE
    from bertsearch.search.training.metrics import answer_matches
    from bertsearch.search.types import Hit

    encode = searcher.index.encoder.encode  # what Searcher's definition answers are encoded with
    row: dict[str, Any] = {"id": q.qid, "q": q.question, "kind": q.kind, "gold": list(q.answers),
                           "asks_for": asks_for(q.question)}
    # As Searcher.read_answers reads: spans of every score, more than the answers wanted.
    spans = searcher.reader.read(q.question, [context], top_n=20, threshold=0.0)
    row["reader"] = spans[0].text if spans else None
    row["reader_right"] = bool(spans) and answer_matches(spans[0].text, q.answers)
    found = definition_answers(q.question, [context], encode)[:MAX_DEFINITION_ANSWERS] if row["asks_for"] else []
    row["definition"] = context[found[0].entry.start:found[0].entry.end] if found else None
    row["definition_right"] = bool(found) and answer_matches(row["definition"], q.answers)
    # The paragraph as the only passage, found first by both retrievers.
    hit = Hit(score=1.0, chunk_id=0, document_id=0, path=str(q.pid), title=None, text=context, start=0,
              end=len(context), ranks={"dense": 1, "lexical": 1})
    ranked = assemble(q.question, [hit], spans, DEFAULT_MODE, searcher.answer_model, encode)
    top = ranked[0][0] if ranked else None
    row["combined"] = top.text if top else None
    row["combined_source"] = top.source if top else None
    row["combined_right"] = top is not None and answer_matches(top.text, q.answers)
    result = searcher.ask(q.question)
    best = result.answers[0] if result.answers else None
    row["ask"] = best.text if best else None
    row["ask_source"] = best.source if best else None
    row["ask_right"] = best is not None and answer_matches(best.text, q.answers)
    row["ask_above_threshold"] = row["ask_right"] and not best.below_threshold
    # Neighbouring paragraphs of one document share entries: another one may hold the answer too.
    row["ask_from_own_paragraph"] = best is not None and c.pid_of_path(best.path) == q.pid
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The accuracies of one group of questions."""
    n = len(rows)
    answered = [r for r in rows if r["definition"] is not None]

    def share(group: list[dict[str, Any]], key: str) -> float | None:
        return round(sum(bool(r[key]) for r in group) / len(group), 4) if group else None

    return {
        "n": n,
        "asks_for_accepts": sum(r["asks_for"] is not None for r in rows),
        "definitions_answer": len(answered),
        "reader": share(rows, "reader_right"),
        "definitions_overall": share(rows, "definition_right"),
        "definitions_on_answered": share(answered, "definition_right"),
        "reader_on_definitions_answered": share(answered, "reader_right"),
        "combined": share(rows, "combined_right"),
        "combined_on_definitions_answered": share(answered, "combined_right"),
        "combined_picks_definition": sum(r["combined_source"] == "definition" for r in rows),
        "definition_right_reader_wrong": sum(r["definition_right"] and not r["reader_right"] for r in answered),
        "reader_right_definition_wrong": sum(r["reader_right"] and not r["definition_right"] for r in answered),
        "ask": share(rows, "ask_right"),
        "ask_above_threshold": share(rows, "ask_above_threshold"),
        "ask_on_definitions_answered": share(answered, "ask_right"),
        "ask_picks_definition": sum(r["ask_source"] == "definition" for r in rows),
        "ask_from_own_paragraph": share(rows, "ask_from_own_paragraph"),
    }


def examples(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A few questions where the two paths disagree, and where ``ask`` lost a right answer."""
    keys = ("id", "kind", "q", "gold", "reader", "definition", "combined", "ask")

    def few(test: Any) -> list[dict[str, Any]]:
        return [{k: r[k] for k in keys} for r in rows if test(r)][:EXAMPLES]

    return {
        "definition_right_reader_wrong": few(lambda r: r["definition_right"] and not r["reader_right"]),
        "reader_right_definition_wrong": few(lambda r: r["definition"] is not None and r["reader_right"]
                                             and not r["definition_right"]),
        "combined_wrong_one_path_right": few(lambda r: not r["combined_right"]
                                             and (r["reader_right"] or r["definition_right"])),
    }


def main(args: Any) -> dict[str, Any]:
    from bertsearch.search.searcher import Searcher

    paragraphs, questions = load_heldout(args.heldout)
    picked = sample(questions, SMOKE_QUESTIONS if args.smoke else args.limit, args.seed)
    if args.smoke:  # index only the sampled questions' paragraphs
        pids = {q.pid for q in picked}
        paragraphs = [p for p in paragraphs if p.pid in pids]
    digest = hashlib.sha1(args.heldout.read_bytes()).hexdigest()[:10]
    settings, built = c.squad_index(args, paragraphs, name=f"heldout-{digest}")
    contexts = {p.pid: p.context for p in paragraphs}
    if args.qa_model:  # the head and, beside it, its own fit (a head passed alone would read with the shipped fit)
        settings = settings.model_copy(update={"qa_model_path": args.qa_model})
    began = time.perf_counter()
    with Searcher.open(settings) as searcher:
        searcher.load_models()
        qa_model = searcher.qa_model_path
        threshold = searcher.threshold
        rows = [evaluate_one(q, contexts[q.pid], searcher) for q in picked]
    seconds = time.perf_counter() - began
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_asked: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
        by_asked[r["asks_for"] or "none"].append(r)
    return {
        "what": "answerable questions of a held-out SQuAD-format file: the reader's best span and the best "
                "definition answer in the question's own paragraph, what answers.assemble ranks first of both "
                "there, and Searcher.ask at the defaults over an index of every paragraph",
        "heldout": str(args.heldout), "heldout_sha1": digest,
        "qa_model": qa_model or "the shipped head",
        "questions_in_file": len(questions), "questions": len(rows),
        "questions_by_kind_in_file": dict(Counter(q.kind for q in questions).most_common()),
        "limit": args.limit, "seed": args.seed, "threshold": threshold,
        "index": built, "seconds_per_question": round(seconds / max(len(rows), 1), 3),
        "overall": summarise(rows),
        "by_kind": {k: summarise(v) for k, v in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))},
        "by_asks_for": {k: summarise(v) for k, v in sorted(by_asked.items(), key=lambda kv: -len(kv[1]))},
        "examples": examples(rows),
    }


if __name__ == "__main__":
    p = c.parser("eval_definitions", __doc__)
    p.add_argument("--heldout", type=Path, required=True,
                   help="held-out SQuAD-format JSON (.json or .json.gz) whose questions carry a 'kind'")
    p.add_argument("--limit", type=int, default=0, help="questions (a seeded sample stratified by kind); 0 for all")
    p.add_argument("--seed", type=int, default=0, help="seed of the question sample")
    c.add_model_options(p)
    p.add_argument("--qa-model", default=None, help="QA model folder (default: the shipped head)")
    args = p.parse_args()
    if not args.heldout.is_file():
        p.error(f"--heldout {args.heldout}: no such file")
    c.run("eval_definitions", main, args)
