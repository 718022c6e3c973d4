"""``GET /health`` and ``GET /stats``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from bertsearch.cli.api.deps import SearcherDep
from bertsearch.cli.api.schemas import HealthResponse, StatsResponse

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthResponse)
def health(searcher: SearcherDep) -> Any:
    """The server is up and serving an index."""
    return {"status": "ok", "generation": searcher.generation, "qa_model_loaded": searcher.reader_loaded}


@router.get("/stats", response_model=StatsResponse)
def stats(searcher: SearcherDep) -> Any:
    """What the served index holds (documents, chunks) and how it was built (model, dimension)."""
    began = time.perf_counter()
    info = dict(searcher.stats())
    info["took_ms"] = round((time.perf_counter() - began) * 1000.0, 3)
    return info
