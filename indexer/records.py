"""What the index hands out: a chunk with its document's path, and a document."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

__all__ = ["ChunkRecord", "DocumentRecord"]


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk with the path and title of its document; ``text == document.text[start:end]``."""

    chunk_id: int
    document_id: int
    path: str
    title: str
    text: str
    start: int
    end: int
    ordinal: int


@dataclass(frozen=True)
class DocumentRecord:
    """An indexed document. ``source`` ``folder``: ``path`` is relative to the indexed folder, with
    ``/`` separators; ``api``: ``path`` is the key it was put under, and ``metadata`` the caller's."""

    id: int
    path: str
    title: str
    text: str
    content_hash: str
    size: int
    mtime: float
    n_chunks: int
    indexed_at: datetime
    source: str = "folder"
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Stored in UTC; SQLite hands datetimes back without their zone. An ISO 8601 date-time
        # needs one, so say it.
        if self.indexed_at.tzinfo is None:
            object.__setattr__(self, "indexed_at", self.indexed_at.replace(tzinfo=timezone.utc))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``indexed_at`` as an ISO 8601 string)."""
        out = asdict(self)
        out["indexed_at"] = self.indexed_at.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentRecord:
        """The document described by ``data`` (as the HTTP API sends it)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if isinstance(values.get("indexed_at"), str):
            values["indexed_at"] = datetime.fromisoformat(values["indexed_at"].replace("Z", "+00:00"))
        return cls(**values)
