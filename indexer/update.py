"""Incremental, crash-safe indexing of a folder (:meth:`Index.update <bertsearch.indexer.index.Index.update>`).

One run, under the writer lock:

1. discover the files; a file whose size and mtime match its row is unchanged; otherwise its
   sha256 decides (same hash: unchanged, only the mtime is refreshed);
2. remove the documents whose files are gone (deleted, renamed away, now excluded);
3. read, chunk and encode only new and changed files, and commit them in batches of about
   :data:`COMMIT_CHUNKS` chunks: delete the old chunks of changed documents, insert the new
   rows in bulk, bump the generation, commit; then update the in-memory FAISS index and save
   the FAISS file.

A run killed at any instant keeps every committed batch; the FAISS file is then stale and is
rebuilt from SQL on the next open, and the next run re-reads only what was not committed.

The index mirrors one folder, recorded on the first run. A run on another folder is refused
while the recorded one still exists (index it into another ``--index``, or ``--rebuild``);
when the recorded folder is gone (moved or renamed), the new one is adopted and its files are
compared by relative path, so nothing unchanged is re-encoded.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, insert, select, update as sql_update

from bertsearch.indexer.errors import ConfigError, UnsupportedDocument
from bertsearch.indexer.models import ChunkRow, Document, IndexState, utcnow
from bertsearch.indexer.progress import progress_bar

if TYPE_CHECKING:
    from bertsearch.indexer.chunking import Chunk
    from bertsearch.indexer.index import Index

COMMIT_CHUNKS = 512
"""Chunks per committed batch: the most work a killed run can lose."""

MAX_PATH_CHARS = 1024
"""The longest relative path stored (``documents.path``); longer ones are reported as failed."""


@dataclass
class IndexSummary:
    """What one :meth:`Index.update` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    chunks_written: int = 0
    seconds: float = 0.0
    chunks_per_second: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (failures as ``{"path", "reason"}`` objects)."""
        out = asdict(self)
        out["failures"] = [{"path": p, "reason": r} for p, r in self.failures]
        return out


@dataclass
class _Pending:
    doc_id: int | None  # None: a new document
    path: str
    title: str
    text: str
    content_hash: str
    size: int
    mtime: float
    chunks: list[Chunk]


def update(
    index: Index,
    root: Path,
    *,
    include: tuple[str, ...] | list[str] = (),
    exclude: tuple[str, ...] | list[str] = (),
    show_progress: bool = False,
) -> IndexSummary:
    """Bring ``index`` up to date with the folder ``root`` (see the module docstring).

    Raises:
        ConfigError: ``root`` is not a folder, or another folder is recorded for this index.
        IndexLocked: Another process is writing the index.
        ModelMismatch: The encoder is not the one the index was built with.
        StorageError: The database or the FAISS file cannot be written.
    """
    began = time.perf_counter()
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"not a folder: {root}")
    root = root.resolve()
    with index.writer_lock():
        index.refresh()  # another writer may have committed since this index was opened
        _check_root(index, root)
        if index.settings.model_path:
            index.encoder  # an explicitly named model is checked before any work
        run = _Run(index, root, show_progress)
        run.scan(include, exclude)
        run.remove_missing()
        if run.changed:
            run.index_changed()
        run.finish()
    summary = run.summary
    summary.seconds = round(time.perf_counter() - began, 3)
    summary.chunks_per_second = round(summary.chunks_written / summary.seconds, 1) if summary.seconds else 0.0
    return summary


def _check_root(index: Index, root: Path) -> None:
    recorded = index.params.root
    if recorded is None or Path(recorded) == root or not Path(recorded).is_dir():
        return
    raise ConfigError(
        f"the index {index.index_dir} holds the documents of {recorded}, not {root}; "
        "index this folder into another index (--index DIR), or pass --rebuild to replace its contents"
    )


class _Run:
    def __init__(self, index: Index, root: Path, show_progress: bool) -> None:
        self.index = index
        self.root = root
        self.show_progress = show_progress
        self.summary = IndexSummary()
        self.existing: dict[str, tuple[int, int, float, str]] = {}
        self.changed: list[tuple[Path, str, Any, tuple[int, int, float, str] | None, str]] = []
        self.touched: list[dict[str, Any]] = []
        self.gone: list[int] = []
        self.last_save = time.perf_counter()
        self.save_cost = 0.0

    def scan(self, include, exclude) -> None:
        from bertsearch.indexer.documents import discover

        with self.index.transaction() as s:
            rows = s.execute(select(Document.id, Document.path, Document.size, Document.mtime,
                                    Document.content_hash))
            self.existing = {path: (doc_id, size, mtime, digest) for doc_id, path, size, mtime, digest in rows}
        files = discover(self.root, include, exclude, skip=[self.index.index_dir])
        seen: set[str] = set()
        for path in progress_bar(self.show_progress, "checking", " files", iterable=files):
            path = path if path.is_absolute() else self.root / path
            rel = path.relative_to(self.root).as_posix()
            seen.add(rel)
            if len(rel) > MAX_PATH_CHARS:
                self._fail(rel, f"path longer than {MAX_PATH_CHARS} characters")
                continue
            old = self.existing.get(rel)
            try:
                st = path.stat()
                if old is not None and old[1] == st.st_size and old[2] == st.st_mtime:
                    self.summary.unchanged += 1
                    continue
                # Hash before reading: if the file changes in between, the next run sees a new mtime.
                digest = _sha256(path)
            except OSError as exc:
                self._fail(rel, f"cannot be read ({exc.strerror or exc})")
                continue
            if old is not None and old[3] == digest:
                self.summary.unchanged += 1
                self.touched.append({"id": old[0], "mtime": st.st_mtime, "size": st.st_size})
                continue
            self.changed.append((path, rel, st, old, digest))
        self.gone = [doc_id for rel, (doc_id, *_rest) in self.existing.items() if rel not in seen]

    def remove_missing(self) -> None:
        if not self.gone:
            return
        with self.index.transaction() as s:
            old_ids = _chunk_ids_of(s, self.gone)
            for part in _parts(self.gone):
                s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(part)))
                s.execute(delete(Document).where(Document.id.in_(part)))
            generation = _bump(s, self.root)
        self.index.vectors.remove(old_ids)
        self.index.vectors.generation = generation
        self.summary.removed = len(self.gone)
        self._maybe_save()

    def index_changed(self) -> None:
        """Read, chunk and encode the changed files. The encoder loads at the first file with text,
        so a run whose only changes are files that fail (or are empty) never loads the model."""
        from bertsearch.indexer.chunking import chunk_text
        from bertsearch.indexer.documents import read_document

        tokens, overlap = self.index.params.chunk_tokens, self.index.params.chunk_overlap
        pending: list[_Pending] = []
        n_pending = 0
        files = progress_bar(self.show_progress, "indexing", " files", iterable=self.changed)
        chunk_bar = progress_bar(self.show_progress, "encoding", " chunks")
        try:
            for path, rel, st, old, digest in files:
                try:
                    loaded = read_document(path)
                except UnsupportedDocument as exc:
                    self._fail(rel, str(exc))
                    continue
                # PostgreSQL text cannot hold NUL; a space keeps every character offset valid.
                text = loaded.text.replace("\x00", " ")
                chunks = chunk_text(text, self.index.encoder.tokenizer, tokens, overlap) if text.strip() else []
                pending.append(_Pending(
                    doc_id=old[0] if old else None, path=rel, title=loaded.title.replace("\x00", " "), text=text,
                    content_hash=digest, size=st.st_size, mtime=st.st_mtime, chunks=chunks,
                ))
                n_pending += len(chunks)
                if n_pending >= COMMIT_CHUNKS:
                    self._commit(pending, chunk_bar)
                    pending, n_pending = [], 0
            if pending:
                self._commit(pending, chunk_bar)
        finally:
            chunk_bar.close()

    def _commit(self, pending: list[_Pending], chunk_bar: Any) -> None:
        texts = [c.text for p in pending for c in p.chunks]
        vectors = self.index.encoder.encode(texts) if texts else np.zeros((0, self.index.params.dimension), np.float32)
        chunk_bar.update(len(texts))
        blobs = iter(np.ascontiguousarray(vectors, dtype="<f4"))
        now = utcnow()
        changed_ids = [p.doc_id for p in pending if p.doc_id is not None]
        with self.index.transaction() as s:
            old_ids = _chunk_ids_of(s, changed_ids)
            for part in _parts(changed_ids):
                s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(part)))
            fields = lambda p: dict(  # noqa: E731
                path=p.path, title=p.title, text=p.text, content_hash=p.content_hash, size=p.size,
                mtime=p.mtime, n_chunks=len(p.chunks), indexed_at=now,
            )
            if changed_ids:
                s.execute(sql_update(Document), [{"id": p.doc_id, **fields(p)} for p in pending if p.doc_id])
            new_docs = [p for p in pending if p.doc_id is None]
            if new_docs:
                new_ids = s.scalars(
                    insert(Document).returning(Document.id, sort_by_parameter_order=True),
                    [fields(p) for p in new_docs],
                ).all()
                for p, doc_id in zip(new_docs, new_ids):
                    p.doc_id = doc_id
            rows = [
                dict(document_id=p.doc_id, ordinal=i, start=c.start, end=c.end, text=c.text,
                     n_tokens=c.n_tokens, vector=next(blobs).tobytes())
                for p in pending for i, c in enumerate(p.chunks)
            ]
            chunk_ids: list[int] = []
            if rows:
                chunk_ids = list(s.scalars(
                    insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), rows
                ).all())
            generation = _bump(s, self.root)
        vi = self.index.vectors
        vi.remove(old_ids)
        vi.add(np.asarray(chunk_ids, dtype=np.int64), vectors)
        vi.generation = generation
        self.summary.added += len(new_docs)
        self.summary.updated += len(changed_ids)
        self.summary.chunks_written += len(rows)
        self._maybe_save()

    def finish(self) -> None:
        """Record the root and refreshed mtimes, and leave a FAISS file matching SQL."""
        with self.index.transaction() as s:
            if self.touched:
                s.execute(sql_update(Document), self.touched)
            s.execute(sql_update(IndexState).where(IndexState.id == 1)
                      .values(root=str(self.root), updated_at=utcnow()))
        self.index.reload_params()
        self._maybe_save(force=True)

    def _maybe_save(self, force: bool = False) -> None:
        # Saving rewrites the whole file: keep it to about a tenth of the run's time. A crash
        # between saves only costs a rebuild from SQL on the next open, never data.
        now = time.perf_counter()
        if not force and now - self.last_save < 10 * self.save_cost:
            return
        self.index.save_vectors()
        self.last_save = time.perf_counter()
        self.save_cost = self.last_save - now

    def _fail(self, rel: str, reason: str) -> None:
        self.summary.failed += 1
        self.summary.failures.append((rel, reason))


def _bump(s: Any, root: Path) -> int:
    s.execute(sql_update(IndexState).where(IndexState.id == 1).values(
        generation=IndexState.generation + 1, root=str(root), updated_at=utcnow(),
    ))
    return int(s.scalar(select(IndexState.generation).where(IndexState.id == 1)))


def _chunk_ids_of(s: Any, doc_ids: list[int]) -> list[int]:
    ids: list[int] = []
    for part in _parts(doc_ids):
        ids.extend(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(part))))
    return ids


def _parts(items: list[int], size: int = 500) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


