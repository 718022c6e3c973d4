"""The search page (``GET /``, assets under ``/ui``) and the API docs (``/docs``, ``/redoc``),
all served from files inside packages: nothing is loaded from a CDN, so they work offline.

The page speaks English or Simplified Chinese (``web/strings.json``, one table of both): ``?lang=``
first, then the browser's ``Accept-Language`` by quality. Every ``zh`` tag takes the Chinese strings,
Traditional ones (``zh-TW``, ``zh-HK``, ``zh-Hant``) too: Simplified reads closer to them than English.
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent.parent / "web"
# The page loads only its own script and style, and talks only to this server.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

DEFAULT_LANGUAGE = "en"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

router = APIRouter(include_in_schema=False)


@cache
def strings() -> dict[str, dict[str, str]]:
    """The page's strings: language (``en``, ``zh``) -> key -> text."""
    return json.loads((WEB / "strings.json").read_text(encoding="utf-8"))


def _supported(tag: str) -> str | None:
    primary = tag.strip().lower().split("-")[0]
    return primary if primary in strings() else None


def page_language(override: str | None, accept_language: str | None) -> str:
    """The page's language: ``override`` (``?lang=``) when supported, else the first supported
    tag of ``accept_language`` by quality (ties in the header's order; ``q=0`` refuses), else English."""
    if override and (chosen := _supported(override)):
        return chosen
    ranked = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().lower().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag.strip() and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            break
        if chosen := _supported(tag):
            return chosen
    return DEFAULT_LANGUAGE


@cache
def _template() -> str:
    return (WEB / "index.html").read_text(encoding="utf-8")


def render_page(language: str, home: str = "/") -> str:
    """index.html with ``language``'s strings, which also go to the script as a JSON data block."""
    table = strings()[language]
    # JSON inside <script>: no "<" so that no "</script>" can end it early.
    values = {**{k: html.escape(v) for k, v in table.items()}, "home": html.escape(home),
              "strings": json.dumps(table, ensure_ascii=False).replace("<", "\\u003c")}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _template())


@router.get("/")
def page(lang: str | None = None,
         accept_language: Annotated[str | None, Header()] = None) -> HTMLResponse:
    """The search page."""
    language = page_language(lang, accept_language)
    home = f"/?lang={language}" if lang and _supported(lang) else "/"
    return HTMLResponse(render_page(language, home), headers={
        "Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff",
        "Content-Language": strings()[language]["html_lang"], "Vary": "Accept-Language"})


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
