"""The MCP server (Model Context Protocol, the official ``mcp`` SDK): the tools ``search``, ``ask``
and ``get_document`` over one :class:`~bertsearch.search.searcher.Searcher`, for agents.

The transports live elsewhere: stdio in ``commands/mcp.py`` (``bertsearch mcp``), streamable
HTTP at ``/mcp`` of the API in ``mcp.py``. A tool parses, checks the caller's scope, calls
the core and returns the core's own result type, which the SDK sends as structured content (with
its JSON schema as the tool's output schema) and as JSON text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from bertsearch.cli.api.deps import refusal
from bertsearch.cli.api.errors import public_detail
from bertsearch.cli.api.schemas import MetadataValue
from bertsearch.cli.api.security import READ, WRITE
from bertsearch.cli.api.writer import DocumentWriter
from bertsearch.indexer.common.errors import BertsearchError
from bertsearch.indexer.ingest import DocumentPut, IngestResult
from bertsearch.indexer.records import DocumentRecord
from bertsearch.search.limits import MAX_QUERY_CHARS, MAX_TOP_K
from bertsearch.search.retrieval import DEFAULT_MODE
from bertsearch.search.searcher import DEFAULT_PASSAGES, Searcher
from bertsearch.search.types import AskResult, SearchResult

log = logging.getLogger("bertsearch.mcp")

# Where the HTTP endpoint leaves the scope of the request's API key (the request's ASGI state).
KEY_SCOPE = "bertsearch_key_scope"

INSTRUCTIONS = (
    "Search and answer questions over the documents indexed by bertsearch. Use `ask` for a factual "
    "question (it returns short answer spans with a confidence and the document they come from), "
    "`search` to find the passages about a topic, and `get_document` to read a whole document by "
    "the `document_id` a passage or an answer names. With a key of scope `write`, `put_document` and "
    "`delete_document` add, replace and remove documents by a key of your choice."
)

_T = TypeVar("_T")

Mode = Annotated[Literal["hybrid", "dense", "lexical"], Field(
    description="How passages are retrieved: hybrid (meaning and words fused; best in general), dense "
                "(meaning only: paraphrases) or lexical (BM25 on the words: exact names, options, error codes).")]
PathGlob = Annotated[str | None, Field(
    max_length=1000, description="Only documents whose path (relative to the indexed folder, `/` separators) "
                                 "matches this glob, e.g. `docs/*.md` or `**/install*`.")]
WhereFilter = Annotated[dict[str, Any] | None, Field(
    description='Only documents whose metadata this filter lets through (Chroma\'s operators): '
                '`{"language": "zh"}`, `{"year": {"$gte": 2020}}`, `{"tags": {"$contains": "ops"}}`, '
                '`{"path": {"$glob": "docs/*.md"}}`, `{"$or": [...]}`; also `$ne $gt $lt $lte $in $nin $and`. '
                'Fields: the metadata put with a document and `title`, `author`, `type`, `size`, `mtime`, '
                '`language`, `path`, `source`.')]
Count = Annotated[int, Field(ge=1, le=MAX_TOP_K)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]


def build_server(searcher: Callable[[], Searcher], *, local_scope: str | None, version: str,
                 writer: Callable[[], DocumentWriter] | None = None) -> MCPServer:
    """The MCP server of the tools over the searcher ``searcher()`` hands out.

    Args:
        searcher: Hands out the searcher to call (after its due check for a newer generation).
        local_scope: The scope of a caller without an HTTP request (stdio: the user who started
            the process); ``None``: every call must come with a key's scope (HTTP).
        version: The version of bertsearch, as the server introduces itself.
        writer: Hands out the writer of documents by key; ``None``: no write tools.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server = MCPServer("bertsearch", title="bertsearch", version=version, instructions=INSTRUCTIONS,
                       log_level="WARNING")
    # MCPServer configures the root logger when it is built; the process's logging is not its to set.
    root.handlers[:] = handlers
    root.setLevel(level)
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                open_world_hint=False)

    @server.tool(name="search", title="Search passages", annotations=read_only)
    def search(
        ctx: Context,
        query: Annotated[Text, Field(description="What to look for, in words or as a question.")],
        top_k: Annotated[Count, Field(description="How many passages to return.")] = 5,
        mode: Mode = DEFAULT_MODE,
        path_glob: PathGlob = None,
        where: WhereFilter = None,
    ) -> SearchResult:
        """Find the passages of the indexed documents that best match a query, best first.

        Returns `hits`: each passage's `text`, its `score` (higher is better), the `path` and
        `title` of its document, `document_id` (for `get_document`), `chunk_id`, and the passage's
        character offsets `start`/`end` in the document. Use it to explore a topic or to collect
        context; for a direct factual question prefer `ask`.
        """
        _check(ctx, READ, local_scope)
        return _core(lambda: searcher().search(query, top_k=top_k, path_glob=path_glob, mode=mode,
                                                   where=where))

    @server.tool(name="ask", title="Answer a question", annotations=read_only)
    def ask(
        ctx: Context,
        question: Annotated[Text, Field(description="A question in natural language.")],
        top_k: Annotated[Count, Field(description="How many answers to return at most.")] = 5,
        passages: Annotated[Count, Field(
            description="How many retrieved passages the reader reads (more: slower, may find more).")] = DEFAULT_PASSAGES,
        mode: Mode = DEFAULT_MODE,
        path_glob: PathGlob = None,
        threshold: Annotated[float | None, Field(
            ge=0.0, le=1.0, description="Minimum confidence of an answer, 0 to 1 (default: the server's, fitted "
                                        "on training data).")] = None,
        where: WhereFilter = None,
    ) -> AskResult:
        """Answer a factual question with short spans extracted from the indexed documents, best first.

        Returns `answers`: each answer's `text` (copied from the document, not generated), its
        `confidence` (the estimated probability that it is right, 0 to 1), and its source: the
        document's `path`, `title` and `document_id`, the `chunk_id` and `context` (the passage it
        was read from) and its character offsets `start`/`end`. When no answer reaches the
        threshold, the best one comes alone with `below_threshold: true` and `reason` says why:
        treat it as a guess. No answers at all: nothing matched.
        """
        _check(ctx, READ, local_scope)
        return _core(lambda: searcher().ask(question, top_k=top_k, passages=passages, path_glob=path_glob,
                                            threshold=threshold, mode=mode, where=where))

    @server.tool(name="get_document", title="Read a document", annotations=read_only)
    def get_document(
        ctx: Context,
        document_id: Annotated[int, Field(ge=1, le=2**63 - 1, description=(
            "The `document_id` of a hit of `search` or of an answer of `ask`."))],
    ) -> DocumentRecord:
        """Read one whole indexed document: its `text` (as indexed), `path`, `title`, size and
        when it was indexed. Use it when a passage or an answer needs more of its context."""
        _check(ctx, READ, local_scope)
        return _core(lambda: searcher().document(document_id))

    if writer is not None:
        _write_tools(server, writer, local_scope)
    return server


