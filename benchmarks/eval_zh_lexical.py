"""How the lexical index cuts Chinese text: each cut's document top 1 / top 5 on plain Chinese
questions, two sets (``--set``):

- ``tune``: ``tests/fixtures/zh_tune/``, Chinese man pages (manpages-zh) and the Chinese Debian
  Edu manual, 96 questions (``zh_tune_SOURCE.md``; 44 when the cut was chosen). The cut was chosen on this set only.
- ``report``: ``tests/fixtures/zh_report/``, the Chinese LilyPond manuals and LinuxCNC files, 113
  questions written before any tuning (``zh_report_SOURCE.md``). Never tuned on.

The folder is indexed once with ``Index.update`` (the packaged English MiniLM encoder; a
multilingual encoder is another matter). Then, for each cut (``--cuts``), a lexical index of the
same chunks is built in memory and every question searched: ``document_top1`` is the share of
questions whose document gave the first chunk, ``document_top5`` of those whose document gave one
of the first 5 chunks (eval_docs' ``right_document_top5``). For the cuts bertsearch ships
(``words``, the cut of older indexes, and ``cjk``) the index is also opened with that cut stored
and searched with ``Searcher.search`` in ``lexical`` and ``hybrid`` mode (5 passages).

Candidates measured besides (they are not shipped): ``bigrams`` (bigrams only, a lone character as
itself: Lucene's ``CJKBigramFilter`` default), ``jieba`` (jieba's words for Han runs, with its
bundled dictionary and HMM; kana and Hangul as in ``cjk``), ``jieba-search`` (jieba's search mode:
the words and the dictionary words inside them), ``jieba+cjk`` (jieba's words and ``cjk``'s terms).

Run: ``python benchmarks/eval_zh_lexical.py --set tune``.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import _common as c

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures"
SETS = {"tune": "zh_tune", "report": "zh_report"}
SHIPPED = ("words", "cjk")
CANDIDATES = ("bigrams", "jieba", "jieba-search", "jieba+cjk")


@functools.cache
def _jieba():
    try:
        import jieba
    except ImportError as exc:
        raise SystemExit("the jieba cuts need jieba: pip install jieba") from exc

    logging.getLogger("jieba").setLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    with tokenizer.get_dict_file() as fh:  # no cache file: jieba's own one is written to the temp folder
        tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(fh)
    tokenizer.initialized = True
    return tokenizer


def _register_candidates() -> None:
    """The candidate run cuts, beside the shipped ones (``terms._RUN_CUTS``)."""
    import re

    from bertsearch.indexer import terms

    han = re.compile(f"[{terms._HAN}]+")

    def by_script(run: str, cut_han) -> list[str]:
        out: list[str] = []
        at = 0
        for part in han.finditer(run):
            out.extend(terms._bigrams(run[at:part.start()]))
            out.extend(cut_han(part.group()))
            at = part.end()
        out.extend(terms._bigrams(run[at:]))
        return out

    def bigrams_only(run: str) -> list[str]:
        return [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]

    terms._RUN_CUTS.update({
        "bigrams": bigrams_only,
        "jieba": lambda run: by_script(run, lambda h: list(_jieba().cut(h))),
        "jieba-search": lambda run: by_script(run, lambda h: list(_jieba().cut_for_search(h))),
        "jieba+cjk": lambda run: by_script(run, lambda h: [*_jieba().cut(h), *terms._bigrams(h)]),
    })


def _chunks(db: Path) -> tuple[list[tuple[int, str]], dict[int, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT c.id, c.text, d.path FROM chunks c JOIN documents d ON d.id = c.document_id "
                            "ORDER BY c.id").fetchall()
    return [(i, t) for i, t, _ in rows], {i: p for i, _, p in rows}


def _score(paths_of: list[list[str]], questions: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(questions)
    top1 = sum(bool(p) and p[0] == q["path"] for p, q in zip(paths_of, questions))
    top5 = sum(q["path"] in p[:5] for p, q in zip(paths_of, questions))
    return {"document_top1": round(top1 / n, 4), "document_top5": round(top5 / n, 4),
            "misses_top5": [q["q"] for p, q in zip(paths_of, questions) if q["path"] not in p[:5]]}


def lexical_only(chunks: list[tuple[int, str]], path_of: dict[int, str], questions: list[dict[str, Any]],
                 cut: str) -> dict[str, Any]:
    from bertsearch.indexer.lexical import LexicalIndex

    index = LexicalIndex.build(1, chunks, cut=cut)
    return _score([[path_of[i] for i, _ in index.search(q["q"], 5)] for q in questions], questions)


def searched(settings: Any, db: Path, questions: list[dict[str, Any]], cut: str) -> dict[str, Any]:
    """``Searcher.search`` in lexical and hybrid mode on the index with ``cut`` stored."""
    with sqlite3.connect(db) as conn:  # the benchmark's own index: the lexical index follows the stored cut
        conn.execute("UPDATE index_state SET lexical_cut = ? WHERE id = 1", (None if cut == "words" else cut,))
    return search_scores(settings, questions, ("lexical", "hybrid"))


def search_scores(settings: Any, questions: list[dict[str, Any]], modes: tuple[str, ...]) -> dict[str, Any]:
    """Each mode's scores of ``Searcher.search`` (5 passages) on the index of ``settings``."""
    from bertsearch.search.searcher import Searcher

    out = {}
    with Searcher.open(settings) as searcher:
        for mode in modes:
            paths = [[h.path for h in searcher.search(q["q"], top_k=5, mode=mode).hits] for q in questions]
            out[mode] = _score(paths, questions)
    return out


