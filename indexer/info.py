"""What an index holds and how it was built: the report of ``bertsearch info`` (:meth:`Index.info
<bertsearch.indexer.index.Index.info>`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bertsearch.indexer import store
from bertsearch.indexer.common.precision import cpu_has_native_bf16
from bertsearch.indexer.models import ChunkRow, Document
from bertsearch.indexer.snapshot import Snapshot
from bertsearch.indexer.faiss_kinds import HNSW_M

__all__ = ["INDEX_TYPES", "describe"]

INDEX_TYPES = {
    "flat": "faiss IndexIDMap2(IndexFlatIP): exact inner product of L2-normalised vectors (cosine)",
    "hnsw": f"faiss IndexIDMap2(IndexHNSWFlat, M={HNSW_M}): approximate, removed chunks filtered out",
    "hnsw-sq8": f"faiss IndexIDMap2(IndexHNSWSQ 8-bit, M={HNSW_M}): approximate, removed chunks filtered out",
}


def describe(snapshot: Snapshot, sessions: Any, index_dir: Path, url: str, encoder_precision: str) -> dict[str, Any]:
    """The report of the index in ``index_dir`` serving ``snapshot`` (``encoder_precision``: how
    this process encodes queries for it)."""
    p = snapshot.params
    with sessions() as s:
        documents = s.scalar(select(func.count()).select_from(Document)) or 0
        chunks = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
    return {
        "index_dir": str(index_dir),
        "db_url": store.mask_url(url),
        "root": p.root,
        "documents": int(documents),
        "chunks": int(chunks),
        "faiss_vectors": snapshot.vectors.count,
        "lexical_chunks": snapshot.lexical.count,
        "generation": snapshot.generation,
        "model_id": p.model_id,
        "model_path": p.model_path,
        "dimension": p.dimension,
        "pooling": p.pooling,
        "query_prefix": p.prefixes[0],
        "passage_prefix": p.prefixes[1],
        "chunk_tokens": p.chunk_tokens,
        "chunk_overlap": p.chunk_overlap,
        "chunk_header": p.header,
        "schema_version": p.schema_version,
        "lexical_cut": p.cut,
        "index_type": snapshot.vectors.kind,
        "index_type_setting": p.index_type or "auto",
        "index_description": INDEX_TYPES.get(snapshot.vectors.kind, snapshot.vectors.kind),
        "tombstones": snapshot.vectors.tombstones,
        # The index's vectors (int8, or bf16/fp32: the same vectors), and how this machine
        # encodes queries for them: bf16 where the CPU has native bf16 (AVX512-BF16, AMX).
        "precision": p.precision or "fp32",
        "encoder_precision": encoder_precision,
        "cpu_native_bf16": cpu_has_native_bf16(),
        "size_bytes": _folder_size(index_dir),
        "created_at": p.created_at.isoformat() if p.created_at else None,
        "updated_at": p.updated_at.isoformat() if p.updated_at else None,
    }


def _folder_size(folder: Path) -> int:
    total = 0
    if folder.is_dir():
        for path in folder.rglob("*"):
            try:
                if path.is_file():
                    total += path.stat().st_size
            except OSError:
                pass
    return total