Key = Annotated[str, Field(min_length=1, max_length=1024,
                           description="The document's key, of your choice: an id, a URL, a path.")]


def _write_tools(server: MCPServer, writer: Callable[[], DocumentWriter], local_scope: str | None) -> None:
    """``put_document`` and ``delete_document``: the writes of ``PUT``/``DELETE /documents/{key}``."""

    @server.tool(name="put_document", title="Add or replace a document",
                 annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                             open_world_hint=False))
    def put_document(
        ctx: Context,
        key: Key,
        text: Annotated[str, Field(description="The document's text (plain text or Markdown).")],
        title: Annotated[str | None, Field(max_length=1000, description="Default: the key.")] = None,
        metadata: Annotated[dict[str, MetadataValue] | None, Field(
            description="A flat object stored with the document: strings, numbers, booleans, lists of strings.")] = None,
    ) -> IngestResult:
        """Add a document under a key, or replace the one already there (needs a key of scope `write`).

        It is chunked, encoded and committed before the answer, so `search` and `ask` find it at
        once. Returns the `generation` that holds it and, in `results`, its `status` (created,
        replaced or unchanged), its `id` (the `document_id`) and the `chunks` encoded.
        """
        _check(ctx, WRITE, local_scope)
        return _core(lambda: writer().apply(puts=[DocumentPut(key, text=text, title=title, metadata=metadata)]))

    @server.tool(name="delete_document", title="Delete a document",
                 annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                             open_world_hint=False))
    def delete_document(ctx: Context, key: Key) -> IngestResult:
        """Delete the document put under a key (needs a key of scope `write`; an error when there is
        none). Only documents put by key: the files of the indexed folder follow the folder."""
        _check(ctx, WRITE, local_scope)
        return _core(lambda: writer().delete(key))


def _check(ctx: Context, needed: str, local_scope: str | None) -> None:
    """Refuses the call (a tool error) unless the caller's key has the ``needed`` scope."""
    request = ctx.request_context.request
    if request is None:
        scope = local_scope
    else:  # the HTTP endpoint authenticated the key and left its scope in the request's state
        scope = request.scope.get("state", {}).get(KEY_SCOPE)
    refused = "no API key scope is known for this call" if scope is None else refusal(scope, needed)
    if refused:
        raise ToolError(refused)


def _core(call: Callable[[], _T]) -> _T:
    """``call()``; the core's errors become tool errors the agent reads, told as the HTTP API
    tells them (a server-side fault's details stay in the log)."""
    try:
        return call()
    except BertsearchError as exc:
        public = public_detail(exc)
        if public is not None:
            log.warning("MCP tool call failed: %s: %s", type(exc).__name__, exc)
        raise ToolError(public or str(exc)) from None
    except SQLAlchemyError as exc:
        log.warning("MCP tool call: database error: %s", type(exc).__name__)
        raise ToolError("the database is unavailable; try again later") from None


__all__ = ["KEY_SCOPE", "build_server"]
