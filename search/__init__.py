"""Search and answers over a bertsearch index: embedded (:class:`Searcher`) or over HTTP (:class:`Client`).

Names are imported on first use, so ``import bertsearch.search`` stays cheap (no torch, no httpx).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["Answer", "AskResult", "Client", "ClientError", "Embeddings", "Hit", "SearchResult", "Searcher"]

_WHERE = {
    "Answer": "types", "AskResult": "types", "Embeddings": "types", "Hit": "types", "SearchResult": "types",
    "Searcher": "searcher", "Client": "client", "ClientError": "client",
}

if TYPE_CHECKING:  # pragma: no cover
    from bertsearch.search.client import Client, ClientError
    from bertsearch.search.searcher import Searcher
    from bertsearch.search.types import Answer, AskResult, Embeddings, Hit, SearchResult


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"bertsearch.search.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
