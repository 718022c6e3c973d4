"""``POST /search``: ranked passages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bertsearch.cli.api.deps import SearcherDep
from bertsearch.cli.api.schemas import ErrorResponse, SearchRequest, SearchResponse

router = APIRouter(tags=["search"])


@router.post("/search", response_model=SearchResponse, responses={422: {"model": ErrorResponse}})
def search(body: SearchRequest, searcher: SearcherDep) -> Any:
    """The passages closest in meaning to the query, best first."""
    return searcher.search(body.query, top_k=body.top_k, path_glob=body.path_glob, mode=body.mode,
                           ef_search=body.ef_search, where=body.where)
