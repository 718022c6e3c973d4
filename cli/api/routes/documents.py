"""``/documents``: read by id; read, put and delete by key at ``/documents/by-key/{key}`` (writes:
scope ``write``); ``POST /documents:batch``.

A key is the caller's (an id, a URL, a path) and may hold slashes: it is the rest of the path,
percent-encoded where it holds ``?``, ``#`` or ``%``
(``PUT /documents/by-key/https%3A%2F%2Fexample.org%2Fa%3Fb``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bertsearch.cli.api.deps import SearcherDep, require
from bertsearch.cli.api.schemas import (KEY_PATTERN, BatchRequest, DocumentBody, DocumentResponse, ErrorResponse,
                                        WriteResponse)
from bertsearch.cli.api.security import WRITE
from bertsearch.cli.api.writer import DocumentWriter
from bertsearch.indexer.common.errors import InvalidDocument
from bertsearch.indexer.ingest import DocumentPut, IngestResult



class _SharedPath(APIRoute):
    """A route whose 405 names every method of its path (GET, PUT and DELETE share the key's path;
    Starlette names only the first route's)."""

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        if self.methods and scope["method"] not in self.methods:
            allowed = sorted({m for route in scope["router"].routes if getattr(route, "path", None) == self.path
                              for m in getattr(route, "methods", None) or ()})
            raise StarletteHTTPException(status_code=405, headers={"Allow": ", ".join(allowed)})
        await super().handle(scope, receive, send)


router = APIRouter(tags=["documents"], route_class=_SharedPath)

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The document's key; it may hold slashes "
                                                           "(percent-encode `?`, `#`, `%`).")]
_WRITE = [Depends(require(WRITE))]
_REFUSED = {404: {"model": ErrorResponse}, 415: {"model": ErrorResponse}, 422: {"model": ErrorResponse}}
# The body of a put: JSON, or a file as multipart (read by the indexer's readers, by its name's suffix).
_PUT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": DocumentBody.model_json_schema()},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "A .txt, .md, .rst, .html or .pdf file (by the suffix of its name)."},
            "title": {"type": "string", "description": "Default: the file's own title."},
            "metadata": {"type": "string", "description": "A JSON object, as in the JSON body."},
        }}},
}}}


def writer(request: Request) -> DocumentWriter:
    """The app's document writer."""
    return request.app.state.writer


WriterDep = Annotated[DocumentWriter, Depends(writer)]


@router.get("/documents/by-key/{key:path}", response_model=DocumentResponse, responses={404: {"model": ErrorResponse}})
def document_by_key(key: Key, searcher: SearcherDep,
                    source: Annotated[Literal["api", "folder"], Query(
                        description="api: put by key; folder: a file of the indexed folder, by its path.")] = "api",
                    ) -> Any:
    """A document by the key it was put under (or a folder file by its relative path)."""
    return searcher.index.reader.document_by_key(key, source)


@router.get("/documents/{document_id}", response_model=DocumentResponse, responses={404: {"model": ErrorResponse}})
def document(document_id: Annotated[int, Path(ge=1, le=2**63 - 1)], searcher: SearcherDep) -> Any:
    """An indexed document, by id."""
    return searcher.document(document_id)


@router.post("/documents:batch", response_model=WriteResponse, dependencies=_WRITE, responses=_REFUSED)
async def batch(body: BatchRequest, documents: WriterDep) -> Any:
    """Put and delete documents by key in one commit; 200 once committed."""
    puts = [DocumentPut(p.key, text=p.text, title=p.title, metadata=p.metadata) for p in body.put]
    return await run_in_threadpool(documents.apply, puts, body.delete)


@router.put("/documents/by-key/{key:path}", response_model=WriteResponse, dependencies=_WRITE, openapi_extra=_PUT_BODY,
            responses={201: {"model": WriteResponse, "description": "Created."}, **_REFUSED})
async def put(key: Key, request: Request, documents: WriterDep) -> Any:
    """Put a document under a key: 201 created, 200 replaced or unchanged, once committed."""
    document = await _document(key, request)
    result: IngestResult = await run_in_threadpool(documents.apply, [document])
    status = 201 if result.results[0].status == "created" else 200
    return JSONResponse(status_code=status, content=result.to_dict())


@router.delete("/documents/by-key/{key:path}", response_model=WriteResponse, dependencies=_WRITE, responses=_REFUSED)
async def delete(key: Key, documents: WriterDep) -> Any:
    """Delete the document put under a key (404 when there is none); 200 once committed."""
    return await run_in_threadpool(documents.delete, key)


async def _document(key: str, request: Request) -> DocumentPut:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=3)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidDocument("a multipart put needs the document as the file field `file`")
        title, metadata = form.get("title"), form.get("metadata")
        return DocumentPut(key, data=await upload.read(), filename=upload.filename or key,
                           title=title if isinstance(title, str) else None, metadata=_json_field(metadata))
    if kind not in ("application/json", ""):
        raise HTTPException(status_code=415, detail="send the document as application/json or multipart/form-data")
    try:
        body = DocumentBody.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
    return DocumentPut(key, text=body.text, title=body.title, metadata=body.metadata)


def _json_field(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise InvalidDocument("the field `metadata` is not JSON") from None

