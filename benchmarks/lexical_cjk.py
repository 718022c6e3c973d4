"""What the ``cjk`` cut costs a BM25 search of Chinese text, against the cut of older indexes.

``--size`` chunks of Chinese text (100,000 by default), each about 200 tokens (250 to 400
characters), made of whole lines drawn at random (seeded, with replacement) from the lines that
hold a Han character in the Chinese documents of ``tests/fixtures/zh_tune/`` (manpages-zh and the
Debian Edu manual, read with ``read_document``; mixed Chinese and English lines as they come).
Over the same chunks a lexical index is built on disk once per cut: ``cjk`` (new builds: each run
of Han characters as its characters and their bigrams) and ``words`` (indexes that store no cut:
a run is one term), with ``LexicalIndex.build``: build seconds (terms cut in Python, then
tantivy) and size on disk.

The questions of ``tests/fixtures/zh_tune_questions.json`` are then searched with
``LexicalIndex.search(question, 10)``, what ``Index.search_lexical`` calls: one untimed pass, then
``--repeat`` passes, the two cuts query by query in turn (the order alternating), so the load of
a shared machine falls on both alike. Per cut: p50, p95 and mean in ms, the mean number of hits
and the share of questions with any, the mean query terms; and the ratio cjk / words of p50.

The chunks repeat the same 6,000 lines, so a term's posting list is longer than in a corpus of
100,000 distinct chunks: the latencies are those of common terms, the ratio the cut's.

Run: ``python benchmarks/lexical_cjk.py [--size 100000] [--repeat 5]``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import _common as c

FIXTURE = c.REPO / "tests" / "fixtures"
CUTS = ("cjk", "words")  # the default, and the cut of indexes that store none
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")


def chinese_lines() -> list[str]:
    """The lines of ``zh_tune/``'s documents that hold a Han character, stripped, in file order."""
    from bertsearch.indexer.documents import read_document

    lines = []
    for path in sorted(p for p in (FIXTURE / "zh_tune").rglob("*") if p.is_file()):
        lines.extend(s for s in (line.strip() for line in read_document(path).text.split("\n")) if _HAN.search(s))
    return lines


def make_chunks(lines: list[str], size: int, rng: np.random.Generator, low: int = 250,
                high: int = 400) -> list[str]:
    """``size`` texts of whole random lines, each grown to a length drawn in [low, high] characters
    (a line that would pass ``high`` ends a text already ``low`` long)."""
    chunks = []
    for _ in range(size):
        target, parts, length = int(rng.integers(low, high + 1)), [], 0
        while length < target:
            line = lines[int(rng.integers(len(lines)))]
            if parts and length >= low and length + len(line) + 1 > high:
                break
            parts.append(line)
            length += len(line) + 1
        chunks.append("\n".join(parts))
    return chunks


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(chunks: list[str], cut: str, folder: Path, sample: int = 1000) -> tuple[Any, dict[str, Any]]:
    """The lexical index of ``chunks`` cut by ``cut`` in ``folder``, and how it was built."""
    from bertsearch.indexer.lexical import LexicalIndex
    from bertsearch.indexer.terms import lexical_terms

    folder.mkdir(parents=True)
    began = time.perf_counter()
    index = LexicalIndex.build(1, enumerate(chunks, 1), folder, cut=cut)
    seconds = time.perf_counter() - began
    terms = [len(lexical_terms(text, cut)) for text in chunks[:sample]]
    return index, {"build_seconds": round(seconds, 2), "disk_bytes": folder_bytes(folder),
                   "disk_mb": round(folder_bytes(folder) / 2**20, 1), "chunks": index.count,
                   "terms_per_chunk": round(float(np.mean(terms)), 1), "terms_counted_in_first": len(terms)}


