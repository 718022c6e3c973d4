"""The guard in front of every route: a request id, the trusted-host check and the body limit.

A plain ASGI middleware (no ``BaseHTTPMiddleware``: it would run each request in a task of its
own and buffer streaming responses). Its refusals use the API's one error shape, ``{"detail"}``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "x-request-id"
# A refused body is still read and dropped, this much and this long at most, before the answer
# ("lingering close", as nginx does): a client that writes its whole body before it reads would
# otherwise meet a closed socket (a broken pipe, or a reset that discards the 413) and never see
# why. Reading costs no CPU to speak of; the bounds keep a client from holding the connection.
LINGER_BYTES = 64 << 20
LINGER_SECONDS = 10.0
# Document writes (`PUT /documents/by-key/{key}`, `POST /documents:batch`) have a limit of their own: files.
UPLOAD_PATH = "/documents"


class Guard:
    """Refuses a request whose ``Host`` is not allowed (400, against DNS rebinding) or whose body
    is over ``max_body_bytes`` (413), and gives every request an id (``X-Request-ID``).

    Args:
        app: The application behind the guard.
        allowed_hosts: Host names the server answers to (``*``: any).
        max_body_bytes: The largest request body accepted.
        max_upload_bytes: The largest body of a document write (``PUT``/``POST`` under
            :data:`UPLOAD_PATH`); default ``max_body_bytes``.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: list[str], max_body_bytes: int,
                 max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = {_bare_host(h) for h in allowed_hosts}
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _bare_host(headers.get("host", ""))
        if not self.any_host and host not in self.allowed_hosts:
            await _refuse(send_with_id, 400, f"the Host header {host!r} is not one this server answers to; "
                                             "start it with --allowed-host NAME to allow it")
            return
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            await _refuse(send_with_id, 400, "the Content-Length header is not a number")
            return
        upload = scope.get("method") in ("PUT", "POST") and scope.get("path", "").startswith(UPLOAD_PATH)
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        too_large = f"the request body is over {limit} bytes"
        if length is not None and int(length) > limit:
            # A client that waits for "100 Continue" has sent nothing yet: it reads the answer as it is.
            if headers.get("expect", "").lower() != "100-continue":
                await _linger(receive)
            await _refuse(send_with_id, 413, too_large)
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            body, more = await _read_body(receive, limit)
            if body is None:
                if more:  # the client is still sending (a body that ended is not waited for)
                    await _linger(receive)
                await _refuse(send_with_id, 413, too_large)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_with_id)


def _bare_host(host: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The whole body, or ``None`` as soon as it passes ``limit`` (chunked bodies have no length),
    and whether the client has more of it to send."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), False
        chunk = message.get("body", b"")
        more = bool(message.get("more_body", False))
        size += len(chunk)
        if size > limit:
            return None, more
        parts.append(chunk)
        if not more:
            return b"".join(parts), False


async def _linger(receive: Receive) -> None:
    """Read and drop the rest of a refused body: :data:`LINGER_BYTES` and :data:`LINGER_SECONDS` at most."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LINGER_SECONDS
    size = 0
    while size <= LINGER_BYTES:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        size += len(message.get("body", b""))


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then wait for the disconnect, as the server would say it

    return replay


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
