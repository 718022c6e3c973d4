"""Documents put and deleted by key (the HTTP API's ``/documents``, ``bertsearch put`` and
``bertsearch delete``), beside the files of the indexed folder.

A key is the caller's: an id, a URL, a path. Its document is a ``documents`` row of source
:data:`~bertsearch.indexer.models.API` whose ``path`` is the key, so it never meets a folder
file of the same path: a folder run reads and removes only rows of source ``folder``, and a
delete by key only rows of source ``api``.

:func:`apply_changes` writes one batch of puts and deletes the way a folder run writes a batch
of files: under the writer lock, read (a file's bytes through the readers of
:mod:`~bertsearch.indexer.documents`), chunk, encode, and one :meth:`commit` (one generation);
when it returns, the change is committed. Content already held under a key (its SHA-256) is
not encoded again: an identical put changes nothing, and one that changes only the title or
the metadata keeps the stored chunks and vectors (and re-encodes the chunks when the index puts
the title before each chunk, ``chunk_header`` ``title``: :mod:`~bertsearch.indexer.chunk_headers`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import select

from bertsearch.indexer.chunk_headers import encoded_texts, header_of
from bertsearch.indexer.commit import Batch, DocumentWrite
from bertsearch.indexer.common.errors import DocumentNotFound, InvalidDocument
from bertsearch.indexer.metadata import found_metadata, merged
from bertsearch.indexer.models import API, ChunkRow, Document
from bertsearch.indexer.update import MAX_PATH_CHARS, WriteSide, document_write

__all__ = ["DocumentPut", "IngestResult", "KeyResult", "apply_changes", "check_key", "check_metadata",
           "delete_document"]

MAX_KEY_CHARS = MAX_PATH_CHARS
"""The longest key: it is stored where a folder file's path is (``documents.path``)."""
MAX_METADATA_KEYS = 64
"""Fields of one document's metadata, at most."""
_REWRITE_DOCUMENTS = 64  # documents per commit when a rebuild re-encodes the documents put by key


@dataclass
class DocumentPut:
    """A document to put under ``key``: ``text``, or a file's bytes ``data`` read by the reader
    its ``filename`` chooses (txt, md, rst, html, pdf). ``title``: default the file's title,
    else the key. ``metadata``: a flat JSON object (see :func:`check_metadata`)."""

    key: str
    text: str | None = None
    title: str | None = None
    metadata: dict[str, Any] | None = None
    data: bytes | None = None
    filename: str | None = None


@dataclass(frozen=True)
class KeyResult:
    """What a batch did with one key: ``op`` put or delete; ``status`` created, replaced,
    unchanged (put), deleted or absent (delete); ``id`` the document's, ``chunks`` encoded for it."""

    key: str
    op: str
    status: str
    id: int | None
    chunks: int = 0


@dataclass
class IngestResult:
    """One batch: the generation that holds it (the one already served when nothing changed)."""

    generation: int
    results: list[KeyResult] = field(default_factory=list)
    chunks_encoded: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def check_key(key: Any) -> str:
    """``key`` if it is a usable key: 1 to :data:`MAX_KEY_CHARS` characters, no control characters.

    Raises:
        InvalidDocument: It is not.
    """
    if not isinstance(key, str) or not key:
        raise InvalidDocument("a document key must be a non-empty string")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidDocument(f"the key is {len(key)} characters long, at most {MAX_KEY_CHARS}")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidDocument("a document key cannot hold control characters")
    return key


def check_metadata(metadata: Any, max_bytes: int) -> dict[str, Any] | None:
    """``metadata`` if it is a flat JSON object of at most :data:`MAX_METADATA_KEYS` fields whose
    values are strings, numbers, booleans or lists of strings, and of at most ``max_bytes`` as
    compact JSON (``None`` or ``{}``: none).

    Raises:
        InvalidDocument: It is not.
    """
    if metadata is None or metadata == {}:
        return None
    if not isinstance(metadata, dict):
        raise InvalidDocument("metadata must be a JSON object")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidDocument(f"metadata has {len(metadata)} fields, at most {MAX_METADATA_KEYS}")
    for name, value in metadata.items():
        if not isinstance(name, str) or not name:
            raise InvalidDocument("metadata field names must be non-empty strings")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidDocument(f"metadata field {name!r}: not a finite number")
        ok = isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value))
        if not ok:
            raise InvalidDocument(f"metadata field {name!r}: a string, number, boolean or list of strings is "
                                  f"expected, not {type(value).__name__}")
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > max_bytes:
        raise InvalidDocument(f"metadata is {size} bytes as JSON, at most {max_bytes}")
    return metadata


