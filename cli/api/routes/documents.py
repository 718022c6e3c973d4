"""``GET /documents/{document_id}``."""

from __future__ import annotations

from typing import Any

from typing import Annotated

from fastapi import APIRouter, Path

from bertsearch.cli.api.deps import SearcherDep
from bertsearch.cli.api.schemas import DocumentResponse, ErrorResponse

router = APIRouter(tags=["documents"])


@router.get("/documents/{document_id}", response_model=DocumentResponse, responses={404: {"model": ErrorResponse}})
def document(document_id: Annotated[int, Path(ge=1, le=2**63 - 1)], searcher: SearcherDep) -> Any:
    """An indexed document, by id."""
    return searcher.document(document_id)
