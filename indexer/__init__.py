"""Build and own a bertsearch index: documents -> chunks -> vectors in SQL and a FAISS file.

Heavy names (:class:`Index`, :class:`Encoder`) are imported on first use, so
``import bertsearch.indexer`` stays cheap (no torch, no FAISS).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bertsearch.indexer.common.errors import (
    BertsearchError,
    ConfigError,
    DocumentNotFound,
    IndexCorrupt,
    IndexLocked,
    IndexNotFound,
    InvalidGlob,
    InvalidQuery,
    ModelLoadError,
    ModelMismatch,
    StorageError,
    UnsupportedDocument,
)
from bertsearch.indexer.common.settings import Settings

__all__ = [
    "BertsearchError", "ChunkRecord", "ConfigError", "DocumentNotFound", "DocumentRecord", "Encoder",
    "Index", "IndexCorrupt", "IndexLocked", "IndexNotFound", "IndexSummary", "InvalidGlob", "InvalidQuery",
    "ModelLoadError", "ModelMismatch", "Settings", "StorageError", "UnsupportedDocument",
]

_WHERE = {
    "Index": "index", "ChunkRecord": "records", "DocumentRecord": "records",
    "IndexSummary": "update", "Encoder": "encoder",
}

if TYPE_CHECKING:  # pragma: no cover
    from bertsearch.indexer.encoder import Encoder
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.records import ChunkRecord, DocumentRecord
    from bertsearch.indexer.update import IndexSummary


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"bertsearch.indexer.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
