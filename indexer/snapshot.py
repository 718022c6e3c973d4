"""The read side's unit: one immutable :class:`Snapshot` of one generation.

A snapshot holds everything a query reads: the build parameters, the FAISS index and the
lexical index, all of the same SQL generation. :func:`load_snapshot` builds the next one
completely (loading the derived files, or rebuilding them from SQL when they are missing,
corrupt or stale) before the caller swaps it in with one assignment, so a request that took a
snapshot runs on one whole generation, and a model change is never half applied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bertsearch.indexer import store
from bertsearch.indexer.chunk_headers import LEGACY_HEADER
from bertsearch.indexer.common.errors import IndexCorrupt, StorageError
from bertsearch.indexer.lexical import LexicalFileError, LexicalIndex
from bertsearch.indexer.models import ChunkRemoval, ChunkRow, IndexState
from bertsearch.indexer.faiss_kinds import choose_kind
from bertsearch.indexer.terms import LEGACY_CUT
from bertsearch.indexer.vector_file import FILE_NAME, VectorFileError
from bertsearch.indexer.vectors import VectorIndex, vectors_from_blobs

__all__ = ["BuildParams", "Snapshot", "advance_snapshot", "chunk_texts", "load_snapshot", "read_params", "sql_state"]

log = logging.getLogger(__name__)

_STREAM_ROWS = 4096


@dataclass(frozen=True)
class BuildParams:
    """What an index was built with (the ``index_state`` row, read once)."""

    generation: int
    model_id: str
    model_path: str
    dimension: int
    pooling: str
    chunk_tokens: int
    chunk_overlap: int
    schema_version: int
    root: str | None
    index_id: str | None
    precision: str | None
    removals_from: int | None
    index_type: str | None
    lexical_cut: str | None
    query_prefix: str | None
    passage_prefix: str | None
    chunk_header: str | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row: IndexState) -> BuildParams:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})

    @property
    def cut(self) -> str:
        """How the lexical index cuts text (``words`` for an index that stores none)."""
        return self.lexical_cut or LEGACY_CUT

    @property
    def header(self) -> str:
        """What is encoded before each chunk (``none`` for an index that stores none)."""
        return self.chunk_header or LEGACY_HEADER

    @property
    def prefixes(self) -> tuple[str, str]:
        """What the encoder puts before a query and before a chunk (none for an index that stores none)."""
        return self.query_prefix or "", self.passage_prefix or ""

    @property
    def model(self) -> tuple[str, int, str, tuple[str, str]]:
        """What queries must be encoded with: model id, dimension, pooling, prefixes."""
        return self.model_id, self.dimension, self.pooling, self.prefixes


@dataclass(frozen=True)
class Snapshot:
    """Everything one generation's queries read. Never changed once built (see the writer's note
    in :meth:`Index.commit <bertsearch.indexer.index.Index.commit>`)."""

    params: BuildParams
    vectors: VectorIndex
    lexical: LexicalIndex
    repaired: str | None = None
    """Why a derived index was rebuilt from SQL for this snapshot, if one was."""

    @property
    def generation(self) -> int:
        return self.vectors.generation

    def advanced(self, params: BuildParams, lexical: LexicalIndex) -> Snapshot:
        """The writer's next snapshot after a commit it applied itself."""
        return replace(self, params=params, lexical=lexical, repaired=None)


def read_params(sessions: Any) -> BuildParams | None:
    """The build parameters, or ``None`` before the index is created."""
    with sessions() as s:
        row = s.get(IndexState, 1)
        return BuildParams.from_row(row) if row is not None else None


def sql_state(sessions: Any) -> tuple[int, int]:
    """The committed generation and chunk count."""
    with sessions() as s:
        generation = s.scalar(select(IndexState.generation).where(IndexState.id == 1)) or 0
        count = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
    return int(generation), int(count)


# A reader applies at most this many changed chunks to the snapshot it serves (a delta beside a
# shared base); past it, the next generation is loaded whole (from the FAISS file when that is
# newer, itself brought forward the same way), which folds the delta into the base.
MAX_DELTA = 50_000


