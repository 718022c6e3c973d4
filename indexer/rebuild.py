"""``--rebuild``: the whole index replaced in one transaction.

Inside it, every document is written anew through the same commit as any run; it commits at
the end, so readers serve the old generation until then and a failed or killed rebuild leaves
it intact (:meth:`Writer.rebuilding <bertsearch.indexer.writing.Writer.rebuilding>`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from bertsearch.indexer import store
from bertsearch.indexer.commit import bump_generation
from bertsearch.indexer.models import FOLDER, ChunkRemoval, ChunkRow, Document, IndexState
from bertsearch.indexer.snapshot import BuildParams

__all__ = ["Rebuild"]


class Rebuild:
    """A pending rebuild: the new build's ``index_state`` values, applied by :meth:`run`.

    While it runs, :attr:`session` is its one transaction (every write of the run joins it) and
    :attr:`params` the new build parameters; both are ``None`` otherwise.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.session: Session | None = None
        self.params: BuildParams | None = None

    @contextmanager
    def run(self, sessions: Any, guard: Callable[[], store.LockGuard | None]) -> Iterator[None]:
        """One transaction that empties the tables and stores the new values; it commits on a
        clean exit, once ``guard()`` (the writer lock's) verifies the lock is still held.

        Raises:
            SQLAlchemyError: The database refused it; nothing of it was committed.
        """
        with sessions() as s, s.begin():
            s.execute(delete(ChunkRow))
            # The folder's files are read again; documents put by key keep their rows and text
            # and are re-chunked and re-encoded from it (`update._rewrite_keyed`).
            s.execute(delete(Document).where(Document.source == FOLDER))
            s.execute(update(IndexState).where(IndexState.id == 1).values(**self.values))
            generation = bump_generation(s)
            # Every chunk is new: readers load this generation whole, so no removal is logged.
            s.execute(delete(ChunkRemoval))
            s.execute(update(IndexState).where(IndexState.id == 1).values(removals_from=generation))
            self.params = BuildParams.from_row(s.get(IndexState, 1))
            self.session = s
            try:
                yield
                lock_guard = guard()
                if lock_guard is not None:
                    lock_guard.verify(s)
            finally:
                self.session = None
                self.params = None