def apply_changes(index: WriteSide, puts: Sequence[DocumentPut] = (), deletes: Iterable[str] = ()) -> IngestResult:
    """Put and delete documents by key in one commit (one generation); see the module docstring.

    ``index`` is an open, writable :class:`~bertsearch.indexer.index.Index`. Results come in
    the order of ``puts``, then ``deletes``.

    Raises:
        InvalidDocument: A key, a metadata object or the batch is malformed or over a limit
            (nothing is written).
        UnsupportedDocument: A file cannot be read (nothing is written).
        IndexLocked: Another process is writing the index.
        StorageError: The database or the derived indexes cannot be written.
    """
    began = time.perf_counter()
    deletes = list(deletes)
    _check_batch(index.settings, puts, deletes)
    with index.writer_lock():
        index.refresh()  # another writer may have committed since this index was opened
        rows = _rows_of(index, [p.key for p in puts] + deletes)
        planned = [_plan(index, put, rows.get(put.key)) for put in puts]
        gone = [rows[k][0] for k in deletes if k in rows]
        writes = [doc for doc, _vectors, _status in planned if doc is not None]
        header = index.params.header
        fresh = [t for doc, vectors, _s in planned if doc is not None and vectors is None
                 for t in encoded_texts(doc, header)]
        result = IngestResult(generation=index.params.generation, chunks_encoded=len(fresh))
        if writes or gone:
            encoded = iter(_encode(index, fresh))
            vectors = [v if v is not None else np.stack([next(encoded) for _ in doc.chunks]) if doc.chunks else None
                       for doc, v, _s in planned if doc is not None]
            stacked = [v for v in vectors if v is not None and len(v)]
            done = index.commit(Batch(remove_documents=gone, documents=writes,
                                      vectors=np.concatenate(stacked) if stacked else None))
            index.save_vectors(lazy=True)
            result.generation = done.generation
    for put, (doc, vectors, status) in zip(puts, planned):
        encoded_here = len(doc.chunks) if doc is not None and vectors is None else 0
        doc_id = doc.doc_id if doc is not None else rows[put.key][0]
        result.results.append(KeyResult(put.key, "put", status, doc_id, encoded_here))
    for key in deletes:
        found = rows.get(key)
        result.results.append(KeyResult(key, "delete", "deleted" if found else "absent",
                                        found[0] if found else None))
    result.seconds = round(time.perf_counter() - began, 3)
    return result


def delete_document(index: WriteSide, key: str) -> IngestResult:
    """Delete the document put under ``key``.

    Raises:
        DocumentNotFound: No document was put under ``key``.
    """
    result = apply_changes(index, deletes=[key])
    if result.results[0].status == "absent":
        raise DocumentNotFound(f"no document with the key {key!r}")
    return result


# -- the parts of a batch -----------------------------------------------------------------------

def _check_batch(settings: Any, puts: Sequence[DocumentPut], deletes: list[str]) -> None:
    count = len(puts) + len(deletes)
    if count > settings.max_batch_documents:
        raise InvalidDocument(f"a batch holds at most {settings.max_batch_documents} puts and deletes, not {count}")
    seen: set[str] = set()
    for key in [p.key for p in puts] + deletes:
        check_key(key)
        if key in seen:
            raise InvalidDocument(f"the key {key!r} appears twice in one batch")
        seen.add(key)
    for put in puts:
        if (put.text is None) == (put.data is None):
            raise InvalidDocument(f"{put.key!r}: give the text or a file, one of them")
        if put.title is not None and not isinstance(put.title, str):
            raise InvalidDocument(f"{put.key!r}: the title must be a string")
        put.metadata = check_metadata(put.metadata, settings.max_metadata_bytes)


