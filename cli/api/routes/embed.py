"""``POST /embed`` (bertsearch's own) and ``POST /v1/embeddings`` (OpenAI-compatible)."""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bertsearch.cli.api.deps import SearcherDep
from bertsearch.cli.api.schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    ErrorResponse,
)
from bertsearch.indexer.common.errors import InvalidQuery

router = APIRouter(tags=["embeddings"])


@router.post("/embed", response_model=EmbedResponse, responses={422: {"model": ErrorResponse}})
def embed(body: EmbedRequest, searcher: SearcherDep) -> Any:
    """Vectors of the texts, from the index's own encoder (as its chunks and queries are encoded)."""
    began = time.perf_counter()
    result = searcher.embed(body.texts, normalize=body.normalize, input_type=body.input_type)
    # Returned as JSON directly: validating 12,000 floats again would cost more than writing them.
    return JSONResponse({
        "model": result.model, "dimension": result.dimension, "precision": result.precision,
        "embeddings": result.vectors.tolist(), "tokens": result.tokens, "took_ms": round((time.perf_counter() - began) * 1000.0, 3),
    })


@router.post("/v1/embeddings", response_model=EmbeddingsResponse, responses={422: {"model": ErrorResponse}})
def embeddings(body: EmbeddingsRequest, searcher: SearcherDep) -> Any:
    """OpenAI-compatible embeddings: point an OpenAI client's `base_url` at `<server>/v1`."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    result = searcher.embed(texts, input_type=body.input_type)
    if body.dimensions is not None and body.dimensions != result.dimension:
        raise InvalidQuery(f"this encoder makes vectors of dimension {result.dimension}, not {body.dimensions}")
    if body.encoding_format == "base64":
        vectors: list[Any] = [base64.b64encode(np.ascontiguousarray(v, dtype="<f4").tobytes()).decode("ascii")
                              for v in result.vectors]
    else:
        vectors = result.vectors.tolist()
    return JSONResponse({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": result.model,
        "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
    })
