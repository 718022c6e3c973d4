"""The FAISS file: a derived, rebuildable accelerator over the vectors kept in SQL.

The file holds an ``IndexIDMap2(IndexFlatIP(dim))`` whose ids are the chunks' SQL primary keys,
behind a small header stamped with the SQL generation it reflects::

    magic "BSFAISS2" | generation u64 | count u64 | dimension u32 | crc32 u32 | length u64 | index id 16 bytes | payload

It is written to a temporary file in the same folder, fsynced, and renamed over the old one,
so a reader sees either the old file or the new one, never half of one. A missing, corrupt or
stale file is never served: the caller rebuilds it from SQL (see :meth:`VectorIndex.from_batches`).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

from bertsearch.indexer.common.errors import StorageError
from bertsearch.indexer.files import temp_file

FILE_NAME = "vectors.faiss"
_MAGIC = b"BSFAISS2"  # 2: the header carries the index id of the database the file was made from
_HEADER = struct.Struct("<8sQQIIQ16s")


class VectorFileError(Exception):
    """The FAISS file is missing, truncated, corrupt or of another dimension (internal: repaired by rebuilding)."""


class VectorIndex:
    """An in-memory exact inner-product index keyed by chunk id, stamped with a SQL generation."""

    def __init__(self, dimension: int, generation: int = 0, index: faiss.Index | None = None,
                 *, index_id: str = "") -> None:
        self.dimension = dimension
        self.generation = generation
        self.index_id = index_id
        """The identity (``index_state.index_id``) of the database these vectors come from."""
        self.saved_generation: int | None = None
        """The generation the FAISS file on disk holds, when it is known to hold this index."""
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    @property
    def count(self) -> int:
        """The number of vectors held."""
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """The chunk ids held, in insertion order."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (float32, ``(n, dimension)``) under the chunk ids ``ids``."""
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dimension)
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: Iterable[int]) -> int:
        """Remove the vectors of ``ids`` (unknown ids are ignored); returns how many were removed."""
        arr = np.fromiter(ids, dtype=np.int64)
        if arr.size == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(arr)))

    def search(
        self, query: np.ndarray, k: int, *, subset: np.ndarray | None = None, threads: int = 0
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids by inner product, best first, optionally within ``subset`` ids.

        ``threads`` > 0 caps FAISS's OpenMP threads for this call. The cap is the calling thread's
        own (an OpenMP setting per thread), so concurrent searches and the caller's later FAISS
        calls are unaffected.
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dimension)
        k = min(k, self.count if subset is None else min(self.count, len(subset)))
        if k <= 0:
            return []
        params = None
        if subset is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(subset, dtype=np.int64)))
        before = faiss.omp_get_max_threads()
        if threads > 0:
            faiss.omp_set_num_threads(threads)
        try:
            scores, ids = self._index.search(query, k, params=params)
        finally:
            faiss.omp_set_num_threads(before)
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i != -1]

    def save(self, path: Path) -> None:
        """Write the index atomically to ``path`` (temp file, fsync, rename, fsync of the folder).

        Raises:
            StorageError: the file cannot be written (disk full, permissions); the old file is kept.
        """
        payload = faiss.serialize_index(self._index).tobytes()
        header = _HEADER.pack(
            _MAGIC, self.generation, self.count, self.dimension, zlib.crc32(payload), len(payload),
            bytes.fromhex(self.index_id) if self.index_id else bytes(16),
        )
        folder = path.parent
        tmp = None
        try:
            fd, tmp = temp_file(folder, path.name)
            with os.fdopen(fd, "wb") as fh:
                fh.write(header)
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot write the FAISS file {path}: {exc.strerror or exc}") from exc
        _fsync_dir(folder)
        self.saved_generation = self.generation

    @classmethod
    def load(cls, path: Path, dimension: int) -> VectorIndex:
        """Read a file written by :meth:`save`.

        Raises:
            VectorFileError: the file is missing, truncated, fails its checksum, or has another dimension.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise VectorFileError("missing") from exc
        except OSError as exc:
            raise VectorFileError(f"unreadable ({exc.strerror or exc})") from exc
        if len(data) < _HEADER.size:
            raise VectorFileError("truncated header")
        magic, generation, count, dim, crc, length, index_id = _HEADER.unpack_from(data)
        payload = memoryview(data)[_HEADER.size:]
        if magic != _MAGIC:
            raise VectorFileError("an older format" if magic.startswith(b"BSFAISS") else "not a bertsearch FAISS file")
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise VectorFileError("checksum mismatch (truncated or corrupt)")
        if dim != dimension:
            raise VectorFileError(f"dimension {dim}, expected {dimension}")
        try:
            index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError as exc:
            raise VectorFileError(f"unreadable by FAISS ({exc})") from exc
        if index.ntotal != count or index.d != dimension:
            raise VectorFileError("header and payload disagree")
        return cls(dimension, generation, index, index_id=index_id.hex() if any(index_id) else "")

    @classmethod
    def from_batches(
        cls, dimension: int, generation: int, batches: Iterable[tuple[np.ndarray, np.ndarray]]
    ) -> VectorIndex:
        """Build an index from ``(ids, vectors)`` batches, e.g. streamed from SQL (no re-encoding)."""
        vi = cls(dimension, generation)
        for ids, vectors in batches:
            vi.add(ids, vectors)
        return vi


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


def vectors_from_blobs(blobs: list[bytes], dimension: int) -> np.ndarray:
    """Stack float32 blobs (as stored in ``chunks.vector``) into an ``(n, dimension)`` array."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32, copy=False)
    return flat.reshape(len(blobs), dimension)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not supported on every platform/filesystem.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
