"""The core's errors as HTTP answers: one status per noun, one JSON shape (``{"detail": ...}``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from bertsearch.indexer.common import errors as e

# The most specific class wins (the mapping is looked up along the exception's MRO).
STATUS = {
    e.BertsearchError: 400,
    e.ConfigError: 400,
    e.UnsupportedDocument: 400,
    e.IndexNotFound: 404,
    e.DocumentNotFound: 404,
    e.InvalidQuery: 422,
    e.ModelMismatch: 409,
    e.IndexLocked: 409,
    e.IndexCorrupt: 500,
    e.ModelLoadError: 500,
    e.StorageError: 503,
}


def status_of(exc: e.BertsearchError) -> int:
    """The HTTP status of a core error."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


async def bertsearch_error(request: Request, exc: e.BertsearchError) -> JSONResponse:
    """Every core error becomes ``{"detail": message}`` with its status."""
    return JSONResponse(status_code=status_of(exc), content={"detail": str(exc)})
