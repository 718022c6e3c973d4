"""The read side's queries over one :class:`~bertsearch.indexer.snapshot.Snapshot`: dense and
lexical search (optionally within a path filter or a ``where`` filter), and chunks and documents
read from SQL.

A filter becomes the set of chunk ids it lets through, which both retrievers search within
(a FAISS ``IDSelector``; BM25 over those chunks' own terms, read from SQL once a filter and
generation, or, past :data:`~bertsearch.indexer.lexical_subset.EXACT_SUBSET_MAX` chunks, a
tantivy term set): the top k is cut after the filter, never before.
A ``where`` filter (:mod:`~bertsearch.indexer.filters`) is evaluated in Python over every
document's metadata, read from SQL once a generation with the chunk ids of each document (the
same on SQLite and PostgreSQL); the ids each filter lets through are kept for its next query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from sqlalchemy import select

from bertsearch.indexer.common.errors import ConfigError, DocumentNotFound
from bertsearch.indexer.filters import Where
from bertsearch.indexer.lexical_subset import EXACT_SUBSET_MAX, SubsetTerms
from bertsearch.indexer.models import API, ChunkRow, Document
from bertsearch.indexer.records import ChunkRecord, DocumentRecord
from bertsearch.indexer.faiss_kinds import DEFAULT_EF_SEARCH
from bertsearch.indexer.snapshot import Snapshot

__all__ = ["ChunkReader"]

_SUBSET_CACHE_SIZE = 16  # filters whose chunk ids are kept
_TERMS_CACHE_SIZE = 4  # filters whose chunks' terms are kept (at most EXACT_SUBSET_MAX chunks each)
_TEXT_BATCH = 10_000  # ids in one SQL statement (PostgreSQL takes at most 65,535 parameters)


class ChunkReader:
    """Queries of one open index (thread-safe; shared by every request of a server)."""

    def __init__(self, sessions: Any, search_threads: int, ef_search: int = DEFAULT_EF_SEARCH) -> None:
        self._sessions = sessions
        self._threads = search_threads
        self._ef_search = ef_search
        self._subsets: OrderedDict[tuple[str, int], Any] = OrderedDict()  # filter -> chunk ids
        self._terms: OrderedDict[tuple[str, int], Any] = OrderedDict()  # filter -> its chunks' terms
        self._subsets_lock = threading.Lock()
        self._catalog: _Catalog | None = None  # every document's fields and chunk ids, one generation
        self._catalog_lock = threading.Lock()

    def dense(self, snapshot: Snapshot, query_vector: Any, k: int, *, path_glob: str | None = None,
              where: Where | None = None, ef_search: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``query_vector`` as ``(chunk_id, cosine score)``, best first.

        Args:
            snapshot: The generation to search.
            query_vector: A vector of the index's dimension (normalised here).
            k: How many chunks at most.
            path_glob: Only chunks of documents whose path matches this glob (the syntax of
                ``--include``: ``*.md``, ``guides/**``, ``docs/*.rst``). Exact within the subset
                on a flat index, and on an HNSW one when the subset is small
                (:data:`~bertsearch.indexer.vectors.EXACT_SUBSET_MAX`); filtered inside the
                graph search otherwise.
            where: Only chunks of documents this filter lets through (with ``path_glob``: both).
            ef_search: HNSW candidates to explore (default: the setting); ignored by a flat index.
        """
        query = _unit_query(snapshot, query_vector)
        subset = self.allowed(snapshot, path_glob, where)
        if subset is not None and subset.size == 0:
            return []
        return snapshot.vectors.search(query, k, subset=subset, threads=self._threads,
                                       ef_search=ef_search or self._ef_search)

    def dense_scores(self, snapshot: Snapshot, query_vector: Any, ids: list[int]) -> dict[int, float]:
        """The cosine score of ``query_vector`` for each chunk of ``ids`` (by id, not by search;
        chunks not in ``snapshot`` are left out)."""
        return snapshot.vectors.scores(_unit_query(snapshot, query_vector), ids)

    def lexical_scores(self, snapshot: Snapshot, query: str, ids: list[int]) -> dict[int, float]:
        """The BM25 score of ``query`` for each chunk of ``ids`` (by id, not by search; 0.0 for a
        chunk without any of the query's terms)."""
        return snapshot.lexical.scores(query, ids)

    def lexical(self, snapshot: Snapshot, query: str, k: int, *, path_glob: str | None = None,
                where: Where | None = None) -> list[tuple[int, float]]:
        """The ``k`` best chunks for the words of ``query`` by BM25 as ``(chunk_id, score)``, best
        first (within the filters, as :meth:`dense`)."""
        subset = self.allowed(snapshot, path_glob, where)
        if subset is None:
            return snapshot.lexical.search(query, k)
        if 0 < subset.size <= EXACT_SUBSET_MAX:
            key = _filter_key(snapshot, path_glob, where)
            terms: SubsetTerms = self._cached(self._terms, _TERMS_CACHE_SIZE, key,
                                              lambda: snapshot.lexical.subset_terms(self._chunk_texts(subset)))
            return snapshot.lexical.search(query, k, subset=terms)
        return snapshot.lexical.search(query, k, subset=subset) if subset.size else []

    def allowed(self, snapshot: Snapshot, path_glob: str | None, where: Where | None) -> np.ndarray | None:
        """The chunk ids both filters let through (``None``: no filter), kept per generation."""
        if where is None:
            return self.subset(snapshot, path_glob)
        return self._cached(self._subsets, _SUBSET_CACHE_SIZE, _filter_key(snapshot, path_glob, where),
                            lambda: self._matching(snapshot, where.and_path(path_glob)))

    def _chunk_texts(self, ids: np.ndarray) -> list[tuple[int, str]]:
        """``(chunk_id, text)`` of these chunks, read from SQL in batches."""
        texts: list[tuple[int, str]] = []
        with self._sessions() as s:
            for lo in range(0, ids.size, _TEXT_BATCH):
                batch = [int(i) for i in ids[lo:lo + _TEXT_BATCH]]
                texts.extend((int(i), text) for i, text in
                             s.execute(select(ChunkRow.id, ChunkRow.text).where(ChunkRow.id.in_(batch))))
        return texts

    def _matching(self, snapshot: Snapshot, where: Where) -> np.ndarray:
        catalog = self.catalog(snapshot)
        docs = np.fromiter((doc_id for doc_id, fields in catalog.documents if where.matches(fields)), dtype=np.int64)
        return catalog.chunk_ids[np.isin(catalog.chunk_documents, docs)]

    def catalog(self, snapshot: Snapshot) -> _Catalog:
        """Every document's filter fields and every chunk's document, read once for ``snapshot``'s generation."""
        with self._catalog_lock:
            if self._catalog is None or self._catalog.generation != snapshot.generation:
                self._catalog = None  # let go of the old one before reading the new
                self._catalog = self._read_catalog(snapshot.generation)
            return self._catalog

    def _read_catalog(self, generation: int) -> _Catalog:
        documents: list[tuple[int, dict[str, Any]]] = []
        with self._sessions() as s:
            for doc_id, path, source, meta in s.execute(select(Document.id, Document.path, Document.source,
                                                               Document.meta)):
                documents.append((doc_id, {**(meta or {}), "path": path, "source": source}))
            rows = s.execute(select(ChunkRow.id, ChunkRow.document_id)).all()
        pairs = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        return _Catalog(generation, documents, np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1]))

    def _cached(self, cache: OrderedDict[tuple[str, int], Any], size: int, key: tuple[str, int],
                compute: Any) -> Any:
        with self._subsets_lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        value = compute()
        with self._subsets_lock:
            cache[key] = value
            while len(cache) > size:
                cache.popitem(last=False)
        return value

    def subset(self, snapshot: Snapshot, path_glob: str | None) -> np.ndarray | None:
        """The chunk ids of the documents matching ``path_glob`` (``None``: no filter), kept per
        generation for the next query with the same filter (a server answers many)."""
        if not path_glob:
            return None
        return self._cached(self._subsets, _SUBSET_CACHE_SIZE, _filter_key(snapshot, path_glob, None),
                            lambda: self._query_subset(path_glob))

    def _query_subset(self, path_glob: str) -> np.ndarray:
        from bertsearch.indexer.documents import compile_glob, glob_prefix, matches_any

        globs = [compile_glob(path_glob)]
        prefix = glob_prefix(path_glob)
        # No id list in the statement (PostgreSQL takes at most 65,535 parameters): the chunks of
        # the documents under the literal prefix, matched by path here.
        stmt = select(ChunkRow.id, Document.path).join(Document, Document.id == ChunkRow.document_id)
        if prefix:
            stmt = stmt.where(Document.path.startswith(prefix, autoescape=True))
        matched: dict[str, bool] = {}
        ids: list[int] = []
        with self._sessions() as s:
            for chunk_id, path in s.execute(stmt):
                hit = matched.get(path)
                if hit is None:
                    hit = matched[path] = matches_any(globs, PurePosixPath(path))
                if hit:
                    ids.append(chunk_id)
        return np.asarray(ids, dtype=np.int64)

    def fetch(self, ids: list[int]) -> list[ChunkRecord]:
        """The chunks with these ids, in the same order (ids no longer in SQL are left out)."""
        if not ids:
            return []
        stmt = (
            select(ChunkRow.id, ChunkRow.document_id, Document.path, Document.title, ChunkRow.text,
                   ChunkRow.start, ChunkRow.end, ChunkRow.ordinal)
            .join(Document, Document.id == ChunkRow.document_id)
            .where(ChunkRow.id.in_([int(i) for i in ids]))
        )
        with self._sessions() as s:
            found = {row[0]: ChunkRecord(*row) for row in s.execute(stmt)}
        return [found[i] for i in ids if i in found]

    def document(self, doc_id: int) -> DocumentRecord:
        """The document with this id.

        Raises:
            DocumentNotFound: No such document.
        """
        if not 0 < int(doc_id) < 2**63:  # outside every database's integer keys
            raise DocumentNotFound(f"no document with id {doc_id}")
        with self._sessions() as s:
            doc = s.get(Document, int(doc_id))
            if doc is None:
                raise DocumentNotFound(f"no document with id {doc_id}")
            return _record(doc)

    def document_by_key(self, key: str, source: str = API) -> DocumentRecord:
        """The document put under ``key`` (``source`` ``folder``: the file at that relative path).

        Raises:
            DocumentNotFound: No such document.
        """
        with self._sessions() as s:
            doc = s.scalar(select(Document).where(Document.source == source, Document.path == key))
            if doc is None:
                raise DocumentNotFound(f"no document with the key {key!r}" if source == API
                                       else f"no document at the path {key!r}")
            return _record(doc)


