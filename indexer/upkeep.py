"""The derived indexes after a commit, in the writer's process: the FAISS index advanced in
place (a copy per commit would cost the whole index), the lexical index through one
:class:`LexicalWriter`, the FAISS file rewritten only once enough changed, and SQL's removal log
pruned behind it."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from bertsearch.indexer.commit import Committed
from bertsearch.indexer.lexical import LexicalIndex, LexicalWriter
from bertsearch.indexer.models import ChunkRemoval, IndexState
from bertsearch.indexer.snapshot import Snapshot, build_vectors, chunk_texts
from bertsearch.indexer.faiss_kinds import choose_kind
from bertsearch.indexer.vector_file import FILE_NAME
from bertsearch.indexer.vectors import VectorIndex

__all__ = ["REMOVALS_KEPT", "SAVE_AFTER", "Upkeep", "prune_horizon", "prune_removals", "save_file"]

log = logging.getLogger(__name__)

# The writer rewrites the FAISS file once this many vectors (or 1% of them) changed since it
# was written: until then readers bring the file forward from SQL, so a small run on a large
# index writes in proportion to its change.
SAVE_AFTER = 10_000

# Generations of chunk removals kept in SQL behind the FAISS file: a reader that far behind
# (or further) loads the file and brings it forward instead.
REMOVALS_KEPT = 1000


class Upkeep:
    """Applies commits to the derived indexes of one index folder (while the writer lock is held)."""

    def __init__(self, engine: Any, url: str, index_dir: Path) -> None:
        self._engine = engine
        self._url = url
        self.index_dir = index_dir
        self._lexical_writer: LexicalWriter | None = None

    def prepare(self, snapshot: Snapshot) -> None:
        """Open the lexical writer at ``snapshot``'s generation; before the commit, as it may
        rebuild the lexical index from SQL."""
        if self._lexical_writer is None:
            lexical = snapshot.lexical
            if (lexical.path is None or lexical.generation != snapshot.generation
                    or lexical.cut != snapshot.params.cut):
                lexical = LexicalIndex.rebuild_on_disk(
                    self.index_dir, snapshot.generation, chunk_texts(self._engine, self._url),
                    snapshot.params.index_id or "", snapshot.params.cut)
            self._lexical_writer = LexicalWriter(lexical)

    def apply(self, snapshot: Snapshot, done: Committed) -> LexicalIndex:
        """Apply the commit ``done`` to ``snapshot``'s FAISS index, in place, and to the lexical
        index on disk; returns the lexical index of the next snapshot."""
        assert self._lexical_writer is not None, "apply needs prepare"
        vectors = snapshot.vectors
        vectors.remove(done.removed_chunk_ids)
        vectors.add(done.added_chunk_ids, done.vectors)
        vectors.generation = done.generation
        return self._lexical_writer.apply(
            done.generation, done.removed_chunk_ids, zip(done.added_chunk_ids.tolist(), done.added_texts))

    def refit(self, snapshot: Snapshot) -> Snapshot | None:
        """``snapshot`` with its FAISS index rebuilt from SQL (no re-encoding) where its kind no
        longer fits the size or the setting, or an HNSW graph is full of removed vectors; else None."""
        wanted = choose_kind(snapshot.params.index_type, snapshot.vectors.count)
        why = snapshot.vectors.rebuild_reason(wanted)
        if why is None:
            return None
        log.info("rebuilding the FAISS index of %s from the database: %s", self.index_dir, why)
        fresh = build_vectors(self._engine, self._url, snapshot.params, snapshot.generation,
                              snapshot.vectors.count, snapshot.params.index_id or "")
        return replace(snapshot, vectors=fresh, repaired=None)

    def close(self) -> None:
        """Close the lexical writer (when the writer lock is released, or after a rebuild)."""
        if self._lexical_writer is not None:
            self._lexical_writer.close()
            self._lexical_writer = None


def save_file(snapshot: Snapshot, index_dir: Path, *, lazy: bool = False) -> None:
    """Write ``snapshot``'s FAISS index to the FAISS file, unless the file already holds it.

    ``lazy``: not while fewer than :data:`SAVE_AFTER` vectors (or 1%) changed since the file was
    written and SQL's removal log reaches back to it (readers bring it forward).
    """
    vectors = snapshot.vectors
    path = index_dir / FILE_NAME
    for leftover in index_dir.glob(f".{FILE_NAME}.*.tmp"):  # from a run killed while saving
        leftover.unlink(missing_ok=True)
    if vectors.saved_generation == vectors.generation:
        return
    removals_from = snapshot.params.removals_from
    if (lazy and vectors.saved_generation is not None and vectors.unsaved is not None
            and vectors.unsaved < max(SAVE_AFTER, vectors.count // 100)
            and removals_from is not None and removals_from <= vectors.saved_generation
            and path.is_file()):
        return
    vectors.save(path)


def prune_horizon(vectors: VectorIndex, removals_from: int | None) -> int | None:
    """The generation up to which the removal log can go: :data:`REMOVALS_KEPT` behind the saved
    FAISS file, where that is past where the log starts; else None."""
    if vectors.saved_generation is None:
        return None
    horizon = vectors.saved_generation - REMOVALS_KEPT
    return horizon if horizon > (removals_from or 0) else None


def prune_removals(s: Session, horizon: int) -> None:
    """Drop the removal log up to the generation ``horizon`` (in the writer's transaction ``s``)."""
    s.execute(delete(ChunkRemoval).where(ChunkRemoval.generation <= horizon))
    s.execute(update(IndexState).where(IndexState.id == 1).values(removals_from=horizon))
