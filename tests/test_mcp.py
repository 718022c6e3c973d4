"""The MCP server with the SDK's own client: over stdio (`bertsearch mcp`, a subprocess) and over
streamable HTTP (`/mcp` of a real `bertsearch serve`): the tools, their answers with the source,
API keys and scopes, the Host and Origin checks, and bad arguments as tool errors."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from _server import bertsearch_command, serve
from bertsearch.cli.api.mcp import transport_security
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index

READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
SAMPLE_DOCS = Path(__file__).resolve().parent.parent / "samples" / "docs"
TOOLS = {"search", "ask", "get_document", "put_document", "delete_document"}

_T = TypeVar("_T")


def _run(session: Callable[[], Any], body: Callable[[ClientSession], Awaitable[_T]]) -> _T:
    """``body(session)`` in a client session opened by ``session()``, run to its end."""

    async def main() -> _T:
        async with session() as client:
            return await body(client)

    return anyio.run(main)


@asynccontextmanager
async def _stdio(index_dir: Path, *args: str) -> AsyncIterator[ClientSession]:
    command = bertsearch_command()
    params = StdioServerParameters(command=command[0], args=[*command[1:], "mcp", "--index", str(index_dir), *args],
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def _http(url: str, key: str | None, statuses: list[int] | None = None) -> AsyncIterator[ClientSession]:
    """A session over streamable HTTP with ``key``; the status of each HTTP answer is added to ``statuses``."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with httpx2.AsyncClient(headers=headers, timeout=60.0, event_hooks={"response": [record]}) as http, \
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