def load_snapshot(engine: Any, sessions: Any, index_dir: Path, url: str, params: BuildParams,
                  *, may_write: bool, expected: bool = False) -> Snapshot:
    """The snapshot of the newest committed generation.

    Derived files that are missing, corrupt or stale are rebuilt from SQL (no re-encoding) and
    written back when ``may_write`` (the caller may write the folder: no other writer runs).
    A FAISS file a few generations behind is brought forward with the chunks added and removed
    since (SQL's removal log), not rebuilt.
    A repair is logged as a warning, or only at info level when ``expected`` (after a rebuild).
    """
    generation, count = sql_state(sessions)
    level = logging.INFO if expected else logging.WARNING
    reasons = []
    stamp = params.index_id or ""
    vectors, why = _load_vectors(engine, sessions, index_dir, url, params, generation, count, stamp, level)
    if why:
        reasons.append(f"FAISS file {why}")
    lexical, why = _load_lexical(engine, index_dir, url, generation, count, stamp, params.cut, may_write, level)
    if why:
        reasons.append(f"lexical index {why}")
    return Snapshot(params, vectors, lexical, "; ".join(reasons) or None)


def advance_snapshot(engine: Any, sessions: Any, index_dir: Path, url: str, current: Snapshot,
                     params: BuildParams) -> Snapshot | None:
    """The snapshot of ``params.generation`` made from ``current`` and what changed since: the
    chunks added (ids above the highest ``current`` has seen) and removed (the removal log). The
    new snapshot shares ``current``'s FAISS base; ``current`` is left as it is.

    Returns ``None`` when it cannot be done that way (another database or model, a removal log
    that does not reach back to ``current``, a delta past :data:`MAX_DELTA`, a lexical index on
    disk that is not at the new generation): the caller loads the generation whole.
    """
    old = current.vectors
    if (params.index_id or "") != old.index_id or params.model != current.params.model:
        return None
    if params.removals_from is None or params.removals_from > old.generation or params.generation <= old.generation:
        return None
    lexical = _lexical_at(index_dir, params.generation, params.index_id or "", params.cut)
    if lexical is None:
        return None
    delta = _delta_since(engine, sessions, url, params, old.generation, old.high_id,
                         MAX_DELTA - old.delta_count)
    if delta is None:
        return None
    added_ids, added_vectors, removed = delta
    vectors = old.advanced(params.generation, added_ids, added_vectors, removed)
    return Snapshot(params, vectors, lexical)