def _rows_of(index: WriteSide, keys: list[str]) -> dict[str, tuple[int, str, str, Any]]:
    """``key -> (id, content_hash, title, metadata)`` of the documents put under these keys."""
    rows: dict[str, tuple[int, str, str, Any]] = {}
    with index.transaction() as s:
        for i in range(0, len(keys), 500):
            stmt = select(Document.path, Document.id, Document.content_hash, Document.title, Document.meta) \
                .where(Document.source == API, Document.path.in_(keys[i:i + 500]))
            rows.update({path: (doc_id, digest, title, meta) for path, doc_id, digest, title, meta in s.execute(stmt)})
    return rows


def _plan(index: WriteSide, put: DocumentPut, row: tuple[int, str, str, Any] | None
          ) -> tuple[DocumentWrite | None, np.ndarray | None, str]:
    """What to write for ``put``: the document (``None``: unchanged), its vectors when they are
    the stored ones (``None``: encode its chunks), and its status."""
    from bertsearch.indexer.documents import LoadedDocument, read_bytes

    raw = put.data if put.data is not None else (put.text or "").encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    status = "created" if row is None else "replaced"
    loaded = (read_bytes(put.filename or put.key, put.data) if put.data is not None
              else LoadedDocument(put.text or "", put.key))
    now = time.time()
    if row is not None and row[1] == digest:
        doc_id, _digest, title, meta = row
        # The default title of a text is its key; a file of the same bytes reads to the same title.
        wanted_title = put.title if put.title is not None else put.key if put.data is None else title
        found = found_metadata(loaded.text, wanted_title, loaded.metadata, loaded.kind, len(raw), now)
        wanted = merged(found, put.metadata)
        if wanted_title == title and _but_found_mtime(wanted, put.metadata) == _but_found_mtime(meta, put.metadata):
            return None, None, "unchanged"
        doc, vectors = _stored(index, doc_id, put.key, wanted_title, wanted)
        if index.params.header == "title" and header_of(wanted_title, put.key) != header_of(title, put.key):
            return doc, None, status  # its chunks were encoded with the old title: encode them again
        return doc, vectors, status
    title = put.title if put.title is not None else loaded.title
    params = index.params
    doc = document_write(replace(loaded, title=title), row[0] if row else None, put.key, digest, len(raw), now,
                         lambda: index.encoder.tokenizer, params.chunk_tokens, params.chunk_overlap)
    doc.source, doc.metadata = API, merged(doc.metadata, put.metadata)
    return doc, None, status


def _but_found_mtime(metadata: dict[str, Any] | None, caller: dict[str, Any] | None) -> dict[str, Any]:
    """Metadata less the ``mtime`` of the put (unless the caller gives one): the same put again
    later changes nothing."""
    return {k: v for k, v in (metadata or {}).items() if k != "mtime" or "mtime" in (caller or {})}


def _stored(index: WriteSide, doc_id: int, key: str, title: str, metadata: Any) -> tuple[DocumentWrite, np.ndarray]:
    """The stored document ``doc_id`` with a new title and metadata, and its stored vectors."""
    from bertsearch.indexer.chunking import Chunk

    dim = index.params.dimension
    with index.transaction() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None
        rows = s.execute(select(ChunkRow.text, ChunkRow.start, ChunkRow.end, ChunkRow.n_tokens, ChunkRow.vector)
                         .where(ChunkRow.document_id == doc_id).order_by(ChunkRow.ordinal)).all()
        write = DocumentWrite(doc_id=doc_id, path=key, title=title, text=doc.text, content_hash=doc.content_hash,
                              size=doc.size, mtime=time.time(), chunks=[Chunk(*r[:4]) for r in rows],
                              source=API, metadata=metadata)
    vectors = np.stack([np.frombuffer(r[4], dtype="<f4") for r in rows]) if rows else np.zeros((0, dim), np.float32)
    return write, vectors


def _encode(index: WriteSide, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, index.params.dimension), np.float32)
    return index.encoder.encode(texts)
