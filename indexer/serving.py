"""The snapshot an open index serves, and its refresh to the newest committed generation.

A reader holds one :class:`~bertsearch.indexer.snapshot.Snapshot`; :meth:`Serving.refresh`
builds the next one completely (from what changed where it can) and swaps it in one assignment,
so a request that took the snapshot once reads one generation throughout.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bertsearch.indexer import store
from bertsearch.indexer.common.errors import IndexLocked, StorageError
from bertsearch.indexer.encoder_slot import EncoderSlot
from bertsearch.indexer.snapshot import BuildParams, Snapshot, advance_snapshot, load_snapshot, read_params
from bertsearch.indexer.upkeep import save_file

__all__ = ["Serving"]

log = logging.getLogger(__name__)


class Serving:
    """The generation an open index serves; ``encoders``: its encoder, dropped when a refresh
    serves a build of another model."""

    def __init__(self, engine: Any, sessions: Any, index_dir: Path, url: str, encoders: EncoderSlot) -> None:
        self._engine = engine
        self._sessions = sessions
        self._index_dir = index_dir
        self._url = url
        self._encoders = encoders
        self._opening: BuildParams | None = None  # while opening, before the first snapshot
        self._snapshot: Snapshot | None = None
        self._last_repair: str | None = None

    @property
    def snapshot(self) -> Snapshot:
        """The generation being served."""
        snapshot = self._snapshot
        assert snapshot is not None, "index is closed"
        return snapshot

    @property
    def current(self) -> Snapshot | None:
        """The generation being served, or ``None`` before the first one (and once closed)."""
        return self._snapshot

    @property
    def params(self) -> BuildParams:
        """The build parameters of the snapshot being served (while opening: those read)."""
        if self._snapshot is not None:
            return self._snapshot.params
        assert self._opening is not None, "index is closed"
        return self._opening

    def opening(self, params: BuildParams) -> None:
        """The build parameters read while opening, until the first snapshot is served."""
        self._opening = params

    @property
    def generation(self) -> int:
        """The SQL generation the snapshot being served reflects (0 before the first one)."""
        return self._snapshot.generation if self._snapshot is not None else 0

    @property
    def last_repair(self) -> str | None:
        """Why a derived index (FAISS, lexical) was last rebuilt from SQL on open or refresh, if it was."""
        return self._last_repair

    def serve(self, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` from now on."""
        if snapshot.repaired:
            self._last_repair = snapshot.repaired
        self._snapshot = snapshot  # the one assignment that moves readers to the next generation

    def load(self, params: BuildParams, *, writing: bool, expected: bool = False) -> Snapshot:
        """The newest generation, complete; repairs are written back when no other writer runs
        (``writing``: this process holds the writer lock; ``expected``: after a rebuild, which
        leaves them stale, so a repair is logged at info level only)."""
        index_dir = self._index_dir
        if writing:
            return load_snapshot(self._engine, self._sessions, index_dir, self._url, params, may_write=True,
                                 expected=expected)
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            with store.writer_lock(index_dir, timeout=0):
                snapshot = load_snapshot(self._engine, self._sessions, index_dir, self._url, params,
                                         may_write=True)
                save_file(snapshot, index_dir, lazy=True)
                return snapshot
        except (IndexLocked, StorageError, OSError) as exc:  # another writer, or a folder it cannot write
            log.debug("not writing repairs of %s; they stay in memory: %s", index_dir, exc)
        return load_snapshot(self._engine, self._sessions, index_dir, self._url, params, may_write=False)

    def refresh(self, *, writing: bool) -> bool:
        """Serve the newest committed generation, built completely before it replaces the current
        one (``writing``: this process holds the writer lock).

        Returns:
            Whether a newer generation was loaded.
        """
        params = read_params(self._sessions)  # the poll: one row, by its primary key
        current = self._snapshot
        if params is None or (current is not None and params.generation == current.generation):
            return False
        old = current.params if current is not None else None
        snapshot = None
        if current is not None and not writing:
            # What changed since, applied beside the shared base: costs the change, not the index.
            snapshot = advance_snapshot(self._engine, self._sessions, self._index_dir, self._url, current, params)
        if snapshot is None:
            snapshot = self.load(params, writing=writing)
        with self._encoders.lock:
            if old is not None and old.model != params.model:
                # Rebuilt with another model by `index --rebuild`: queries need that model now.
                self._encoders.forget()
            self.serve(snapshot)
        return True

    def close(self) -> None:
        """Drop the in-memory index."""
        self._snapshot = None