def _data(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful call, checked against its JSON text."""
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def _error(result: CallToolResult) -> str:
    assert result.is_error, result
    text = result.content[0].text
    assert "Traceback" not in text and 'File "' not in text and "/tmp" not in text, text
    return text


@pytest.fixture(scope="module")
def minilm_index(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Path:
    root = tmp_path_factory.mktemp("mcp-minilm-index")
    with Index.open(Settings(index_dir=root, model_path=minilm_path), create=True) as index:
        index.update(SAMPLE_DOCS)
    return root


@pytest.mark.slow
def test_stdio_lists_the_tools_and_answers_with_the_source(minilm_index: Path) -> None:
    async def body(session: ClientSession) -> None:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert len(tool.description) > 100 and tool.output_schema, tool.name
        assert {"query", "top_k", "mode", "path_glob"} <= set(tools["search"].input_schema["properties"])
        assert {"question", "top_k", "passages", "mode", "path_glob", "threshold"} \
            <= set(tools["ask"].input_schema["properties"])
        assert tools["ask"].input_schema["required"] == ["question"]
        assert tools["search"].input_schema["properties"]["mode"]["enum"] == ["hybrid", "dense", "lexical"]
        assert "confidence" in tools["ask"].description and "path" in tools["ask"].description

        answers = _data(await session.call_tool("ask", {"question": "How long are rotated logs kept?"}))["answers"]
        best = answers[0]
        assert "14 days" in best["text"] and best["path"] == "logging.md" and not best["below_threshold"]
        assert 0.0 < best["confidence"] <= 1.0 and best["chunk_id"] >= 1
        document = _data(await session.call_tool("get_document", {"document_id": best["document_id"]}))
        assert document["path"] == "logging.md" and document["text"][best["start"]:best["end"]] == best["text"]

        hits = _data(await session.call_tool("search", {"query": "full backup of the database", "top_k": 3}))["hits"]
        assert len(hits) == 3 and hits[0]["path"] == "backups.txt"
        only = _data(await session.call_tool("search", {"query": "logs", "mode": "dense", "path_glob": "*.rst"}))
        assert only["hits"] and {hit["path"] for hit in only["hits"]} == {"install.rst"}

        assert "top_k" in _error(await session.call_tool("search", {"query": "logs", "top_k": 0}))
        assert "mode" in _error(await session.call_tool("ask", {"question": "logs?", "mode": "fuzzy"}))
        assert "question" in _error(await session.call_tool("ask", {}))
        assert "empty" in _error(await session.call_tool("search", {"query": "   "}))
        assert "no document with id 999999" in _error(await session.call_tool("get_document", {"document_id": 999999}))

    _run(lambda: _stdio(minilm_index), body)


def test_stdio_on_a_missing_index_is_an_error_before_serving(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run([*bertsearch_command(), "mcp", "--index", str(tmp_path / "none")], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("Error: no index at"), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.fixture(scope="module")
def keyed_server(sample_index: Settings, tiny_qa_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(sample_index.index_dir, tiny_qa_path, tmp_path_factory.mktemp("mcp-serve") / "log.txt",
                     env={"BERTSEARCH_API_KEYS": f"{READ_KEY},{ADMIN_KEY}:admin"})


def test_http_with_a_key_lists_the_tools_and_answers_with_the_source(keyed_server: str) -> None:
    async def body(session: ClientSession) -> None:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
        hits = _data(await session.call_tool("search", {"query": "rotated logs", "top_k": 2}))["hits"]
        assert len(hits) == 2 and all(hit["path"] and hit["text"] for hit in hits)
        asked = _data(await session.call_tool("ask", {"question": "How long are logs kept?", "passages": 3,
                                                      "threshold": 0.0}))
        assert asked["answers"], asked  # the tiny QA model's answers mean nothing: their source does
        for answer in asked["answers"]:
            assert answer["path"] and answer["chunk_id"] >= 1
            assert answer["context"][answer["start"] - answer["context_start"]:][:len(answer["text"])] == answer["text"]
        assert "no document" in _error(await session.call_tool("get_document", {"document_id": 424242}))
        assert "top_k" in _error(await session.call_tool("search", {"query": "logs", "top_k": 101}))
        if key == READ_KEY:  # nothing reaches the (shared, read-only) index
            refused = _error(await session.call_tool("put_document", {"key": "k", "text": "a text"}))
            assert "this API key has the scope 'read'; this needs 'write'" in refused

    for key in (READ_KEY, ADMIN_KEY):
        _run(lambda: _http(keyed_server, key), body)


def test_http_without_a_valid_key_is_401(keyed_server: str) -> None:
    for key in (None, "not-a-key-of-this-server"):
        statuses: list[int] = []
        with pytest.raises(BaseException, match="unhandled errors") as failed:  # the client cannot initialize
            _run(lambda: _http(keyed_server, key, statuses), lambda session: session.list_tools())
        assert failed.group_contains(MCPError, match="error response", depth=2)
        assert statuses == [401]
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    response = httpx.post(f"{keyed_server}/mcp", json=initialize, headers=accept)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "an API key is required: `Authorization: Bearer <key>`"}
    wrong = httpx.post(f"{keyed_server}/mcp", json=initialize, headers={**accept, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "the API key is not valid"}
    right = httpx.post(f"{keyed_server}/mcp", json=initialize, headers={**accept, "Authorization": f"Bearer {READ_KEY}"})
    assert right.status_code == 200 and right.json()["result"]["serverInfo"]["name"] == "bertsearch"


def test_http_answers_only_the_hosts_and_origins_the_api_answers(keyed_server: str) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {READ_KEY}"}
    rebound = httpx.post(f"{keyed_server}/mcp", json=initialize, headers={**headers, "Host": "evil.example"})
    assert rebound.status_code == 400 and "--allowed-host" in rebound.json()["detail"]
    foreign = httpx.post(f"{keyed_server}/mcp", json=initialize, headers={**headers, "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    port = keyed_server.rsplit(":", 1)[1]
    for host, origin in [("localhost", "http://localhost"), (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}")]:
        ok = httpx.post(f"{keyed_server}/mcp", json=initialize, headers={**headers, "Host": host, "Origin": origin})
        assert ok.status_code == 200, (host, ok.text)


def test_the_sdk_is_told_the_hosts_and_origins_of_the_guard() -> None:
    told = transport_security(Settings(allowed_hosts="localhost,::1,Search.Example", cors_origins="https://app.example"))
    assert told.enable_dns_rebinding_protection
    assert told.allowed_hosts == ["localhost", "localhost:*", "[::1]", "[::1]:*", "search.example", "search.example:*"]
    assert {"http://search.example", "https://search.example:*", "http://[::1]:*", "https://app.example"} \
        <= set(told.allowed_origins)
    assert not any("evil" in origin for origin in told.allowed_origins)
    assert not transport_security(Settings(allowed_hosts="localhost,*")).enable_dns_rebinding_protection


def test_a_tool_refuses_a_caller_without_its_scope() -> None:
    from mcp import Client

    from bertsearch.cli.api.mcp_tools import build_server

    async def main() -> list[str]:
        texts = []
        for scope in ("nobody", None):  # a scope that grants nothing; no scope known (HTTP without the endpoint)
            async with Client(build_server(lambda: pytest.fail("the searcher was reached"), local_scope=scope,
                                           version="0")) as client:
                for tool, arguments in [("search", {"query": "logs"}), ("ask", {"question": "logs?"}),
                                        ("get_document", {"document_id": 1})]:
                    texts.append(_error(await client.call_tool(tool, arguments)))
        return texts

    texts = anyio.run(main)
    assert all("this API key has the scope 'nobody'; this needs 'read'" in text for text in texts[:3]), texts
    assert all("no API key scope is known" in text for text in texts[3:]), texts


def test_documents_put_and_deleted_by_key_with_the_write_scope(tmp_path: Path, tiny_bert_path: str) -> None:
    from mcp import Client

    from bertsearch.cli.api.mcp_tools import build_server
    from bertsearch.cli.api.security import READ, WRITE
    from bertsearch.cli.api.writer import DocumentWriter
    from bertsearch.search.searcher import Searcher

    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    with Index.open(settings, create=True) as index:
        index.update(SAMPLE_DOCS)
    settings = Settings(index_dir=tmp_path / "idx")
    with Searcher.open(settings) as searcher:
        writer = DocumentWriter(settings, searcher)

        async def main(scope: str) -> None:
            async with Client(build_server(lambda: searcher, local_scope=scope, version="0",
                                           writer=lambda: writer)) as client:
                put = {"key": "notes/zebra", "text": "The zebrafish tank is cleaned on Fridays.", "title": "Zebra",
                       "metadata": {"team": "lab"}}
                if scope == READ:
                    assert "this needs 'write'" in _error(await client.call_tool("put_document", put))
                    assert "this needs 'write'" in _error(await client.call_tool("delete_document", {"key": "x"}))
                    return
                done = _data(await client.call_tool("put_document", put))
                assert [(r["key"], r["status"]) for r in done["results"]] == [("notes/zebra", "created")]
                hits = _data(await client.call_tool("search", {"query": "zebrafish", "mode": "lexical"}))["hits"]
                assert hits[0]["title"] == "Zebra" and hits[0]["document_id"] == done["results"][0]["id"]
                gone = _data(await client.call_tool("delete_document", {"key": "notes/zebra"}))
                assert gone["results"][0]["status"] == "deleted"
                assert not _data(await client.call_tool("search", {"query": "zebrafish", "mode": "lexical"}))["hits"]
                assert "metadata" in _error(await client.call_tool("put_document", {**put, "metadata": {"a": {}}}))

        try:
            anyio.run(main, READ)
            anyio.run(main, WRITE)
        finally:
            writer.close()
