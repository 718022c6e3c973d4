"""The core's errors as HTTP answers: one status per noun, one JSON shape (``{"detail": ...}``).

A database that fails on the read side is 503; anything unexpected is 500 with the request's id,
and its traceback goes to the server log only.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from bertsearch.indexer.common import errors as e

log = logging.getLogger("bertsearch.api")

# The most specific class wins (the mapping is looked up along the exception's MRO).
STATUS = {
    e.BertsearchError: 400,
    e.ConfigError: 400,
    e.UnsupportedDocument: 400,
    e.IndexNotFound: 404,
    e.DocumentNotFound: 404,
    e.InvalidQuery: 422,
    e.InvalidDocument: 422,
    e.ModelMismatch: 409,
    e.IndexLocked: 409,
    e.IndexCorrupt: 500,
    e.ModelLoadError: 503,
    e.StorageError: 503,
}


def status_of(exc: e.BertsearchError) -> int:
    """The HTTP status of a core error."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


# A server-side fault's message may name paths or the database's host: those are logged, and
# the client gets this sentence and the request id instead.
_PUBLIC = {
    e.StorageError: "the database or the index storage is unavailable; try again later",
    e.IndexCorrupt: "the index cannot be read; the server log says why",
    e.ModelLoadError: "the QA model is not loaded, so /ask is unavailable (/search works); the server log says why",
}


async def bertsearch_error(request: Request, exc: e.BertsearchError) -> JSONResponse:
    """Every core error becomes ``{"detail": message}`` with its status."""
    status = status_of(exc)
    public = public_detail(exc)
    if public is None:
        return JSONResponse(status_code=status, content={"detail": str(exc)})
    rid = request_id(request)
    log.warning("request %s: %s: %s", rid, type(exc).__name__, exc)
    return JSONResponse(status_code=status, content={"detail": public, "request_id": rid})


def public_detail(exc: e.BertsearchError) -> str | None:
    """What a client is told of a server-side fault (its own message stays in the log), or
    ``None`` when the error's own message is for the client."""
    return next((text for cls, text in _PUBLIC.items() if isinstance(exc, cls)), None)


def request_id(request: Request) -> str:
    """The id the guard gave this request (in the ``X-Request-ID`` header and the server log)."""
    return str(getattr(request.state, "request_id", "-"))


async def database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
    """A database error while reading: the service is unavailable, not broken (503)."""
    log.warning("request %s: database error: %s", request_id(request), type(exc).__name__)
    return JSONResponse(status_code=503, content={"detail": "the database is unavailable; try again later"})


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything else: 500 with the request id; the traceback is logged, never sent."""
    rid = request_id(request)
    log.error("request %s failed", rid, exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal server error", "request_id": rid},
                        headers={"x-request-id": rid})