@dataclass(frozen=True)
class _Catalog:
    """What a ``where`` filter is evaluated over, for one generation: ``(document id, fields)``
    of every document (its metadata, ``path`` and ``source``), and each chunk's id and document."""

    generation: int
    documents: list[tuple[int, dict[str, Any]]]
    chunk_ids: np.ndarray
    chunk_documents: np.ndarray


def _filter_key(snapshot: Snapshot, path_glob: str | None, where: Where | None) -> tuple[str, int]:
    """What the chunks a filter lets through are kept under: the filter and the generation."""
    if where is None:
        return str(path_glob), snapshot.generation
    return "where:" + where.and_path(path_glob).key, snapshot.generation


def _record(doc: Document) -> DocumentRecord:
    return DocumentRecord(
        id=doc.id, path=doc.path, title=doc.title, text=doc.text, content_hash=doc.content_hash, size=doc.size,
        mtime=doc.mtime, n_chunks=doc.n_chunks, indexed_at=doc.indexed_at, source=doc.source, metadata=doc.meta,
    )


def _unit_query(snapshot: Snapshot, query_vector: Any) -> np.ndarray:
    """``query_vector`` as float32, L2-normalised (a zero vector as it is).

    Raises:
        ConfigError: It is not of the index's dimension.
    """
    dim = snapshot.params.dimension
    query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    if query.shape[0] != dim:
        raise ConfigError(f"query vector has dimension {query.shape[0]}, the index {dim}")
    norm = float(np.linalg.norm(query))
    return query / norm if norm > 0 else query