def _delta_since(engine: Any, sessions: Any, url: str, params: BuildParams, generation: int, high_id: int,
                 limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The chunks added (ids above ``high_id``, with their vectors) and removed (ids) after
    ``generation``, or ``None`` when there are more than ``limit``.

    The removals are bounded by ``params.generation``; the additions are not (a chunk row holds
    no generation), so a commit landing between the reads may add its chunks a refresh before its
    removals. Every hit is read back from SQL, and a search that meets a removed chunk catches up
    (:func:`bertsearch.search.retrieval.retrieve_hits`); the next refresh applies the removals.
    """
    try:
        with sessions() as s:
            removed = np.fromiter(
                s.scalars(select(ChunkRemoval.chunk_id).where(ChunkRemoval.generation > generation,
                                                              ChunkRemoval.generation <= params.generation)),
                dtype=np.int64)
            n_added = s.scalar(select(func.count()).select_from(ChunkRow).where(ChunkRow.id > high_id)) or 0
            if removed.size + n_added > limit:
                return None
            rows = s.execute(select(ChunkRow.id, ChunkRow.vector).where(ChunkRow.id > high_id)
                             .order_by(ChunkRow.id)).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the chunks from {store.mask_url(url)}: "
                           f"{store.describe_db_error(exc, url)}") from exc
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    try:
        vectors = vectors_from_blobs([r[1] for r in rows], params.dimension)
    except ValueError as exc:
        raise IndexCorrupt(f"the vectors stored in {store.mask_url(url)} do not have dimension "
                           f"{params.dimension}; run `bertsearch index PATH --rebuild`") from exc
    return ids, vectors, removed


def _lexical_at(index_dir: Path, generation: int, index_id: str, cut: str) -> LexicalIndex | None:
    """The lexical index on disk if it holds ``generation`` of this database, cut by ``cut``; the
    writer updates it just after its SQL commit, so it is awaited a moment."""
    deadline = time.monotonic() + _LEXICAL_WAIT
    while True:
        try:
            lexical = LexicalIndex.load(index_dir)
            if lexical.index_id == index_id and lexical.generation == generation and lexical.cut == cut:
                return lexical
            if lexical.index_id != index_id or lexical.generation >= generation:
                return None
        except LexicalFileError:
            return None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


_LEXICAL_WAIT = 2.0


def _load_vectors(engine: Any, sessions: Any, index_dir: Path, url: str, params: BuildParams, generation: int,
                  count: int, index_id: str, level: int) -> tuple[VectorIndex, str | None]:
    dim = params.dimension
    try:
        vectors = VectorIndex.load(index_dir / FILE_NAME, dim)
        saved = vectors.generation
        reason = _mismatch(vectors, index_id, generation, count, "vectors")
        if reason is not None and _can_catch_up(vectors, index_id, params, generation):
            # A file a few generations behind: apply what changed since, in place (no copy).
            delta = _delta_since(engine, sessions, url, params, vectors.generation, vectors.high_id, MAX_DELTA)
            if delta is not None:
                added_ids, added_vectors, removed = delta
                vectors.remove(removed.tolist())
                vectors.add(added_ids, added_vectors)
                vectors.generation = generation
                reason = _mismatch(vectors, index_id, generation, count, "vectors")
                if reason is None:
                    log.info("FAISS file in %s brought from generation %d to %d (%d chunks added, %d removed)",
                             index_dir, saved, generation, added_ids.size, removed.size)
                    return vectors, None
        if reason is None:
            return vectors, None
    except VectorFileError as exc:
        reason = str(exc)
    # Stamped with the generation read *before* streaming: if a writer commits meanwhile,
    # the stamp is older than the content and the next refresh simply rebuilds again.
    vectors = build_vectors(engine, url, params, generation, count, index_id)
    if count or reason != "missing":
        log.log(level, "FAISS file in %s was %s; rebuilt it from the database (%d vectors)",
                index_dir, reason, vectors.count)
        return vectors, reason
    return vectors, None


def build_vectors(engine: Any, url: str, params: BuildParams, generation: int, count: int,
                  index_id: str) -> VectorIndex:
    """The FAISS index of every chunk, streamed from SQL, of the kind the setting and size call for."""
    dim = params.dimension

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for ids, blobs in _stream(engine, url, ChunkRow.vector):
            try:
                yield ids, vectors_from_blobs(blobs, dim)
            except ValueError as exc:  # a blob that is not `dimension` float32 values
                raise IndexCorrupt(f"the vectors stored in {store.mask_url(url)} do not have dimension {dim}; "
                                   "run `bertsearch index PATH --rebuild`") from exc

    return VectorIndex.from_batches(dim, generation, batches(), kind=choose_kind(params.index_type, count),
                                    index_id=index_id)


def _can_catch_up(vectors: VectorIndex, index_id: str, params: BuildParams, generation: int) -> bool:
    return (vectors.index_id == index_id and params.removals_from is not None
            and params.removals_from <= vectors.generation < generation)


def _load_lexical(engine: Any, index_dir: Path, url: str, generation: int, count: int, index_id: str,
                  cut: str, may_write: bool, level: int) -> tuple[LexicalIndex, str | None]:
    try:
        lexical = LexicalIndex.load(index_dir)
        reason = _mismatch(lexical, index_id, generation, count, "chunks")
        if reason is None and lexical.cut != cut:
            reason = f"cut {lexical.cut!r}, not {cut!r}"
        if reason is None:
            return lexical, None
    except LexicalFileError as exc:
        reason = str(exc)
    lexical = None
    if may_write:
        try:
            lexical = LexicalIndex.rebuild_on_disk(index_dir, generation, chunk_texts(engine, url), index_id, cut)
        except StorageError as exc:
            log.warning("%s; serving the lexical index from memory", exc)
    if lexical is None:
        lexical = LexicalIndex.build(generation, chunk_texts(engine, url), index_id=index_id, cut=cut)
    if count or reason != "missing":
        log.log(level, "lexical index in %s was %s; rebuilt it from the database (%d chunks)",
                index_dir, reason, lexical.count)
        return lexical, reason
    return lexical, None


def _mismatch(found: VectorIndex | LexicalIndex, index_id: str, generation: int, count: int,
              unit: str) -> str | None:
    """Why a derived index read from disk cannot serve this database's generation, or ``None``."""
    if found.index_id != index_id:
        return "made from another database (its index id differs)"
    if found.generation != generation or found.count != count:
        return (f"stale (generation {found.generation} with {found.count} {unit}; "
                f"the database is at generation {generation} with {count} chunks)")
    return None


def chunk_texts(engine: Any, url: str) -> Iterator[tuple[int, str]]:
    """Every chunk's ``(id, text)``, by id, streamed from SQL (what the lexical index is built from)."""
    for ids, texts in _stream(engine, url, ChunkRow.text):
        yield from zip(ids.tolist(), texts)


def _stream(engine: Any, url: str, column: Any):
    """``(ids, values)`` batches of every chunk, by id, streamed from SQL."""
    stmt = select(ChunkRow.id, column).order_by(ChunkRow.id)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=_STREAM_ROWS).execute(stmt)
            for part in result.partitions():
                yield np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part)), [r[1] for r in part]
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the chunks from {store.mask_url(url)}: "
                           f"{store.describe_db_error(exc, url)}") from exc

