"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bertsearch.search.searcher import Searcher

# How often a request checks for a generation committed by `bertsearch index` (seconds).
REFRESH_INTERVAL = 1.0


def get_searcher(request: Request) -> Searcher:
    """The app's searcher, switched to the newest committed generation of the index if one appeared."""
    searcher: Searcher = request.app.state.searcher
    searcher.refresh(min_interval=request.app.state.refresh_interval)
    return searcher


SearcherDep = Annotated[Searcher, Depends(get_searcher)]
