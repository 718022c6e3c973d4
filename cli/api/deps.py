"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State

from bertsearch.cli.api.security import ADMIN, KeyRing, grants
from bertsearch.search.searcher import Searcher

# How often a request checks for a generation committed by `bertsearch index` (seconds).
REFRESH_INTERVAL = 1.0

_bearer = HTTPBearer(auto_error=False, description="An API key of this server: `Authorization: Bearer <key>`.")


async def get_searcher(request: Request) -> Searcher:
    """The app's searcher; at most once a second, a background check for a newer generation of the index."""
    # Async: no thread hop for a timestamp check.
    return fresh_searcher(request.app.state)


def fresh_searcher(state: State) -> Searcher:
    """The app's searcher, after the check for a newer generation that is due (at most one per
    ``state.refresh_interval``). The reload runs in a background thread: no request waits for it,
    and each runs on one whole generation."""
    searcher: Searcher = state.searcher
    searcher.refresh(min_interval=state.refresh_interval, background=True)
    return searcher


def key_scope(keys: KeyRing, presented: str | None) -> str:
    """The scope of the presented key (``admin`` when no keys are configured).

    Raises:
        HTTPException: 401: no key, or not a key of this server.
    """
    if not keys.enabled:
        return ADMIN  # no keys configured: a loopback server, or one started with --insecure-no-auth
    scope = keys.scope_of(presented) if presented is not None else None
    if scope is None:
        detail = "an API key is required: `Authorization: Bearer <key>`" if presented is None \
            else "the API key is not valid"
        raise HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})
    return scope


def refusal(scope: str, needed: str) -> str | None:
    """Why a key of ``scope`` may not do what needs ``needed``, or ``None`` when it may."""
    return None if grants(scope, needed) else f"this API key has the scope {scope!r}; this needs {needed!r}"


def require(needed: str):
    """A dependency that lets a request through when its key has the ``needed`` scope (401, 403)."""

    async def check(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
        scope = key_scope(request.app.state.keys, credentials.credentials if credentials is not None else None)
        refused = refusal(scope, needed)
        if refused:
            raise HTTPException(status_code=403, detail=refused)
        return scope

    return check


SearcherDep = Annotated[Searcher, Depends(get_searcher)]
