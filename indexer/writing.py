"""The write side of an open index: the writer lock, transactions, the one commit, and what a
run (:func:`bertsearch.indexer.update.update`) does besides: rebuild, record the run, save the
FAISS file. :class:`~bertsearch.indexer.index.Index` hands a run its :class:`Writer`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bertsearch.indexer import store
from bertsearch.indexer.commit import Batch, Committed, write_batch
from bertsearch.indexer.common.errors import StorageError
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.encoder_slot import EncoderSlot
from bertsearch.indexer.models import Document, IndexState, utcnow
from bertsearch.indexer.rebuild import Rebuild
from bertsearch.indexer.serving import Serving
from bertsearch.indexer.snapshot import BuildParams, read_params
from bertsearch.indexer.upkeep import Upkeep, prune_horizon, prune_removals, save_file

if TYPE_CHECKING:
    from bertsearch.indexer.encoder import Encoder

__all__ = ["Writer"]

log = logging.getLogger(__name__)


class Writer:
    """Writes one open index; ``serving`` is its served snapshot, which each commit advances."""

    def __init__(self, settings: Settings, index_dir: Path, engine: Any, sessions: Any, url: str,
                 serving: Serving, encoders: EncoderSlot) -> None:
        self.settings = settings
        self.index_dir = index_dir
        self._engine = engine
        self._sessions = sessions
        self._url = url
        self._serving = serving
        self._encoders = encoders
        self._upkeep = Upkeep(engine, url, index_dir)
        self._depth = 0  # writer_lock depth held by this process
        self._lock_guard: store.LockGuard | None = None
        # `--rebuild`: the new build's values, applied by the next update in one transaction
        # (readers serve the old generation until it commits; a failed rebuild changes nothing).
        self._rebuild: Rebuild | None = None

    # -- what a run reads ------------------------------------------------------------------------

    @property
    def writing(self) -> bool:
        """Whether this process holds the writer lock."""
        return self._depth > 0

    @property
    def params(self) -> BuildParams:
        """The build parameters of the snapshot being served (inside :meth:`rebuilding`: the new build's)."""
        if self._rebuild is not None and self._rebuild.params is not None:
            return self._rebuild.params
        return self._serving.params

    @property
    def encoder(self) -> Encoder:
        """The encoder for :attr:`params` (loaded on first use, checked against them).

        Raises:
            ModelMismatch: The model is not the one the index was built with.
        """
        return self._encoders.get(lambda: self.params)

    def refresh(self) -> bool:
        """Serve the newest committed generation (see :meth:`Serving.refresh`)."""
        return self._serving.refresh(writing=self.writing)

    def database_files(self) -> list[Path]:
        """The files of the SQLite database (see :func:`store.sqlite_files`); none on PostgreSQL."""
        return store.sqlite_files(self._engine)

    # -- the lock and transactions ---------------------------------------------------------------

    @contextmanager
    def writer_lock(self, timeout: float | None = None) -> Iterator[None]:
        """The writer lock of this index (see :func:`bertsearch.indexer.store.writer_lock`).

        While it is held, this process repairs the derived files on disk and commits.
        """
        wait = self.settings.lock_timeout if timeout is None else timeout
        with store.writer_lock(self.index_dir, timeout=wait, engine=self._engine) as guard:
            self._depth += 1
            self._lock_guard = guard
            try:
                yield
            finally:
                self._depth -= 1
                if not self._depth:
                    self._lock_guard = None
                    self._upkeep.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short-lived session inside one transaction, committed on success.

        Inside :meth:`rebuilding` it is the rebuild's one transaction.

        Raises:
            StorageError: The database refused the write (disk full, server gone, locked).
        """
        if self._rebuild is not None and self._rebuild.session is not None:
            yield self._rebuild.session
            return
        try:
            with self._sessions() as s, s.begin():
                yield s
                if self._lock_guard is not None:
                    self._lock_guard.verify(s)  # a writer that lost its lock writes nothing
        except SQLAlchemyError as exc:
            raise StorageError(_write_error(self._url, exc)) from exc

    # -- rebuilding ------------------------------------------------------------------------------

    def plan_rebuild(self, values: dict[str, Any]) -> None:
        """Opened with ``rebuild``: the next run replaces the index with a build of ``values``."""
        self._rebuild = Rebuild(values)

    @property
    def rebuild_pending(self) -> bool:
        """Whether this index was opened with ``rebuild`` and the rebuild has not run yet."""
        return self._rebuild is not None

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """Replace the whole index in one transaction: inside, every document is written anew
        (:meth:`commit` and :meth:`transaction` join this transaction) and :attr:`params` are the
        new ones. On a clean exit it commits and the derived indexes are rebuilt from SQL; on an
        error (or a kill) nothing of it was committed and the old index is served as before.
        Call it while holding :meth:`writer_lock`.
        """
        rebuild = self._rebuild
        assert self._depth and rebuild is not None, "rebuilding needs the writer lock and --rebuild"
        try:
            with rebuild.run(self._sessions, lambda: self._lock_guard):
                yield
        except SQLAlchemyError as exc:
            raise StorageError(_write_error(self._url, exc)) from exc
        self._rebuild = None
        self._upkeep.close()
        params = read_params(self._sessions)
        assert params is not None
        # FAISS and lexical rebuilt from SQL (no re-encoding); the old files are stale now.
        self._serving.serve(self._serving.load(params, writing=True, expected=True))
        log.info("rebuilt %s: generation %d", self.index_dir, params.generation)

    # -- writing ---------------------------------------------------------------------------------

    def commit(self, batch: Batch, root: Path | None = None) -> Committed:
        """Write ``batch`` to SQL in one transaction that bumps the generation, then apply it to
        the derived indexes. Call it while holding :meth:`writer_lock`.

        In the writer's own process the FAISS index is advanced in place (a copy per commit would
        cost the whole index); readers in other processes load their own snapshots.

        Raises:
            StorageError: The database or the lexical index refused the write.
        """
        assert self._depth, "commit needs the writer lock"
        if self._rebuild is not None and self._rebuild.session is not None:
            # The derived indexes follow when the rebuild commits.
            return write_batch(self._rebuild.session, batch, self.params.dimension, root)
        snapshot = self._serving.snapshot
        self._upkeep.prepare(snapshot)  # before the commit: it may rebuild the lexical index from SQL
        with self.transaction() as s:
            done = write_batch(s, batch, self.params.dimension, root)
        lexical = self._upkeep.apply(snapshot, done)
        self._serving.serve(snapshot.advanced(read_params(self._sessions) or snapshot.params, lexical))
        return done

    def save_vectors(self, *, lazy: bool = False) -> None:
        """Write the served FAISS index to the FAISS file, unless the file already holds it, and
        drop the removal log older than :data:`~bertsearch.indexer.upkeep.REMOVALS_KEPT`
        generations before the file. ``lazy``: not while fewer than
        :data:`~bertsearch.indexer.upkeep.SAVE_AFTER` vectors changed since the file was written
        and SQL's removal log reaches back to it (readers bring it forward).

        Call it while holding the writer lock.
        """
        rebuilding = self._rebuild is not None and self._rebuild.session is not None
        snapshot = self._serving.snapshot
        refitted = None if rebuilding else self._upkeep.refit(snapshot)
        if refitted is not None:
            # Another kind for this size (or a setting changed), or an HNSW graph full of removed
            # vectors: rebuilt from SQL (no re-encoding) while the old one still serves.
            snapshot = refitted
            self._serving.serve(snapshot)
        save_file(snapshot, self.index_dir, lazy=lazy)
        horizon = None if rebuilding else prune_horizon(snapshot.vectors, self.params.removals_from)
        if horizon is not None:
            with self.transaction() as s:
                prune_removals(s, horizon)

    def record_run(self, root: Path, touched: list[dict[str, Any]]) -> None:
        """Record the indexed folder and the refreshed mtimes of unchanged files (no new generation)."""
        with self.transaction() as s:
            if touched:
                s.execute(update(Document), touched)
            s.execute(update(IndexState).where(IndexState.id == 1).values(root=str(root), updated_at=utcnow()))
        params = read_params(self._sessions)
        current = self._serving.current
        if params is not None and current is not None:
            self._serving.serve(current.advanced(params, current.lexical))

    def close(self) -> None:
        """Close the lexical writer."""
        self._upkeep.close()


def _write_error(url: str, exc: BaseException) -> str:
    return f"cannot write to the database {store.mask_url(url)}: {store.describe_db_error(exc, url)}"
