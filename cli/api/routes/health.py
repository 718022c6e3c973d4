"""``GET /health``, ``/health/live``, ``/health/ready`` and ``GET /stats``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bertsearch.cli.api.deps import SearcherDep, require
from bertsearch.cli.api.schemas import ErrorResponse, HealthResponse, LiveResponse, StatsResponse
from bertsearch.cli.api.security import ADMIN, READ

router = APIRouter(tags=["service"])

# What /stats shows only to an admin key: where the index lives and what it reads.
PRIVATE_STATS = ("index_dir", "db_url", "root", "model_path")


@router.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
def health(request: Request, searcher: SearcherDep) -> Any:
    """The server is up, its database answers and it serves an index (no key needed; as `/health/ready`)."""
    return ready(request)


@router.get("/health/live", response_model=LiveResponse)
def live() -> Any:
    """The process answers (no key needed)."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
def ready(request: Request) -> Any:
    """The database answers and an index is served: ready for traffic (no key needed)."""
    searcher = request.app.state.searcher
    problem = searcher.check_ready()
    if problem is not None:
        return JSONResponse(status_code=503, content={"detail": problem})
    return {"status": "ok", "generation": searcher.generation, "qa_model_loaded": searcher.reader_loaded}


@router.get("/stats", response_model=StatsResponse, responses={401: {"model": ErrorResponse}})
def stats(searcher: SearcherDep, scope: str = Depends(require(READ))) -> Any:
    """What the served index holds (documents, chunks) and how it was built (model, dimension); an
    admin key also sees the index folder, the masked database URL and the model's folder."""
    began = time.perf_counter()
    info = dict(searcher.stats())
    if scope != ADMIN:
        for key in PRIVATE_STATS:
            info.pop(key, None)
    info["took_ms"] = round((time.perf_counter() - began) * 1000.0, 3)
    return info
