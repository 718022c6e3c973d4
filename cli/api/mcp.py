"""``/mcp``: the MCP server (``mcp_tools.py``) over streamable HTTP, inside the API.

The same guard as every route stands in front of it (the ``Host`` check, the body limit); the
endpoint asks for an API key as the routes do (401 with ``{"detail"}``), and each tool checks the
key's scope. Stateless, with JSON answers: any worker of ``serve --workers N`` answers any
request, and no session outlives a request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bertsearch.cli.api.deps import fresh_searcher, key_scope
from bertsearch.cli.api.mcp_tools import KEY_SCOPE, build_server
from bertsearch.indexer.common.settings import Settings, split_list

MCP_PATH = "/mcp"


def mount(app: FastAPI) -> None:
    """Serve MCP at :data:`MCP_PATH` (the session manager comes with each run of the app, :func:`running`)."""
    app.router.routes.append(Route(MCP_PATH, endpoint=_Endpoint(), methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))


@asynccontextmanager
async def running(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """The MCP server of one run of the app, its requests handled until shutdown (the SDK's
    session manager runs once, so a new run builds a new one)."""
    server = build_server(lambda: fresh_searcher(app.state), local_scope=None, version=app.version,
                          writer=lambda: app.state.writer)
    server.streamable_http_app(
        streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
        transport_security=transport_security(settings), max_request_body_size=settings.max_body_bytes,
    )
    async with server.session_manager.run():
        app.state.mcp_sessions = server.session_manager
        try:
            yield
        finally:
            del app.state.mcp_sessions


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding check, told the same hosts as the guard (``--allowed-host``, any
    port) and the origins of those hosts and of ``--cors-origin``. Allowing any host (``*``)
    turns the guard's check off, and this one with it."""
    hosts = split_list(settings.allowed_hosts)
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = [f"[{h}]" if ":" in h else h for h in (h.strip().lower() for h in hosts)]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[form for name in names for form in (name, f"{name}:*")],
        allowed_origins=[*(f"{scheme}://{name}{port}" for name in names for scheme in ("http", "https")
                           for port in ("", ":*")), *split_list(settings.cors_origins)],
    )


class _Endpoint:
    """An ASGI endpoint (a class: Starlette would wrap a function as a request handler)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticates the request's key (401 as every route), leaves its scope for the tools
        and hands the request to the SDK."""
        app = scope["app"]
        scheme, credentials = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
        try:
            key = key_scope(app.state.keys, credentials if scheme.lower() == "bearer" and credentials else None)
        except HTTPException as exc:
            await JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)(
                scope, receive, send)
            return
        scope.setdefault("state", {})[KEY_SCOPE] = key
        await app.state.mcp_sessions.handle_request(scope, receive, send)