def main(args: Any) -> dict[str, Any]:

    name = SETS[args.set]
    questions = json.loads((FIXTURE / f"{name}_questions.json").read_text(encoding="utf-8"))["questions"]
    if args.only_zh_documents:
        questions = [q for q in questions if q.get("lang") == "zh" and q.get("doc_lang", "zh") == "zh"]
    if args.smoke:
        questions = questions[:5]
    settings, summary, info = c.index_folder(FIXTURE / name, args.work_dir / name / "index")
    db = Path(settings.index_dir) / "meta.db"
    chunks, path_of = _chunks(db)
    _register_candidates()
    cuts = args.cuts.split(",")
    lexical = {cut: lexical_only(chunks, path_of, questions, cut) for cut in cuts}
    search = {cut: searched(settings, db, questions, cut) for cut in SHIPPED if cut in cuts}
    return {
        "what": f"tests/fixtures/{name}: plain Chinese questions, the document among the first 5 chunks "
                "by the lexical index cut each way (in memory), and by Searcher.search (lexical, hybrid) "
                "with the shipped cuts stored",
        "set": args.set, "documents": info["documents"], "chunks": info["chunks"], "questions": len(questions),
        "encoder": info["model_id"], "index_update": summary.to_dict(),
        "lexical_in_memory": lexical, "searcher": search,
    }


if __name__ == "__main__":
    p = c.parser("eval_zh_lexical", __doc__)
    p.add_argument("--set", choices=sorted(SETS), default="tune",
                   help="tune: the set the cut was chosen on; report: the report set, never tuned on")
    p.add_argument("--cuts", default=",".join(SHIPPED + ("bigrams",)),
                   help=f"comma-separated cuts among {', '.join(SHIPPED + CANDIDATES)} (default: the shipped "
                        "ones and bigrams; the jieba ones need jieba installed)")
    p.add_argument("--only-zh-documents", action="store_true",
                   help="leave out the questions in English or over English documents (report set)")
    args = p.parse_args()
    if not set(args.cuts.split(",")) <= set(SHIPPED + CANDIDATES):
        p.error(f"--cuts: choose among {', '.join(SHIPPED + CANDIDATES)}")
    if args.output is None and not args.smoke:
        suffix = "_zh_only" if args.only_zh_documents else ""
        args.output = c.RESULTS / f"eval_zh_lexical_{args.set}{suffix}.json"
    c.run("eval_zh_lexical", main, args)