def side_by_side(indexes: dict[str, Any], queries: list[str], k: int, repeat: int) -> dict[str, Any]:
    """Each query on each index, the cuts in turn (the order alternating): one untimed pass, then
    ``repeat`` timed ones."""
    seconds: dict[str, list[float]] = {cut: [] for cut in indexes}
    hits: dict[str, list[int]] = {cut: [] for cut in indexes}
    turn = 0
    for rep in range(repeat + 1):
        for query in queries:
            order = list(indexes) if turn % 2 == 0 else list(indexes)[::-1]
            turn += 1
            for cut in order:
                began = time.perf_counter()
                found = indexes[cut].search(query, k)
                took = time.perf_counter() - began
                if rep == 0:
                    hits[cut].append(len(found))
                else:
                    seconds[cut].append(took)
    out: dict[str, Any] = {}
    for cut, index in indexes.items():
        ms = np.asarray(seconds[cut]) * 1000.0
        out[cut] = {**c.latency_stats(seconds[cut]), "p95_ms": round(float(np.percentile(ms, 95)), 2),
                    "mean_hits": round(float(np.mean(hits[cut])), 2),
                    "queries_with_hits": round(float(np.mean([h > 0 for h in hits[cut]])), 4),
                    "mean_query_terms": round(float(np.mean([len(index.query_terms(q)) for q in queries])), 1)}
        out[cut]["_median_s"] = float(np.median(seconds[cut]))  # unrounded, for the ratio
    return out


def main(args: Any) -> dict[str, Any]:
    size = min(args.size, 300) if args.smoke else args.size
    repeat = min(args.repeat, 2) if args.smoke else args.repeat
    questions = json.loads((FIXTURE / "zh_tune_questions.json").read_text(encoding="utf-8"))["questions"]
    queries = [q["q"] for q in questions]
    lines = chinese_lines()
    chunks = make_chunks(lines, size, np.random.default_rng(args.seed))
    lengths = np.array([len(t) for t in chunks])
    args.work_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-lexical-cjk-", dir=args.work_dir))
    try:
        indexes, built = {}, {}
        for cut in CUTS:
            indexes[cut], built[cut] = build(chunks, cut, tmp / cut)
        searched = side_by_side(indexes, queries, args.k, repeat)
        del indexes  # tantivy's memory maps, before the folder goes
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cjk, words = searched["cjk"], searched["words"]
    p50_ratio = cjk.pop("_median_s") / words.pop("_median_s")
    return {
        "what": "LexicalIndex.search(question, k) of the zh_tune questions over the same Chinese chunks, "
                "built once with the cut cjk (characters and bigrams of Han runs) and once with words (a run "
                "one term, the cut of indexes that store none), the cuts query by query in turn",
        "goal": "issue 33: the segmenter's cost, BM25 query p50 at 100k Chinese chunks",
        "chunks": size, "seed": args.seed, "k": args.k, "repeat": repeat, "queries": len(queries),
        "source_lines": len(lines),
        "chunk_chars": {"mean": round(float(lengths.mean()), 1), "p5": int(np.percentile(lengths, 5)),
                        "p95": int(np.percentile(lengths, 95)),
                        "han_share": round(sum(len(_HAN.findall(t)) for t in chunks[:1000])
                                           / max(1, int(lengths[:1000].sum())), 3)},
        "build": built,
        "search": searched,
        "ratio_cjk_over_words": {
            "p50": round(p50_ratio, 3),
            "p95": round(cjk["p95_ms"] / words["p95_ms"], 3),
            "build_seconds": round(built["cjk"]["build_seconds"] / max(built["words"]["build_seconds"], 1e-9), 3),
            "disk_bytes": round(built["cjk"]["disk_bytes"] / built["words"]["disk_bytes"], 3),
        },
    }


if __name__ == "__main__":
    p = c.parser("lexical_cjk", __doc__)
    p.add_argument("--size", type=int, default=100_000, help="chunks in each index")
    p.add_argument("--repeat", type=int, default=5, help="timed passes over the questions")
    p.add_argument("--k", type=int, default=10, help="hits per search")
    p.add_argument("--seed", type=int, default=0, help="seed of the lines drawn")
    c.run("lexical_cjk", main, p.parse_args())
