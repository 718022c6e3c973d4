"""The HTTP API of bertsearch (FastAPI): ``create_app(settings)`` builds it, ``bertsearch serve`` runs it."""

from __future__ import annotations

from bertsearch.cli.api.app import create_app

__all__ = ["create_app"]
