"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bertsearch.search.searcher import Searcher

# How often a request checks for a generation committed by `bertsearch index` (seconds).
REFRESH_INTERVAL = 1.0


async def get_searcher(request: Request) -> Searcher:
    """The app's searcher; at most once a second, a background check for a newer generation of the index."""
    searcher: Searcher = request.app.state.searcher
    # Async: no thread hop for a timestamp check. The reload runs in a background thread: no
    # request waits for it, and each runs on one whole generation.
    searcher.refresh(min_interval=request.app.state.refresh_interval, background=True)
    return searcher


SearcherDep = Annotated[Searcher, Depends(get_searcher)]
