"""The FAISS file: a derived, rebuildable copy of the vectors kept in SQL.

The file holds an index of one of the kinds in :mod:`bertsearch.indexer.faiss_kinds`, behind a
small header stamped with the SQL generation it reflects and the index id of the database it
comes from, and followed by the ids removed from the graph (HNSW cannot remove a vector: removed
chunks are filtered out of every search before its top k is cut, until the graph is rebuilt)::

    magic "BSFAISS3" | generation u64 | count u64 | dimension u32 | crc32 u32 | length u64 | index id 16 bytes
    | FAISS index | removed count u64 | removed ids int64...

It is written with :func:`~bertsearch.indexer.files.atomic_write` (temporary file in the same
folder, fsynced, renamed over the old one), so a reader sees either the old file or the new one,
never half of one. A missing, corrupt or stale file is never served: the caller rebuilds it from
SQL (see :meth:`bertsearch.indexer.vectors.VectorIndex.from_batches`).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bertsearch.indexer.common.errors import StorageError
from bertsearch.indexer.faiss_kinds import KINDS, kind_of
from bertsearch.indexer.files import atomic_write

FILE_NAME = "vectors.faiss"
# 2: the header carries the index id of the database the file was made from; 3: removed ids follow the index.
_MAGIC = b"BSFAISS3"
_HEADER = struct.Struct("<8sQQIIQ16s")


class VectorFileError(Exception):
    """The FAISS file is missing, truncated, corrupt or of another dimension (internal: repaired by rebuilding)."""


@dataclass(frozen=True)
class VectorFile:
    """What a FAISS file holds: an index keyed by chunk id and the ids removed from it, stamped."""

    generation: int
    index_id: str
    """The identity (``index_state.index_id``) of the database, hex, or ``""``."""
    index: faiss.Index
    removed: np.ndarray
    """The removed ids (int64) still in ``index``: tombstones of an HNSW graph."""


def write_vector_file(path: Path, file: VectorFile, dimension: int) -> None:
    """Write ``file`` atomically to ``path`` (temp file, fsync, rename, fsync of the folder).

    The index is streamed to the file (no serialised copy in memory); the header, with the
    payload's length and CRC, is written last.

    Raises:
        StorageError: the file cannot be written (disk full, permissions); the old file is kept.
    """
    removed = file.removed
    try:
        with atomic_write(path) as fh:
            fh.write(bytes(_HEADER.size))
            sink = _CrcWriter(fh)
            faiss.write_index(file.index, faiss.PyCallbackIOWriter(sink.write))
            sink.write(struct.pack("<Q", removed.size))
            sink.write(np.ascontiguousarray(removed, dtype="<i8").tobytes())
            fh.seek(0)
            fh.write(_HEADER.pack(
                _MAGIC, file.generation, int(file.index.ntotal) - int(removed.size), dimension, sink.crc,
                sink.length, bytes.fromhex(file.index_id) if file.index_id else bytes(16),
            ))
    except (OSError, RuntimeError) as exc:  # FAISS reports the writer's OSError as RuntimeError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise StorageError(f"cannot write the FAISS file {path}: {reason}") from exc


def read_vector_file(path: Path, dimension: int) -> VectorFile:
    """Read a file written by :func:`write_vector_file`.

    The checksum is verified by streaming the file once, then FAISS reads the payload from
    the file: memory holds the index and a small buffer, never a copy of the file.

    Raises:
        VectorFileError: the file is missing, truncated, fails its checksum, or has another dimension.
    """
    try:
        fh = open(path, "rb")
    except FileNotFoundError as exc:
        raise VectorFileError("missing") from exc
    except OSError as exc:
        raise VectorFileError(f"unreadable ({exc.strerror or exc})") from exc
    with fh:
        head = fh.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise VectorFileError("truncated header")
        magic, generation, count, dim, crc, length, index_id = _HEADER.unpack(head)
        if magic != _MAGIC:
            raise VectorFileError("an older format" if magic.startswith(b"BSFAISS") else "not a bertsearch FAISS file")
        try:
            found_crc, found_length = _crc_of_rest(fh)
        except OSError as exc:
            raise VectorFileError(f"unreadable ({exc.strerror or exc})") from exc
        if found_length != length or found_crc != crc:
            raise VectorFileError("checksum mismatch (truncated or corrupt)")
        if dim != dimension:
            raise VectorFileError(f"dimension {dim}, expected {dimension}")
        fh.seek(_HEADER.size)
        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(fh.read))
        except RuntimeError as exc:
            raise VectorFileError(f"unreadable by FAISS ({str(exc).splitlines()[0]})") from exc
        tail = fh.read(8)
        n_removed = struct.unpack("<Q", tail)[0] if len(tail) == 8 else -1
        removed = np.frombuffer(fh.read(8 * max(0, n_removed)), dtype="<i8").astype(np.int64)
    if n_removed != removed.size or index.ntotal - removed.size != count or index.d != dimension:
        raise VectorFileError("header and payload disagree")
    if not isinstance(index, faiss.IndexIDMap2) or kind_of(index) not in KINDS:
        raise VectorFileError("not an index bertsearch writes")
    return VectorFile(generation, index_id.hex() if any(index_id) else "", index, removed)


def read_generation(path: Path) -> int | None:
    """The generation stamped in a FAISS file's header (not verified), or ``None`` if unreadable."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER.size)
    except OSError:
        return None
    if len(head) < _HEADER.size or not head.startswith(_MAGIC):
        return None
    return int(_HEADER.unpack(head)[1])


class _CrcWriter:
    """A file sink that keeps the CRC32 and length of what went through it."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.crc = 0
        self.length = 0

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)
        self._fh.write(data)
        return len(data)


def _crc_of_rest(fh: Any, block: int = 1 << 20) -> tuple[int, int]:
    crc, length = 0, 0
    while True:
        data = fh.read(block)
        if not data:
            return crc, length
        crc = zlib.crc32(data, crc)
        length += len(data)
