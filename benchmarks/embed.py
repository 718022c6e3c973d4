"""Embedding service overhead: ``POST /embed`` and ``POST /v1/embeddings`` on a real server
against ``Encoder.encode`` in this process, on the same batches of 32 texts, in the same run.

The texts are SQuAD v1.1 dev paragraphs (each a batch member, truncated by the encoder as any
text is). The server serves an index of the sample folder built with the same encoder, so both
sides run the same model with the same precision on this CPU. Slices alternate between the
library and HTTP so a neighbour's load falls on both alike.

Run: ``python benchmarks/embed.py``.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import numpy as np

import _common as c

BATCH = 32


def main(args: Any) -> dict[str, Any]:
    import httpx

    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.encoder import Encoder
    from bertsearch.indexer.index import Index

    paragraphs, _ = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=None)
    texts = [p.context for p in paragraphs]
    batches = [texts[i:i + BATCH] for i in range(0, len(texts), BATCH)][: 3 if args.smoke else args.batches]
    work = args.work_dir / ("smoke" if args.smoke else "") / "embed"
    shutil.rmtree(work, ignore_errors=True)
    settings = Settings(index_dir=work / "idx", model_path=args.model) if args.model else Settings(index_dir=work / "idx")
    with Index.open(settings, create=True) as index:
        index.update(c.REPO / "samples" / "docs")
        model_path = index.params.model_path
    encoder = Encoder(model_path, precision=settings.precision, batch_size=BATCH)
    library: list[float] = []
    own: list[float] = []
    openai_like: list[float] = []
    with c.server(work / "idx") as (base, _pid), httpx.Client(base_url=base, timeout=300) as http:
        for batch in batches[:2]:  # warm-up, both sides
            encoder.encode(batch)
            http.post("/embed", json={"texts": batch}).raise_for_status()
        for n, batch in enumerate(batches):
            order = ("library", "embed", "v1") if n % 2 == 0 else ("v1", "embed", "library")
            for side in order:
                began = time.perf_counter()
                if side == "library":
                    vectors = encoder.encode(batch)
                elif side == "embed":
                    served = http.post("/embed", json={"texts": batch})
                    served.raise_for_status()
                else:
                    http.post("/v1/embeddings", json={"input": batch, "model": "m",
                                                      "encoding_format": "base64"}).raise_for_status()
                (library if side == "library" else own if side == "embed" else openai_like).append(
                    time.perf_counter() - began)
            if n == 0:
                got = np.asarray(served.json()["embeddings"], dtype=np.float32)
                cosine = float((got * vectors).sum(1).min())
    lib_rate = len(batches) * BATCH / sum(library)
    return {
        "what": f"texts/s for batches of {BATCH}: Encoder.encode in this process vs POST /embed and "
                "POST /v1/embeddings (base64) on a real server, same texts, alternating",
        "encoder": {"model": encoder.model_id, "precision": encoder.precision},
        "batches": len(batches),
        "library": {"texts_per_second": round(lib_rate, 1), **c.latency_stats(library)},
        "http_embed": {"texts_per_second": round(len(batches) * BATCH / sum(own), 1), **c.latency_stats(own)},
        "http_v1_embeddings": {"texts_per_second": round(len(batches) * BATCH / sum(openai_like), 1),
                               **c.latency_stats(openai_like)},
        "embed_vs_library": round(sum(library) / sum(own), 3),
        "v1_vs_library": round(sum(library) / sum(openai_like), 3),
        "min_cosine_http_vs_library": round(cosine, 6),
    }


if __name__ == "__main__":
    p = c.parser("embed", __doc__)
    c.add_squad_option(p)
    p.add_argument("--model", default=None, help="encoder model folder (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--batches", type=int, default=20, help="batches of 32 texts to time on each side")
    c.run("embed", main, p.parse_args())
