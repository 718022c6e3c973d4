"""Incremental, crash-safe indexing of a folder (:meth:`Index.update <bertsearch.indexer.index.Index.update>`).

A run writes through the index's write side (:class:`WriteSide`, which
:class:`bertsearch.indexer.writing.Writer` is), never through the facade. One run, under the
writer lock:

1. discover the files; a file whose size and mtime match its row is unchanged; otherwise its
   sha256 decides (same hash: unchanged, only the mtime is refreshed);
2. remove the documents whose files are gone (deleted, renamed away, now excluded); documents
   put by key (:mod:`~bertsearch.indexer.ingest`) are not the folder's and are left alone;
3. read, chunk and encode only new and changed files, and commit them in batches of about
   :data:`COMMIT_CHUNKS` chunks: delete the old chunks of changed documents, insert the new
   rows in bulk, bump the generation, commit (:meth:`WriteSide.commit`, the one commit function);
   then the derived indexes apply the batch (FAISS in memory, saved at times; lexical on disk).

A run killed at any instant keeps every committed batch; the FAISS file is then behind and is
brought forward from SQL on the next open (or rebuilt from it), and the next run re-reads only
what was not committed. The file is rewritten only once enough has changed (see
:meth:`Writer.save_vectors <bertsearch.indexer.writing.Writer.save_vectors>`).

The index mirrors one folder, recorded on the first run. A run on another folder is refused
while the recorded one still exists (index it into another ``--index``, or ``--rebuild``);
when the recorded folder is gone (moved or renamed), the new one is adopted and its files are
compared by relative path, so nothing unchanged is re-encoded.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import select

from bertsearch.indexer.chunk_headers import encoded_texts
from bertsearch.indexer.commit import Batch, DocumentWrite
from bertsearch.indexer.common.errors import ConfigError, UnsupportedDocument
from bertsearch.indexer.models import API, FOLDER, Document
from bertsearch.indexer.common.progress import progress_bar



Changed = tuple[Path, str, Any, Any, str]
"""A file to (re)index: its path, relative path, stat, old row ``(id, size, mtime, digest)`` or None, sha256."""

Prepared = tuple[DocumentWrite | None, Any, tuple[str, str] | None]
"""A document ready to commit with its vectors (``None``: encode at the commit), or ``(rel, why)`` it failed."""


class Preparer(Protocol):
    """Reads, chunks (and may encode) changed files somewhere else: ``--ray``."""

    def __call__(self, changed: list[Changed], params: Any) -> Any: ...


def document_write(loaded: Any, doc_id: int | None, rel: str, digest: str, size: int, mtime: float,
                   tokenizer: Any, chunk_tokens: int, chunk_overlap: int) -> DocumentWrite:
    """A read document as a :class:`DocumentWrite` with its chunks (``tokenizer()`` gives the
    model's tokenizer; it is not asked for when the document holds no text) and the metadata found
    of it (:func:`~bertsearch.indexer.metadata.found_metadata`)."""
    from bertsearch.indexer.chunking import chunk_text
    from bertsearch.indexer.metadata import found_metadata

    # PostgreSQL text cannot hold NUL; a space keeps every character offset valid.
    text = loaded.text.replace("\x00", " ")
    title = loaded.title.replace("\x00", " ")
    chunks = chunk_text(text, tokenizer(), chunk_tokens, chunk_overlap) if text.strip() else []
    metadata = found_metadata(text, title, getattr(loaded, "metadata", {}), getattr(loaded, "kind", "text"),
                              size, mtime)
    return DocumentWrite(doc_id=doc_id, path=rel, title=title, text=text, content_hash=digest, size=size,
                         mtime=mtime, chunks=chunks, metadata=metadata)


class WriteSide(Protocol):
    """What a run uses of an open index: its write side, :class:`bertsearch.indexer.writing.Writer`
    (:meth:`Index.update <bertsearch.indexer.index.Index.update>` hands it over; neither module
    is imported here)."""

    index_dir: Path
    settings: Any

    @property
    def params(self) -> Any: ...
    @property
    def encoder(self) -> Any: ...
    @property
    def rebuild_pending(self) -> bool: ...
    def rebuilding(self) -> Any: ...
    def writer_lock(self, timeout: float | None = None) -> Any: ...
    def refresh(self) -> bool: ...
    def transaction(self) -> Any: ...
    def commit(self, batch: Batch, root: Path | None = None) -> Any: ...
    def record_run(self, root: Path, touched: list[dict[str, Any]]) -> None: ...
    def save_vectors(self, *, lazy: bool = False) -> None: ...
    def database_files(self) -> list[Path]: ...

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


def update(
    index: WriteSide,
    root: Path,
    *,
    include: tuple[str, ...] | list[str] = (),
    exclude: tuple[str, ...] | list[str] = (),
    show_progress: bool = False,
    prepare: Preparer | None = None,
) -> IndexSummary:
    """Bring the index written by ``index`` up to date with the folder ``root`` (see the module docstring).

    ``prepare`` reads, chunks and encodes the changed files elsewhere (``--ray``:
    :func:`bertsearch.indexer.distributed.ray_preparer`); the commits are the same.

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
        run = _Run(index, root, show_progress)
        if index.rebuild_pending:
            with index.rebuilding():  # one transaction: readers keep the old index until it commits
                run.scan(include, exclude)
                if run.changed:
                    run.index_changed(prepare)
                run.summary.chunks_written += _rewrite_keyed(index)
        else:
            _check_root(index, root)
            if index.settings.model_path:
                index.encoder  # an explicitly named model is checked before any work
            run.scan(include, exclude)
            run.remove_missing()
            if run.changed:
                run.index_changed(prepare)
        run.finish()
    summary = run.summary
    summary.seconds = round(time.perf_counter() - began, 3)
    summary.chunks_per_second = round(summary.chunks_written / summary.seconds, 1) if summary.seconds else 0.0
    return summary


@dataclass(frozen=True)
class Loaded:
    """A document's text and title, as a reader gives them (:func:`document_write` takes one)."""

    text: str
    title: str


_REWRITE_DOCUMENTS = 64  # documents put by key per commit of a rebuild


def _rewrite_keyed(index: WriteSide) -> int:
    """Re-chunk and re-encode the documents put by key (:mod:`~bertsearch.indexer.ingest`) with
    the new build's parameters, from the text SQL keeps: a rebuild empties every chunk but keeps
    these rows. Returns the number of chunks written."""
    written, after = 0, 0
    params = index.params
    while True:
        pending: list[DocumentWrite] = []
        with index.transaction() as s:
            rows = s.execute(select(Document.id, Document.path, Document.text, Document.title, Document.content_hash,
                                    Document.size, Document.mtime, Document.meta)
                             .where(Document.source == API, Document.id > after)
                             .order_by(Document.id).limit(_REWRITE_DOCUMENTS)).all()
        for doc_id, key, text, title, digest, size, mtime, meta in rows:
            doc = document_write(Loaded(text, title), doc_id, key, digest, size, mtime,
                                 lambda: index.encoder.tokenizer, params.chunk_tokens, params.chunk_overlap)
            doc.source, doc.metadata = API, meta
            pending.append(doc)
            after = doc_id
        if not pending:
            return written
        texts = [t for d in pending for t in encoded_texts(d, params.header)]
        index.commit(Batch(documents=pending, vectors=index.encoder.encode(texts) if texts else None))
        written += len(texts)


def _check_root(index: WriteSide, root: Path) -> None:
    recorded = index.params.root
    if recorded is None or Path(recorded) == root or not Path(recorded).is_dir():
        return
    raise ConfigError(
        f"the index {index.index_dir} holds the documents of {recorded}, not {root}; "
        "index this folder into another index (--index DIR), or pass --rebuild to replace its contents"
    )


class _Run:
    def __init__(self, index: WriteSide, root: Path, show_progress: bool) -> None:
        self.index = index
        self.root = root
        self.show_progress = show_progress
        self.summary = IndexSummary()
        self.existing: dict[str, tuple[int, int, float, str]] = {}
        self.changed: list[Changed] = []
        self.touched: list[dict[str, Any]] = []
        self.gone: list[int] = []
        self.last_save = time.perf_counter()
        self.save_cost = 0.0

    def scan(self, include, exclude) -> None:
        from bertsearch.indexer.documents import discover

        with self.index.transaction() as s:
            # Only the folder's files: documents put by key are never compared, removed or replaced here.
            rows = s.execute(select(Document.id, Document.path, Document.size, Document.mtime,
                                    Document.content_hash).where(Document.source == FOLDER))
            self.existing = {path: (doc_id, size, mtime, digest) for doc_id, path, size, mtime, digest in rows}
        settings = self.index.settings
        files = discover(self.root, include, exclude, skip=[self.index.index_dir, *self.index.database_files()],
                         follow_symlinks=settings.follow_symlinks)
        real_root = os.path.realpath(self.root)
        seen: set[str] = set()
        for path in progress_bar(self.show_progress, "checking", " files", iterable=files):
            path = path if path.is_absolute() else self.root / path
            rel = path.relative_to(self.root).as_posix()
            seen.add(rel)
            if len(rel) > MAX_PATH_CHARS:
                self._fail(rel, f"path longer than {MAX_PATH_CHARS} characters")
                continue
            if not settings.follow_symlinks and not _inside(os.path.realpath(path), real_root):
                self._fail(rel, "a symbolic link out of the folder, not followed (--follow-symlinks follows it)")
                continue
            old = self.existing.get(rel)
            try:
                st = path.stat()
                if st.st_size > settings.max_file_size:
                    self._fail(rel, f"{st.st_size} bytes, over the limit of {settings.max_file_size} "
                                    "(--max-file-size)")
                    continue
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
        self.index.commit(Batch(remove_documents=self.gone), self.root)
        self.summary.removed = len(self.gone)
        self._maybe_save()

    def index_changed(self, prepare: Preparer | None = None) -> None:
        """Read, chunk and encode the changed files, and commit them in batches.

        By default in this process: the encoder loads at the first file with text (so a run
        whose only changes are files that fail, or are empty, never loads the model) and encodes
        each batch before its commit. ``prepare`` (``--ray``) reads, chunks and encodes elsewhere
        and hands back each document with its vectors; the commits are the same.
        """
        pending: list[DocumentWrite] = []
        vectors: list[Any] = []
        n_pending = 0
        chunk_bar = progress_bar(self.show_progress, "encoding", " chunks")
        if prepare is None:
            files = progress_bar(self.show_progress, "indexing", " files", iterable=self.changed)
            prepared = (self._prepare(f) for f in files)
        else:  # the same bars: a document comes back for every file, read or failed
            prepared = progress_bar(self.show_progress, "indexing", " files", total=len(self.changed),
                                    iterable=prepare(self.changed, self.index.params))
        try:
            for doc, doc_vectors, failure in prepared:
                if failure is not None:
                    self._fail(*failure)
                    continue
                pending.append(doc)
                vectors.append(doc_vectors)
                n_pending += len(doc.chunks)
                if n_pending >= COMMIT_CHUNKS:
                    self._commit(pending, vectors, chunk_bar)
                    pending, vectors, n_pending = [], [], 0
            if pending:
                self._commit(pending, vectors, chunk_bar)
        finally:
            chunk_bar.close()

    def _prepare(self, changed: Changed) -> Prepared:
        from bertsearch.indexer.documents import read_document

        path, rel, st, old, digest = changed
        try:
            loaded = read_document(path)
        except UnsupportedDocument as exc:
            return None, None, (rel, str(exc))
        params = self.index.params
        doc = document_write(loaded, old[0] if old else None, rel, digest, st.st_size, st.st_mtime,
                             lambda: self.index.encoder.tokenizer, params.chunk_tokens, params.chunk_overlap)
        return doc, None, None

    def _commit(self, pending: list[DocumentWrite], given: list[Any], chunk_bar: Any) -> None:
        texts = [t for p in pending for t in encoded_texts(p, self.index.params.header)]
        if not texts:
            vectors = None
        elif all(v is not None for v in given):
            vectors = np.concatenate([v for v in given if len(v)]) if any(len(v) for v in given) else None
        else:
            vectors = self.index.encoder.encode(texts)
        chunk_bar.update(len(texts))
        done = self.index.commit(Batch(documents=pending, vectors=vectors), self.root)
        self.summary.added += done.documents_added
        self.summary.updated += done.documents_replaced
        self.summary.chunks_written += len(texts)
        self._maybe_save()

    def finish(self) -> None:
        """Record the root and refreshed mtimes, and leave a FAISS file SQL brings forward (see `save_vectors`)."""
        self.index.record_run(self.root, self.touched)
        self._maybe_save(force=True)

    def _maybe_save(self, force: bool = False) -> None:
        # Saving rewrites the whole file: keep it to about a tenth of the run's time. A crash
        # between saves only costs a rebuild from SQL on the next open, never data.
        now = time.perf_counter()
        if not force and now - self.last_save < 10 * self.save_cost:
            return
        self.index.save_vectors(lazy=True)
        self.last_save = time.perf_counter()
        self.save_cost = self.last_save - now

    def _fail(self, rel: str, reason: str) -> None:
        self.summary.failed += 1
        self.summary.failures.append((rel, reason))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


