"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bertsearch.cli.api.security import ADMIN, KeyRing, grants
from bertsearch.search.searcher import Searcher

# How often a request checks for a generation committed by `bertsearch index` (seconds).
REFRESH_INTERVAL = 1.0

_bearer = HTTPBearer(auto_error=False, description="An API key of this server: `Authorization: Bearer <key>`.")


async def get_searcher(request: Request) -> Searcher:
    """The app's searcher; at most once a second, a background check for a newer generation of the index."""
    searcher: Searcher = request.app.state.searcher
    # Async: no thread hop for a timestamp check. The reload runs in a background thread: no
    # request waits for it, and each runs on one whole generation.
    searcher.refresh(min_interval=request.app.state.refresh_interval, background=True)
    return searcher


def _scope_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    keys: KeyRing = request.app.state.keys
    if not keys.enabled:
        return ADMIN  # no keys configured: a loopback server, or one started with --insecure-no-auth
    scope = keys.scope_of(credentials.credentials) if credentials is not None else None
    if scope is None:
        detail = "an API key is required: `Authorization: Bearer <key>`" if credentials is None \
            else "the API key is not valid"
        raise HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})
    return scope


def require(needed: str):
    """A dependency that lets a request through when its key has the ``needed`` scope (401, 403)."""

    async def check(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
        scope = _scope_of(request, credentials)
        if not grants(scope, needed):
            raise HTTPException(status_code=403, detail=f"this API key has the scope {scope!r}; "
                                                        f"this needs {needed!r}")
        return scope

    return check


SearcherDep = Annotated[Searcher, Depends(get_searcher)]
