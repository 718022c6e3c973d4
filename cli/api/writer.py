"""The server's write side: documents put and deleted by key through the index's one commit path.

The searcher's own index only reads: a commit advances the writer's FAISS index in place, which
requests searching it must never see. So writes go through a second :class:`Index` of the same
folder, opened on the first write with the searcher's encoder (its FAISS and lexical indexes
held twice in memory from then on), one write at a time, as a ``bertsearch index`` process would;
the searcher then serves the new generation before the reply (a search after a 200 finds it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index
from bertsearch.indexer.ingest import DocumentPut, IngestResult, apply_changes, delete_document
from bertsearch.search.searcher import Searcher

# A write waits this long for the writer lock (held by a refresh that writes repairs back, or a
# short `bertsearch put`) before it answers 409; a long `bertsearch index` run outlasts it.
LOCK_WAIT = 10.0
# How long a reply waits for the searcher to serve the generation it committed.
CATCH_UP = 10.0


class DocumentWriter:
    """Writes documents by key into the index ``searcher`` serves (thread-safe; call from a threadpool)."""

    def __init__(self, settings: Settings, searcher: Searcher) -> None:
        self._settings = settings.model_copy(update={"lock_timeout": max(settings.lock_timeout, LOCK_WAIT)})
        self._searcher = searcher
        self._index: Index | None = None
        self._lock = threading.Lock()

    def apply(self, puts: Sequence[DocumentPut] = (), deletes: Sequence[str] = ()) -> IngestResult:
        """Put and delete in one commit (see :func:`~bertsearch.indexer.ingest.apply_changes`)."""
        with self._lock:
            result = apply_changes(self._writer(), puts, deletes)
        self._catch_up(result.generation)
        return result

    def delete(self, key: str) -> IngestResult:
        """Delete one document (see :func:`~bertsearch.indexer.ingest.delete_document`)."""
        with self._lock:
            result = delete_document(self._writer(), key)
        self._catch_up(result.generation)
        return result

    def close(self) -> None:
        """Close the writer's index, if one was opened."""
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    def _writer(self) -> Index:
        if self._index is None:
            self._index = Index.open(self._settings, encoder=self._searcher.index.encoder)
        return self._index

    def _catch_up(self, generation: int) -> None:
        deadline = time.monotonic() + CATCH_UP
        while self._searcher.generation < generation and time.monotonic() < deadline:
            if not self._searcher.refresh():  # another thread's refresh in flight: it may predate the commit
                time.sleep(0.01)
