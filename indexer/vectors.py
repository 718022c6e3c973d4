"""The in-memory vector index of a snapshot: a FAISS base, a delta and tombstones, keyed by chunk id.

:class:`VectorIndex` is what a search reads. Which FAISS kind its base is lives in
:mod:`bertsearch.indexer.faiss_kinds`, its file on disk in :mod:`bertsearch.indexer.vector_file`;
the names those modules held here before are still importable from this one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bertsearch.indexer.faiss_kinds import (
    DEFAULT_EF_SEARCH,
    flat_vectors,
    kind_of,
    new_base,
    search_index,
)
from bertsearch.indexer.vector_file import (
    VectorFile,
    read_vector_file,
    write_vector_file,
)

__all__ = ["EXACT_SUBSET_MAX", "VectorIndex", "vectors_from_blobs", "REBUILD_TOMBSTONES", "REBUILD_TOMBSTONES_MIN"]

REBUILD_TOMBSTONES = 0.1  # rebuild an HNSW graph when this share of its vectors are removed ones,
REBUILD_TOMBSTONES_MIN = 1000  # and at least this many
_TRAIN_SAMPLE = 65_536  # vectors an 8-bit quantizer is fitted on
EXACT_SUBSET_MAX = 32_768
"""A search within at most this many chunk ids scores each of them (exact) on an HNSW index too.
A graph search within a filter explores until it finds enough of the chunks let through: at 1%
of 100,000 vectors it took 9.1 ms against 0.43 ms unfiltered, where reading the 1,000 vectors and
scoring them took 0.26 ms (one core); scoring costs about 0.25 ms per 1,000 chunks."""


class VectorIndex:
    """An exact inner-product index keyed by chunk id, stamped with a SQL generation.

    It is a *base* FAISS index plus, after :meth:`advanced`, the changes of later generations:
    a small *delta* index of the chunks added since the base, and the ids removed from the base
    (filtered out of every search before its top k is cut). A reader moves from one generation
    to the next by applying what changed, sharing the base with the snapshot it came from, so a
    one-document change costs that document, never a copy or a reread of every vector.
    """

    def __init__(self, dimension: int, generation: int = 0, index: faiss.Index | None = None,
                 *, index_id: str = "", delta: faiss.Index | None = None,
                 removed: np.ndarray | None = None, high_id: int | None = None, kind: str = "flat") -> None:
        self.dimension = dimension
        self.ef_search = DEFAULT_EF_SEARCH
        """HNSW candidates explored per query (at least k); more is slower and finds more."""
        self.generation = generation
        self.index_id = index_id
        """The identity (``index_state.index_id``) of the database these vectors come from."""
        self.saved_generation: int | None = None
        """The generation the FAISS file on disk holds, when it is known to hold this index (or
        an earlier generation of it)."""
        self.unsaved: int | None = None
        """Vectors added or removed in place since the FAISS file (``None``: no file holds it)."""
        self._index = index if index is not None else new_base(kind, dimension)
        self._delta = delta
        self._removed = removed if removed is not None else np.zeros(0, dtype=np.int64)
        if high_id is None:
            ids = self._base_ids()
            high_id = int(ids.max()) if ids.size else 0
        self.high_id = high_id
        """The highest chunk id this index has seen: chunks above it were added after it."""

    @property
    def count(self) -> int:
        """The number of vectors held."""
        delta = int(self._delta.ntotal) if self._delta is not None else 0
        return int(self._index.ntotal) - int(self._removed.size) + delta

    @property
    def delta_count(self) -> int:
        """Vectors added and removed since the base: what :meth:`advanced` has piled up."""
        return (int(self._delta.ntotal) if self._delta is not None else 0) + int(self._removed.size)

    @property
    def kind(self) -> str:
        """``flat``, ``hnsw`` or ``hnsw-sq8``: the structure of the base index."""
        return kind_of(self._index)

    @property
    def tombstones(self) -> int:
        """Removed vectors still in the base (HNSW), filtered out of searches."""
        return int(self._removed.size)

    def rebuild_reason(self, wanted: str) -> str | None:
        """Why the base should be rebuilt from SQL: another kind wanted, or too many tombstones."""
        if self.kind != wanted:
            return f"a {self.kind} index of {self.count} vectors, where {wanted} is wanted"
        if (self.kind != "flat" and self._removed.size >= REBUILD_TOMBSTONES_MIN
                and self._removed.size > REBUILD_TOMBSTONES * self._index.ntotal):
            return f"{self._removed.size} of its {self._index.ntotal} vectors removed"
        return None

    def _base_ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def ids(self) -> np.ndarray:
        """The chunk ids held: the base's in insertion order, then the delta's."""
        ids = self._base_ids()
        if self._removed.size:
            ids = ids[~np.isin(ids, self._removed)]
        if self._delta is not None:
            ids = np.concatenate([ids, faiss.vector_to_array(self._delta.id_map).astype(np.int64)])
        return ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (float32, ``(n, dimension)``) under the chunk ids ``ids``, in place."""
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dimension)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._fold()
        if not self._index.is_trained:  # an 8-bit quantizer, fitted on the first vectors it gets
            self._index.train(vectors)
        self._index.add_with_ids(vectors, ids)
        self.high_id = max(self.high_id, int(ids.max()))
        if self.unsaved is not None:
            self.unsaved += len(ids)

    def remove(self, ids: Iterable[int]) -> int:
        """Remove the vectors of ``ids`` in place (unknown ids are ignored); returns how many were removed."""
        arr = np.fromiter(ids, dtype=np.int64)
        if arr.size == 0:
            return 0
        self._fold()
        if self.kind == "flat":
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(arr)))
        else:
            present = np.asarray([i for i in np.unique(arr).tolist() if self._in_base(i)], dtype=np.int64)
            self._removed = np.union1d(self._removed, present)  # HNSW cannot remove: tombstones
            removed = int(present.size)
        if self.unsaved is not None:
            self.unsaved += removed
        return removed

    def _not_removed(self) -> Any:
        """A selector of every id but the removed ones (built once per removed set, not per query)."""
        if not self._removed.size:
            return None
        cached = self.__dict__.get("_selector")
        if cached is None or cached[0] is not self._removed:
            batch = faiss.IDSelectorBatch(self._removed)
            cached = (self._removed, batch, faiss.IDSelectorNot(batch))
            self.__dict__["_selector"] = cached
        return cached[2]

    def _fold(self) -> None:
        """Move the delta into the base, in place (the writer's own index, before it changes it)."""
        if self._delta is None:
            return
        delta, self._delta = self._delta, None
        if delta.ntotal:
            vectors = flat_vectors(delta)
            if not self._index.is_trained:
                self._index.train(vectors)
            self._index.add_with_ids(vectors, faiss.vector_to_array(delta.id_map).astype(np.int64))
        if self._removed.size and self.kind == "flat":
            self._index.remove_ids(faiss.IDSelectorBatch(self._removed))
            self._removed = np.zeros(0, dtype=np.int64)

    def advanced(self, generation: int, added_ids: np.ndarray, added_vectors: np.ndarray,
                 removed_ids: np.ndarray) -> VectorIndex:
        """A new index at ``generation``: this one with ``removed_ids`` gone and the chunks added.

        This index is left as it is (a request may still read it); the new one shares its base
        and copies only the delta.
        """
        removed_ids = np.unique(np.asarray(removed_ids, dtype=np.int64))
        delta = new_base("flat", self.dimension)
        if self._delta is not None and self._delta.ntotal:
            old_ids = faiss.vector_to_array(self._delta.id_map).astype(np.int64)
            keep = ~np.isin(old_ids, removed_ids)
            if keep.any():
                delta.add_with_ids(flat_vectors(self._delta)[keep], old_ids[keep])
            removed_ids = removed_ids[~np.isin(removed_ids, old_ids)]
        from_base = [int(i) for i in removed_ids if self._in_base(int(i))]
        removed = np.union1d(self._removed, np.asarray(from_base, dtype=np.int64))
        added_ids = np.ascontiguousarray(added_ids, dtype=np.int64)
        if added_ids.size:
            delta.add_with_ids(np.ascontiguousarray(added_vectors, dtype=np.float32).reshape(-1, self.dimension),
                               added_ids)
        high = max(self.high_id, int(added_ids.max()) if added_ids.size else 0)
        advanced = VectorIndex(self.dimension, generation, self._index, index_id=self.index_id,
                               delta=delta if delta.ntotal else None, removed=removed, high_id=high)
        advanced.ef_search = self.ef_search
        return advanced

    def _in_base(self, chunk_id: int) -> bool:
        if chunk_id in self._removed:
            return False
        try:
            self._index.reconstruct(chunk_id)
        except RuntimeError:  # not in the id map
            return False
        return True

    def search(
        self, query: np.ndarray, k: int, *, subset: np.ndarray | None = None, threads: int = 0,
        ef_search: int | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids by inner product, best first, optionally within ``subset`` ids.

        On an HNSW index ``ef_search`` (default :attr:`ef_search`, at least ``k``) sets how many
        candidates a query explores. ``threads`` > 0 caps FAISS's OpenMP threads for this call. The cap is the calling thread's
        own (an OpenMP setting per thread), so concurrent searches and the caller's later FAISS
        calls are unaffected.
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dimension)
        k = min(k, self.count if subset is None else min(self.count, len(subset)))
        if k <= 0:
            return []
        if subset is not None and self.kind != "flat" and len(subset) <= EXACT_SUBSET_MAX:
            return self._search_exact(query, k, np.asarray(subset, dtype=np.int64))
        # The selectors are kept in local names: FAISS holds plain pointers to them.
        only = faiss.IDSelectorBatch(np.asarray(subset, dtype=np.int64)) if subset is not None else None
        not_removed = self._not_removed()
        both = faiss.IDSelectorAnd(only, not_removed) if only is not None and not_removed is not None else None
        base_sel = both or only or not_removed
        before = faiss.omp_get_max_threads()
        if threads > 0:
            faiss.omp_set_num_threads(threads)
        try:
            ef = max(k, ef_search or self.ef_search) if self.kind != "flat" else None
            hits = search_index(self._index, query, k, base_sel, ef)
            if self._delta is not None:
                hits += search_index(self._delta, query, k, only)
        finally:
            faiss.omp_set_num_threads(before)
        if self._delta is not None:
            hits.sort(key=lambda h: -h[1])
        return hits[:k]

    def _search_exact(self, query: np.ndarray, k: int, subset: np.ndarray) -> list[tuple[int, float]]:
        """The ``k`` best of ``subset`` by scoring each of its vectors held here (no graph search)."""
        held = self._sorted_base_ids()
        wanted = np.unique(subset)
        if self._removed.size:
            wanted = wanted[~np.isin(wanted, self._removed, assume_unique=True)]
        in_base = wanted[np.isin(wanted, held, assume_unique=True)]
        ids, scores = [in_base], [self._index.reconstruct_batch(in_base) @ query[0] if in_base.size
                                  else np.zeros(0, np.float32)]
        if self._delta is not None:
            for chunk_id, score in search_index(self._delta, query, k, faiss.IDSelectorBatch(subset)):
                ids.append(np.asarray([chunk_id], dtype=np.int64))
                scores.append(np.asarray([score], dtype=np.float32))
        all_ids, all_scores = np.concatenate(ids), np.concatenate(scores)
        best = np.lexsort((all_ids, -all_scores))[:k]
        return [(int(all_ids[i]), float(all_scores[i])) for i in best]

    def _sorted_base_ids(self) -> np.ndarray:
        """The base's ids, sorted; kept while the base holds as many (an HNSW base only grows)."""
        cached = self.__dict__.get("_sorted_ids")
        if cached is None or cached[0] is not self._index or cached[1] != self._index.ntotal:
            cached = (self._index, self._index.ntotal, np.sort(self._base_ids()))
            self.__dict__["_sorted_ids"] = cached
        return cached[2]

    def scores(self, query: np.ndarray, ids: Iterable[int]) -> dict[int, float]:
        """The inner product of ``query`` with the vector of each of ``ids`` held here, by id
        rather than by search (what :meth:`search` would score them; removed and unknown ids are
        left out). A hybrid search scores the chunks BM25 found and FAISS did not this way."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dimension)
        wanted = np.unique(np.fromiter(ids, dtype=np.int64))
        if self._removed.size:
            wanted = wanted[~np.isin(wanted, self._removed)]
        out: dict[int, float] = {}
        for source in (s for s in (self._delta, self._index) if s is not None):
            for chunk_id in wanted.tolist():
                if chunk_id in out:
                    continue
                try:
                    out[chunk_id] = float(source.reconstruct(chunk_id) @ query)
                except RuntimeError:  # not in this id map
                    continue
        return out

    def save(self, path: Path) -> None:
        """Write the index atomically to ``path`` (temp file, fsync, rename, fsync of the folder).

        The index is streamed to the file (no serialised copy in memory); the header, with the
        payload's length and CRC, is written last. A delta is first folded into the base, in place.

        Raises:
            StorageError: the file cannot be written (disk full, permissions); the old file is kept.
        """
        self._fold()
        write_vector_file(path, VectorFile(self.generation, self.index_id, self._index, self._removed), self.dimension)
        self.saved_generation = self.generation
        self.unsaved = 0

    @classmethod
    def load(cls, path: Path, dimension: int) -> VectorIndex:
        """Read a file written by :meth:`save` (see :func:`~bertsearch.indexer.vector_file.read_vector_file`).

        Raises:
            VectorFileError: the file is missing, truncated, fails its checksum, or has another dimension.
        """
        file = read_vector_file(path, dimension)
        loaded = cls(dimension, file.generation, file.index, index_id=file.index_id, removed=file.removed)
        loaded.saved_generation, loaded.unsaved = file.generation, 0
        return loaded

    @classmethod
    def from_batches(
        cls, dimension: int, generation: int, batches: Iterable[tuple[np.ndarray, np.ndarray]],
        *, kind: str = "flat", index_id: str = "",
    ) -> VectorIndex:
        """Build an index from ``(ids, vectors)`` batches, e.g. streamed from SQL (no re-encoding).

        An 8-bit quantizer is fitted on the first vectors (up to 65,536) before any is added.
        """
        vi = cls(dimension, generation, kind=kind, index_id=index_id)
        held: list[tuple[np.ndarray, np.ndarray]] = []
        for ids, vectors in batches:
            if vi._index.is_trained:
                vi.add(ids, vectors)
                continue
            held.append((ids, vectors))
            if sum(len(i) for i, _ in held) >= _TRAIN_SAMPLE:
                vi._train_and_add(held)
                held = []
        if held:
            vi._train_and_add(held)
        return vi

    def _train_and_add(self, held: list[tuple[np.ndarray, np.ndarray]]) -> None:
        vectors = np.concatenate([v for _, v in held]).astype(np.float32, copy=False)
        if not self._index.is_trained:
            self._index.train(vectors)
        self.add(np.concatenate([i for i, _ in held]), vectors)


def vectors_from_blobs(blobs: list[bytes], dimension: int) -> np.ndarray:
    """Stack float32 blobs (as stored in ``chunks.vector``) into an ``(n, dimension)`` array."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32, copy=False)
    return flat.reshape(len(blobs), dimension)

