"""The one way the index changes: a :class:`Batch` written to SQL in one transaction that bumps
the generation (:func:`write_batch`). :meth:`Index.commit <bertsearch.indexer.index.Index.commit>`
runs it and then applies the result to the derived indexes (FAISS, lexical).

``bertsearch index`` (:mod:`bertsearch.indexer.update`), ``--rebuild`` and the benchmarks that
grow synthetic indexes all commit through here, so "rows, then generation, then derived indexes"
is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select, update

from bertsearch.indexer.models import FOLDER, ChunkRemoval, ChunkRow, Document, IndexState, utcnow

__all__ = ["Batch", "Committed", "DocumentWrite", "bump_generation", "write_batch"]


@dataclass
class DocumentWrite:
    """A document to insert (``doc_id`` None) or to replace with new text and chunks.

    ``chunks`` are :class:`~bertsearch.indexer.chunking.Chunk` objects (text, start, end, n_tokens).
    ``source`` and ``metadata``: see :class:`~bertsearch.indexer.models.Document`.
    """

    doc_id: int | None
    path: str
    title: str
    text: str
    content_hash: str
    size: int
    mtime: float
    chunks: list[Any]
    source: str = FOLDER
    metadata: dict[str, Any] | None = None


@dataclass
class Batch:
    """One commit: documents removed with their chunks, and documents written.

    ``vectors`` holds one row per chunk of ``documents``, in order.
    """

    remove_documents: list[int] = field(default_factory=list)
    documents: list[DocumentWrite] = field(default_factory=list)
    vectors: np.ndarray | None = None


@dataclass(frozen=True)
class Committed:
    """What a committed batch changed: the derived indexes apply exactly this."""

    generation: int
    removed_chunk_ids: list[int]
    added_chunk_ids: np.ndarray
    added_texts: list[str]
    vectors: np.ndarray
    documents_added: int
    documents_replaced: int


def bump_generation(s: Any, root: str | None = None) -> int:
    """Advance the generation (and record ``root`` when given) in the open transaction ``s``."""
    values: dict[str, Any] = {"generation": IndexState.generation + 1, "updated_at": utcnow()}
    if root is not None:
        values["root"] = root
    s.execute(update(IndexState).where(IndexState.id == 1).values(**values))
    return int(s.scalar(select(IndexState.generation).where(IndexState.id == 1)))


def write_batch(s: Any, batch: Batch, dimension: int, root: Path | None) -> Committed:
    """Write ``batch`` in the open transaction ``s`` and bump the generation (the caller commits)."""
    texts = [c.text for d in batch.documents for c in d.chunks]
    vectors = batch.vectors if batch.vectors is not None else np.zeros((0, dimension), np.float32)
    if len(vectors) != len(texts):
        raise ValueError(f"{len(texts)} chunks but {len(vectors)} vectors")
    replaced = [d.doc_id for d in batch.documents if d.doc_id is not None]
    gone = list(batch.remove_documents)
    old_ids = _chunk_ids_of(s, replaced + gone)
    for part in _parts(replaced + gone):
        s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(part)))
    for part in _parts(gone):
        s.execute(delete(Document).where(Document.id.in_(part)))
    now = utcnow()
    if replaced:
        s.execute(update(Document), [{"id": d.doc_id, **_fields(d, now)} for d in batch.documents if d.doc_id])
    new_docs = [d for d in batch.documents if d.doc_id is None]
    if new_docs:
        new_ids = s.scalars(
            insert(Document).returning(Document.id, sort_by_parameter_order=True), [_fields(d, now) for d in new_docs]
        ).all()
        for d, doc_id in zip(new_docs, new_ids):
            d.doc_id = doc_id
    blobs = iter(np.ascontiguousarray(vectors, dtype="<f4"))
    rows = [
        dict(document_id=d.doc_id, ordinal=i, start=c.start, end=c.end, text=c.text, n_tokens=c.n_tokens,
             vector=next(blobs).tobytes())
        for d in batch.documents for i, c in enumerate(d.chunks)
    ]
    chunk_ids: list[int] = []
    if rows:
        chunk_ids = list(s.scalars(insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), rows).all())
    generation = bump_generation(s, str(root) if root is not None else None)
    if old_ids:  # what readers at earlier generations remove (they add the ids above their highest)
        for part in _parts(old_ids, 5000):
            s.execute(insert(ChunkRemoval), [{"chunk_id": i, "generation": generation} for i in part])
    return Committed(
        generation=generation, removed_chunk_ids=old_ids, added_chunk_ids=np.asarray(chunk_ids, dtype=np.int64),
        added_texts=texts, vectors=np.asarray(vectors, dtype=np.float32), documents_added=len(new_docs),
        documents_replaced=len(replaced),
    )


def _fields(d: DocumentWrite, now: Any) -> dict[str, Any]:
    return dict(source=d.source, path=d.path, title=d.title, text=d.text, content_hash=d.content_hash, size=d.size,
                mtime=d.mtime, n_chunks=len(d.chunks), indexed_at=now, meta=d.metadata)


def _chunk_ids_of(s: Any, doc_ids: list[int]) -> list[int]:
    ids: list[int] = []
    for part in _parts(doc_ids):
        ids.extend(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(part))))
    return ids


def _parts(items: list[int], size: int = 500) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
