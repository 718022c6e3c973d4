"""The SQL schema: one declarative ``Base`` and the tables ``documents``, ``chunks``, ``index_state``.

SQL is the source of truth of an index: every chunk keeps its vector (float32 bytes), so the
FAISS file can always be rebuilt without re-encoding. Only portable types are used, so the same
models (and the same Alembic migrations) serve SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    JSON,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.naming import conv

SCHEMA_VERSION = 1
"""Bumped with every migration that changes what an index means (checked on open)."""

FOLDER = "folder"
"""``documents.source`` of a file of the indexed folder: ``path`` is its relative path."""
API = "api"
"""``documents.source`` of a document put by key (HTTP API, ``bertsearch put``): ``path`` is the caller's key."""

# Named constraints, so that Alembic's batch mode (SQLite) can alter them by name.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """The one declarative base of bertsearch."""

    metadata = MetaData(naming_convention=_NAMING)


class Document(Base):
    """One indexed document. ``source`` says whose it is: :data:`FOLDER` (a file of the indexed
    folder; ``path`` is relative to it, in POSIX form) or :data:`API` (put by key; ``path`` is the
    key). A folder run touches only its own; a delete by key only the others. ``meta`` (column
    ``metadata``) is the caller's JSON object of an API document."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("source", "path", name=conv("uq_documents_source_path")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), default=FOLDER, server_default=FOLDER)
    path: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the file's bytes
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    n_chunks: Mapped[int] = mapped_column(Integer, default=0)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    meta: Mapped[dict | None] = mapped_column("metadata", JSON, nullable=True)


class ChunkRow(Base):
    """One chunk of a document: its character span, its text and its vector.

    The primary key is also the chunk's FAISS id. ``sqlite_autoincrement`` makes SQLite never
    reuse an id (PostgreSQL sequences never do), so an old FAISS file can never point at a
    different chunk with the same id.
    """

    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    n_tokens: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, `dimension` values


class ChunkRemoval(Base):
    """A chunk removed at ``generation``: readers apply removals since the generation they hold.

    Kept back to ``index_state.removals_from``; older entries are dropped once the FAISS file
    holds a later generation (a reader further behind reloads from the file).
    """

    __tablename__ = "chunk_removals"

    chunk_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger, index=True)


class IndexState(Base):
    """The single row (``id == 1``) that says what the index was built with and how far it is.

    ``generation`` goes up with every commit that changes the chunks; the FAISS file is stamped
    with the generation it reflects.
    """

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    model_id: Mapped[str] = mapped_column(String(512))
    model_path: Mapped[str] = mapped_column(Text)
    dimension: Mapped[int] = mapped_column(Integer)
    pooling: Mapped[str] = mapped_column(String(32))
    chunk_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    schema_version: Mapped[int] = mapped_column(Integer)
    root: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A random identity of this database's index: the derived files carry it, so a FAISS or
    # lexical file made from another database is never served, whatever its generation.
    index_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # How the vectors were encoded: "int8", or "bf16"/"fp32" (the same vectors); NULL: float.
    precision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # ``chunk_removals`` holds every removal of the generations above this one.
    removals_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The FAISS index kind asked for: auto (by size), flat, hnsw, hnsw-sq8; NULL: auto.
    index_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # How the lexical index cuts text into terms (``indexer/terms.py``, ``CUTS``); NULL: "words",
    # the cut of the indexes built before it was stored.
    lexical_cut: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # What the encoder puts before each query and each chunk (E5: "query: ", "passage: "); NULL: none.
    query_prefix: Mapped[str | None] = mapped_column(Text, nullable=True)
    passage_prefix: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What is encoded before each chunk (``indexer/chunk_headers.py``, ``HEADERS``): "none" or
    # "title"; NULL: "none", what the indexes built before it was stored encoded.
    chunk_header: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
