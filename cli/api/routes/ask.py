"""``POST /ask``: extracted answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bertsearch.cli.api.deps import SearcherDep
from bertsearch.cli.api.schemas import AskRequest, AskResponse, ErrorResponse

router = APIRouter(tags=["search"])


@router.post(
    "/ask", response_model=AskResponse, responses={422: {"model": ErrorResponse}, 500: {"model": ErrorResponse}},
)
def ask(body: AskRequest, searcher: SearcherDep) -> Any:
    """Answers to the question read from the best passages, each with its confidence; when none reaches the threshold, the best one flagged `below_threshold`, with a reason."""
    result = searcher.ask(
        body.question, top_k=body.top_k, passages=body.passages, path_glob=body.path_glob, threshold=body.threshold,
        mode=body.mode, where=body.where,
    )
    return result
