"""The search page (``GET /``, assets under ``/ui``) and the API docs (``/docs``, ``/redoc``),
all served from files inside packages: nothing is loaded from a CDN, so they work offline."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent.parent / "web"
# The page loads only its own script and style, and talks only to this server.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    """The search page."""
    return FileResponse(WEB / "index.html", headers={"Content-Security-Policy": PAGE_POLICY,
                                                     "X-Content-Type-Options": "nosniff"})


def _docs_assets() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def mount(app: FastAPI) -> None:
    """Add the page, its assets and the offline API docs to ``app`` (created with ``docs_url=None``)."""
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=WEB), name="ui")
    app.mount("/_docs", StaticFiles(directory=_docs_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            swagger_js_url=f"{root}/_docs/swagger-ui-bundle.js", swagger_css_url=f"{root}/_docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/_docs/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
                              redoc_js_url=f"{root}/_docs/redoc.standalone.js",
                              redoc_favicon_url=f"{root}/_docs/favicon.png", with_google_fonts=False)
