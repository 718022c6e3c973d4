"""Encoding throughput: bertsearch's Encoder in each precision against sentence-transformers' defaults.

Same model folder, same chunks (SQuAD v1.1 dev paragraphs cut by ``chunk_text`` with the
default chunk size), same process. Every encoder is warmed up, then all are timed slice by
slice (``--slice`` chunks), back to back, the order rotating every slice, so that a neighbour's
load on a shared CPU falls on all alike.

The precisions (``--precisions``, default: fp32, int8 when ONNX Runtime is installed, and bf16
when the CPU has native bf16) are reported side by side, each with its ratio to
sentence-transformers and the cosine of its vectors to fp32's; ``bertsearch`` is the one
``auto`` picks on this CPU.

``--against MODEL`` (e.g. ``--model multilingual-e5-small --against packaged``) times a second
model in the same precisions on the same chunks, in the same rotation, and both models' query
encoding (one question at a time, as a search encodes it: ``query=True``): ``against`` holds its
rates and each precision's ratio (model / against).
Prints one JSON object and writes it to ``benchmarks/results/encode.json``.

Run: ``python benchmarks/encode.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bertsearch.indexer.chunking import chunk_text
from bertsearch.indexer import int8
from bertsearch.indexer.common import torch_thread
from bertsearch.indexer.common.precision import resolve
from bertsearch.indexer.encoder import Encoder, cpu_has_native_bf16
from bertsearch.indexer.named_models import resolve_model
from bertsearch.indexer.common.settings import Settings, packaged_encoder_path
from bertsearch.search.training.squad import squad_paragraphs

import _common as c

HERE = Path(__file__).resolve().parent
DEFAULT_SQUAD = HERE.parent.parent / "shared" / "data" / "squad" / "dev-v1.1.json.gz"


def squad_chunks(path: Path, tokenizer, max_tokens: int, overlap: int, limit: int) -> list[str]:
    """The first ``limit`` chunks of the SQuAD paragraphs, each paragraph a document."""
    texts: list[str] = []
    for paragraph in squad_paragraphs(path):
        texts.extend(c.text for c in chunk_text(paragraph.context, tokenizer, max_tokens, overlap))
        if len(texts) >= limit:
            return texts[:limit]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help="SQuAD v1.1 dev JSON (.json or .json.gz)")
    parser.add_argument("--limit", type=int, default=2000, help="number of chunks")
    parser.add_argument("--rounds", type=int, default=1, help="times each encoder encodes every chunk")
    parser.add_argument("--slice", type=int, default=256, help="chunks per timed slice (encoders alternate per slice)")
    parser.add_argument("--model", default=None,
                        help="model folder, or multilingual-e5-small (default: the packaged MiniLM)")
    parser.add_argument("--precisions", default=None,
                        help="comma-separated precisions of bertsearch to time (default: fp32, int8 when ONNX "
                             "Runtime is installed, bf16 when the CPU has native bf16)")
    parser.add_argument("--against", default=None,
                        help="a second model (folder, multilingual-e5-small, or packaged) timed beside --model")
    parser.add_argument("--queries", type=int, default=200, help="questions encoded one at a time with --against")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "encode.json")
    args = parser.parse_args()
    load_at_start = c.load_average()
    if not args.squad.is_file():
        parser.exit(2, f"Error: SQuAD file not found: {args.squad} (pass --squad)\n")

    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    settings = Settings()
    model_path = resolve_model(args.model, settings.cache_dir) if args.model else settings.resolved_model_path()
    auto = resolve("auto")
    if args.precisions:
        precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    else:
        precisions = ["fp32"] + (["int8"] if int8.available() else []) + (["bf16"] if cpu_has_native_bf16() else [])
    ours = {p: Encoder(model_path, precision=p, batch_size=settings.batch_size, cache_dir=settings.cache_dir)
            for p in precisions}
    first = next(iter(ours.values()))
    other_path = None
    if args.against:
        other_path = (packaged_encoder_path() if args.against == "packaged"
                      else resolve_model(args.against, settings.cache_dir))
    theirs = {p: Encoder(other_path, precision=p, batch_size=settings.batch_size, cache_dir=settings.cache_dir)
              for p in precisions} if other_path else {}
    reference = torch_thread.run(SentenceTransformer, model_path, device="cpu")  # its defaults otherwise
    texts = squad_chunks(args.squad, first.tokenizer, settings.chunk_tokens, settings.chunk_overlap, args.limit)
    n_tokens = int(sum(len(ids) for ids in first.tokenizer(texts, truncation=True, max_length=first.max_length)["input_ids"]))

    # On the thread that runs every bertsearch PyTorch call: two threads calling PyTorch would give
    # the process two OpenMP teams, and slow both sides (indexer/common/torch_thread.py).
    runners = {**{f"bertsearch_{p}": e.encode for p, e in ours.items()},
               **{f"against_{p}": e.encode for p, e in theirs.items()},
               # With the model's passage prefix (E5's "passage: "), as bertsearch encodes chunks.
               "sentence_transformers": lambda texts: torch_thread.run(reference.encode, texts,
                                                                       prompt=first.passage_prefix or None)}
    warmup = texts[: min(64, len(texts))]
    for encode in runners.values():
        encode(warmup)

    # Timed slice by slice, the encoders back to back, the order rotating: on a shared CPU the
    # load changes by the minute, and this way each slice meets the same load on every side.
    seconds: dict[str, float] = {name: 0.0 for name in runners}
    slice_ratios: dict[str, list[float]] = {name: [] for name in runners}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in runners}
    slices = [texts[i : i + args.slice] for i in range(0, len(texts), args.slice)]
    names = list(runners)
    turn = 0
    for round_ in range(args.rounds):
        for part in slices:
            taken = {}
            for name in names[turn % len(names):] + names[: turn % len(names)]:
                start = time.perf_counter()
                result = np.asarray(runners[name](part), dtype=np.float32)
                taken[name] = time.perf_counter() - start
                if round_ == 0:
                    parts[name].append(result)
            turn += 1
            for name in runners:
                seconds[name] += taken[name]
                slice_ratios[name].append(taken["sentence_transformers"] / taken[name])
    vectors = {name: np.concatenate(parts[name]) for name in runners}

    def rate(name: str) -> dict:
        return {
            "chunks_per_s": round(len(texts) * args.rounds / seconds[name], 2),
            "tokens_per_s": round(n_tokens * args.rounds / seconds[name], 1),
            "seconds": round(seconds[name], 1),
        }

    def cosine(a: np.ndarray, b: np.ndarray) -> dict:
        c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return {"min": round(float(c.min()), 6), "mean": round(float(c.mean()), 6)}

    ref_rate = rate("sentence_transformers")
    encoders = {}
    for p, encoder in ours.items():
        name = f"bertsearch_{p}"
        r = rate(name)
        ratios = slice_ratios[name]
        encoders[p] = {**r, "precision": encoder.precision, "attention": encoder.attention,
                       "batch_size": encoder.batch_size, "max_length": encoder.max_length,
                       "ratio": round(r["chunks_per_s"] / ref_rate["chunks_per_s"], 2),
                       "ratio_per_slice": {"median": round(float(np.median(ratios)), 2),
                                           "min": round(min(ratios), 2), "max": round(max(ratios), 2)},
                       "cosine_to_sentence_transformers": cosine(vectors[name], vectors["sentence_transformers"])}
    chosen = encoders.get(auto)
    against = None
    if theirs:
        other = next(iter(theirs.values()))
        questions = [e.question for p in squad_paragraphs(args.squad) for e in p.examples][: args.queries]
        query_ms = _query_latency({**{("model", p): e for p, e in ours.items()},
                                   **{("against", p): e for p, e in theirs.items()}}, questions)
        against = {"model": {"path": str(other_path), "id": other.model_id, "dimension": other.dimension},
                   "by_precision": {}}
        for p in theirs:
            r = rate(f"against_{p}")
            against["by_precision"][p] = {
                **r, "model_chunks_per_s": encoders[p]["chunks_per_s"],
                "ratio_model_to_against": round(encoders[p]["chunks_per_s"] / r["chunks_per_s"], 2),
                "query_ms_p50": query_ms[("against", p)], "model_query_ms_p50": query_ms[("model", p)],
            }
    result = {
        "benchmark": "encode",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/encode.py " + " ".join(sys.argv[1:]),
        "machine": c.machine(load_at_start),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "onnxruntime": _version("onnxruntime"),
        },
        "torch_threads": torch.get_num_threads(),
        "model": {"path": str(model_path), "id": first.model_id, "dimension": first.dimension},
        "data": {"source": str(args.squad.name), "chunks": len(texts), "tokens": n_tokens,
                 "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
                 "mean_tokens_per_chunk": round(n_tokens / len(texts), 1)},
        "rounds": args.rounds,
        "slice_chunks": args.slice,
        "auto_precision": auto,
        "bertsearch": chosen,
        "by_precision": encoders,
        "sentence_transformers": {**ref_rate, "settings": "SentenceTransformer(model_folder).encode(texts), defaults",
                                  "batch_size": 32, "max_seq_length": reference.max_seq_length},
        "ratio": chosen["ratio"] if chosen else None,
        **({"against": against} if against else {}),
        "note": "shared CPU: other jobs may run during the measurement (see the load averages); "
                "the encoders rotate slice by slice so all meet the same load",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


def _query_latency(encoders: dict, questions: list[str]) -> dict:
    """Median milliseconds to encode one question as a query, per encoder, the encoders taking
    turns question by question (after one untimed question each)."""
    for encoder in encoders.values():
        encoder.encode(questions[:1], query=True)
    taken: dict = {key: [] for key in encoders}
    for question in questions:
        for key, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode([question], query=True)
            taken[key].append((time.perf_counter() - start) * 1000.0)
    return {key: round(float(np.median(ms)), 2) for key, ms in taken.items()}


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
