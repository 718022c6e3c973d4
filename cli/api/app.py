"""The FastAPI application: ``create_app(settings)`` builds it; routes live in ``routes/``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import SQLAlchemyError

from bertsearch.cli.api import mcp
from bertsearch.cli.api.deps import REFRESH_INTERVAL, require
from bertsearch.cli.api.errors import bertsearch_error, database_error, unexpected_error
from bertsearch.cli.api.middleware import Guard
from bertsearch.cli.api.routes import ask, documents, embed, health, search, web
from bertsearch.cli.api.schemas import ErrorResponse
from bertsearch.cli.api.security import READ, KeyRing
from bertsearch.cli.api.writer import DocumentWriter
from bertsearch.indexer.common.errors import BertsearchError, ModelLoadError
from bertsearch.indexer.common.settings import Settings, split_list
from bertsearch.search.searcher import Searcher

log = logging.getLogger("bertsearch.api")


def create_app(settings: Settings | None = None, *, searcher: Searcher | None = None) -> FastAPI:
    """The HTTP API over the index described by ``settings``.

    The lifespan opens the index and loads the models once, into ``app.state.searcher``.
    Every route but the health checks needs an API key when keys are configured (see
    :mod:`bertsearch.cli.api.security`); a guard checks the ``Host`` header and the body size.

    Args:
        settings: Runtime settings; ``None`` reads the environment.
        searcher: An open searcher to serve instead of opening one from ``settings`` (it is
            not closed on shutdown).

    Raises:
        ConfigError: The API keys or the keys file are invalid.
    """
    settings = settings or Settings()
    keys = KeyRing.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = searcher is None
        served = Searcher.open(settings) if own else searcher
        try:
            served.load_models(reader=False)
            try:
                served.load_models()  # the QA model now rather than on the first /ask
            except ModelLoadError as exc:
                # /search still works; /ask answers 503 with this message until the model loads.
                log.warning("QA model not loaded: %s", exc)
            app.state.searcher = served
            app.state.refresh_interval = REFRESH_INTERVAL
            app.state.writer = DocumentWriter(settings, served)  # PUT/DELETE /documents/by-key/{key}
            async with mcp.running(app, settings):
                yield
        finally:
            if hasattr(app.state, "writer"):
                app.state.writer.close()
            if own:
                served.close()

    app = FastAPI(
        title="bertsearch",
        summary="Semantic search and extractive answers over your documents.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served offline by routes/web.py
        redoc_url=None,
    )
    app.state.keys = keys
    app.add_exception_handler(BertsearchError, bertsearch_error)  # type: ignore[arg-type]
    app.add_exception_handler(SQLAlchemyError, database_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error)
    every = {
        400: {"model": ErrorResponse, "description": "A body that is not UTF-8 JSON, or a Host this server does not answer to."},
        413: {"model": ErrorResponse, "description": "The request body is over the limit."},
        503: {"model": ErrorResponse, "description": "The database is unavailable."},
    }
    guarded = {
        **every,
        401: {"model": ErrorResponse, "description": "No API key, or not a key of this server."},
        403: {"model": ErrorResponse, "description": "The key's scope does not allow this."},
    }
    for module in (search, ask, embed, documents):
        app.include_router(module.router, dependencies=[Depends(require(READ))], responses=guarded)
    app.include_router(health.router, responses=every)
    mcp.mount(app)
    web.mount(app)
    origins = split_list(settings.cors_origins)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(Guard, allowed_hosts=split_list(settings.allowed_hosts),
                       max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's own document, stating what only the served index knows: the encoder's dimension,
    the one value OpenAI's ``dimensions`` may take here. Made again when a reload serves an index
    of another dimension."""
    searcher = getattr(app.state, "searcher", None)
    dimension = searcher.index.params.dimension if searcher is not None else None
    if app.openapi_schema is not None and getattr(app.state, "openapi_dimension", None) == dimension:
        return app.openapi_schema
    app.openapi_schema = None
    schema = FastAPI.openapi(app)  # every argument FastAPI gives it (servers, tags, ...), cached there
    if dimension is not None:
        field = schema["components"]["schemas"]["EmbeddingsRequest"]["properties"]["dimensions"]
        field["anyOf"] = [{"type": "integer", "enum": [dimension]}, {"type": "null"}]
        field["description"] = f"The encoder's dimension, {dimension}, when given (this server's encoder makes no other)."
    app.state.openapi_dimension = dimension
    return schema


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bertsearch")
    except PackageNotFoundError:  # pragma: no cover
        return "0"
