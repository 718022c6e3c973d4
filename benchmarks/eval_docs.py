"""Answers on real technical documentation, by set (``--set``):

- ``heldout`` (the report set): ``tests/fixtures/heldout/``, SQLite's HTML pages, systemd's man
  pages, Bash manual sections (text and PDF) and the Debian Developer's Reference (reST), with 135
  plain questions written before any tuning (``heldout_SOURCE.md``). Never tuned on.
- ``eval`` (the regression set): ``tests/fixtures/techdocs/``, man pages and files from Debian's
  /usr/share/doc in their original formats (txt, md, rst, html). Its documents shaped the
  definition rules of ``search/definitions.py``, so it no longer tells how well they generalise.
- ``tune`` (the fitting set): ``techdocs_tune/``, other man pages and pydoc text, whose questions
  the definition-list answers are fitted on.
- ``dev`` (the choosing set): ``techdocs_dev/``, man pages, pydoc text and Debian Policy chapters
  (text and HTML) of the training sources, reserved from every training file
  (``search/training/reserved.py``); readers are chosen on it (``techdocs_dev_SOURCE.md``).
- ``zh_tune`` and ``zh_report`` (Chinese): Chinese man pages and the Debian Edu manual (the
  choosing set), and LilyPond and LinuxCNC pages with some questions in English (the report set,
  never tuned on). Index them with ``--model multilingual-e5-small``, whose index reads with the
  multilingual head.

Each ``<set>_questions.json`` holds plain questions, each with its source file and the
acceptable answers. The folder is indexed with ``Index.update``; each question
is asked with ``Searcher.ask`` at the default settings (the default threshold applies) and
searched with ``Searcher.search``, in each mode.
The index is built with the default ``chunk_header`` (``title``: each document's title encoded
before its chunks); ``--chunk-header none`` builds one without it (an index of its own), to
compare with the default. ``--large-reader FOLDER`` asks with two heads read as one (the shipped head
reads every passage, the large one rereads the most promising; the confidence is the fit in its folder).

- ``right_answer``: the top answer is not flagged ``below_threshold`` and matches a gold answer
  (``bertsearch.search.training.metrics.answer_matches``).
- ``right_answer_any_confidence``: the same, ignoring the threshold.
- ``right_answer_top3``: one of the first three answers matches a gold answer (whatever their confidence).
- ``right_document_top5``: the source file is among the 5 passages ``search`` returns.
- ``by_language``: the same by the language of the question, where the set says it (``lang``: the
  Chinese report set asks some questions in English about Chinese pages).

Run: ``python benchmarks/eval_docs.py``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import _common as c

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures"
MODES = ("hybrid", "dense", "lexical")
# The fits read only "tune"; zh_tune and zh_report are the Chinese issue's sets (Chinese man pages
# and the Debian Edu manual; LilyPond and LinuxCNC pages, never tuned on).
SETS = {"eval": "techdocs", "tune": "techdocs_tune", "dev": "techdocs_dev", "heldout": "heldout",
        "zh_tune": "zh_tune", "zh_report": "zh_report"}


def evaluate(searcher: Any, questions: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    from bertsearch.search.definitions import asks_for
    from bertsearch.search.training.metrics import answer_matches

    right = right_any = top3 = doc5 = 0
    misses = []
    took = []
    by_lang: dict[str, list[int]] = {}  # lang -> [questions, right, right at any confidence, top 3, document top 5]
    for q in questions:
        began = time.perf_counter()
        result = searcher.ask(q["q"], mode=mode)
        took.append((time.perf_counter() - began) * 1000.0)
        best = result.answers[0] if result.answers else None
        ok_any = best is not None and answer_matches(best.text, q["answers"])
        ok = ok_any and not best.below_threshold
        in_top3 = any(answer_matches(a.text, q["answers"]) for a in result.answers[:3])
        top3 += in_top3
        hits = searcher.search(q["q"], top_k=5, mode=mode).hits
        in5 = any(h.path == q["path"] for h in hits)
        right += ok
        right_any += ok_any
        doc5 += in5
        if "lang" in q:
            counts = by_lang.setdefault(q["lang"], [0, 0, 0, 0, 0])
            for i, value in enumerate((1, ok, ok_any, in_top3, in5)):
                counts[i] += int(value)
        if not ok:
            misses.append({"q": q["q"], "answer": best.text[:80] if best else None,
                           "confidence": best.confidence if best else None, "from": best.path if best else None,
                           "right_document_top5": in5})
    definitions = sum(1 for q in questions if asks_for(q["q"]))
    n = len(questions)
    return {"right_answer": round(right / n, 4), "right_answer_any_confidence": round(right_any / n, 4),
            "right_answer_top3": round(top3 / n, 4),
            "right_document_top5": round(doc5 / n, 4), "ask_ms_median": round(statistics.median(took), 1),
            "questions_asking_for_a_term": definitions,
            **({"by_language": {lang: {"questions": k[0], "right_answer": round(k[1] / k[0], 4),
                                       "right_answer_any_confidence": round(k[2] / k[0], 4),
                                       "right_answer_top3": round(k[3] / k[0], 4),
                                       "right_document_top5": round(k[4] / k[0], 4)}
                                for lang, k in sorted(by_lang.items())}} if by_lang else {}),
            "misses": misses}


def main(args: Any) -> dict[str, Any]:
    from bertsearch.search.searcher import Searcher

    name = SETS[args.set]
    questions = json.loads((FIXTURE / f"{name}_questions.json").read_text(encoding="utf-8"))["questions"]
    if args.smoke:
        questions = questions[:5]
    settings, summary, info = c.index_folder(FIXTURE / name, args.work_dir / name / "index", args.model,
                                             args.chunk_header)
    from dataclasses import replace

    from bertsearch.search.confidence import load_answer_model

    if args.large_reader:
        settings = settings.model_copy(update={"large_reader": args.large_reader})
    large = settings.large_reader  # the option's, or BERTSEARCH_LARGE_READER's

    with Searcher.open(settings, answer_model=load_answer_model(args.answer_model) if args.answer_model else None) as searcher:
        if args.no_definitions:  # the answer model the head reads with, without its definition answers
            searcher.answer_model = replace(searcher.answer_model, definitions={})
        searcher.load_models()
        threshold = searcher.threshold
        qa_model = c.shown(searcher.qa_model_path) if searcher.qa_model_path else "shipped"
        modes = {mode: evaluate(searcher, questions, mode) for mode in args.modes.split(",")}
    return {
        "what": f"tests/fixtures/{name}: plain questions about technical documentation, "
                "asked with Searcher.ask at the default settings",
        "set": args.set,
        "documents": info["documents"], "chunks": info["chunks"], "questions": len(questions),
        "threshold": threshold, "answer_model": c.fit_source(args.answer_model, large, settings.qa_model_path),
        "definitions": not args.no_definitions, "qa_model": qa_model,
        "large_reader": c.shown(large) if large else None,
        "encoder": info["model_id"], "chunk_header": info["chunk_header"],
        "index_update": summary.to_dict(), "modes": modes,
    }


if __name__ == "__main__":
    p = c.parser("eval_docs", __doc__)
    p.add_argument("--set", choices=sorted(SETS), default="eval",
                   help="eval: the regression set (techdocs, whose documents shaped the definition rules); "
                        "tune: the set the answer rules are fitted on (results/eval_docs_tune.json); dev: the set "
                        "readers are chosen on (results/eval_docs_dev.json); heldout: "
                        "the held-out report set, written before any tuning and never tuned on "
                        "(results/eval_docs_heldout.json); zh_tune, zh_report: the Chinese sets (choosing, report)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated retrieval modes (default: {','.join(MODES)})")
    p.add_argument("--answer-model", type=Path, default=None,
                   help="an answer_model.json to use instead of the shipped one (with BERTSEARCH_QA_MODEL_PATH: its head)")
    p.add_argument("--no-definitions", action="store_true", help="the reader alone: no definition-list answers")
    p.add_argument("--large-reader", default=None,
                   help="a second QA model folder that rereads the best passages, with its own answer model")
    c.add_model_options(p)
    c.add_chunk_header_option(p)
    args = p.parse_args()
    if not set(args.modes.split(",")) <= set(MODES):
        p.error(f"--modes: choose among {', '.join(MODES)}")
    if args.set != "eval" and args.output is None and not args.smoke:
        args.output = c.RESULTS / f"eval_docs_{args.set}.json"
    c.run("eval_docs", main, args)
