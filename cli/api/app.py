"""The FastAPI application: ``create_app(settings)`` builds it; routes live in ``routes/``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bertsearch.cli.api.deps import REFRESH_INTERVAL
from bertsearch.cli.api.errors import bertsearch_error
from bertsearch.cli.api.routes import ask, documents, health, search
from bertsearch.indexer.common.errors import BertsearchError, ModelLoadError
from bertsearch.indexer.common.settings import Settings
from bertsearch.search.searcher import Searcher

log = logging.getLogger("bertsearch.api")


def create_app(settings: Settings | None = None, *, searcher: Searcher | None = None) -> FastAPI:
    """The HTTP API over the index described by ``settings``.

    The lifespan opens the index and loads the models once, into ``app.state.searcher``.

    Args:
        settings: Runtime settings; ``None`` reads the environment.
        searcher: An open searcher to serve instead of opening one from ``settings`` (it is
            not closed on shutdown).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = searcher is None
        served = Searcher.open(settings) if own else searcher
        try:
            served.load_models(reader=False)
            try:
                served.load_models()  # the QA model now rather than on the first /ask
            except ModelLoadError as exc:
                # /search still works; /ask answers 500 with this message until the model exists.
                log.warning("QA model not loaded: %s", exc)
            app.state.searcher = served
            app.state.refresh_interval = REFRESH_INTERVAL
            yield
        finally:
            if own:
                served.close()

    app = FastAPI(
        title="bertsearch",
        summary="Semantic search and extractive answers over your documents.",
        version=_version(),
        lifespan=lifespan,
    )
    app.add_exception_handler(BertsearchError, bertsearch_error)  # type: ignore[arg-type]
    for module in (search, ask, health, documents):
        app.include_router(module.router)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bertsearch")
    except PackageNotFoundError:  # pragma: no cover
        return "0"
