"""The index: SQL rows (the source of truth) plus the FAISS file derived from them.

:meth:`Index.open` opens (or creates) an index, checks what it was built with, and loads the
FAISS file, rebuilding it from the vectors in SQL when it is missing, corrupt or stale.
Reading (:meth:`~Index.search`, :meth:`~Index.fetch_chunks`, :meth:`~Index.info`) never takes
the writer lock; :meth:`~Index.update` does (see :mod:`bertsearch.indexer.update`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bertsearch.indexer import store
from bertsearch.indexer.errors import (
    ConfigError,
    DocumentNotFound,
    IndexCorrupt,
    IndexLocked,
    IndexNotFound,
    ModelMismatch,
    StorageError,
)
from bertsearch.indexer.models import SCHEMA_VERSION, ChunkRow, Document, IndexState, utcnow
from bertsearch.indexer.settings import Settings, packaged_encoder_path
from bertsearch.indexer.update import IndexSummary
from bertsearch.indexer.vectors import FILE_NAME, VectorFileError, VectorIndex, vectors_from_blobs

if TYPE_CHECKING:
    from bertsearch.indexer.encoder import Encoder

__all__ = ["ChunkRecord", "DocumentRecord", "Index", "IndexSummary"]

log = logging.getLogger(__name__)

INDEX_TYPE = "faiss IndexIDMap2(IndexFlatIP): exact inner product of L2-normalised vectors (cosine)"
_STREAM_ROWS = 4096
_SUBSET_CACHE_SIZE = 16  # path filters whose chunk ids are kept


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk with the path and title of its document; ``text == document.text[start:end]``."""

    chunk_id: int
    document_id: int
    path: str
    title: str
    text: str
    start: int
    end: int
    ordinal: int


@dataclass(frozen=True)
class DocumentRecord:
    """An indexed document; ``path`` is relative to the indexed folder, with ``/`` separators."""

    id: int
    path: str
    title: str
    text: str
    content_hash: str
    size: int
    mtime: float
    n_chunks: int
    indexed_at: datetime


@dataclass(frozen=True)
class BuildParams:
    """What an index was built with (the ``index_state`` row, read once)."""

    generation: int
    model_id: str
    model_path: str
    dimension: int
    pooling: str
    chunk_tokens: int
    chunk_overlap: int
    schema_version: int
    root: str | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row: IndexState) -> BuildParams:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})


class Index:
    """An open bertsearch index. Use :meth:`open`; close it (or use it as a context manager)."""

    def __init__(self, settings: Settings, index_dir: Path, engine: Any, encoder: Encoder | None) -> None:
        self.settings = settings
        self.index_dir = index_dir
        self.url = settings.resolved_db_url()
        self._engine = engine
        self._sessions = store.sessions(engine)
        self._encoder = encoder
        self._params: BuildParams | None = None
        self._vectors: VectorIndex | None = None
        self._saved_generation: int | None = None  # the generation of the FAISS file on disk, if known good
        self._subsets: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()  # path filter -> chunk ids
        self._subsets_lock = threading.Lock()
        self.last_repair: str | None = None
        """Why the FAISS file was last rebuilt from SQL on open or refresh, if it was."""

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        create: bool = False,
        rebuild: bool = False,
        encoder: Encoder | None = None,
    ) -> Index:
        """Open the index described by ``settings``.

        Build parameters not set explicitly (``model_path``, ``chunk_tokens``, ``chunk_overlap``)
        are taken from the index; explicit ones must match it.

        Args:
            settings: Runtime settings; ``None`` reads the environment.
            create: Create the folder and the schema when there is no index yet.
            rebuild: Drop every document and start over with the current build parameters
                (needed after changing the model or the chunking).
            encoder: An already loaded encoder to use instead of loading one.

        Raises:
            IndexNotFound: No index exists there and ``create`` is false.
            ModelMismatch: The index was built with other build parameters.
            IndexLocked: ``rebuild``/``create`` while another process writes the index.
            StorageError, ConfigError: The database cannot be opened.
        """
        settings = settings if settings is not None else Settings()
        index_dir = Path(settings.index_dir).expanduser().resolve()
        url = settings.resolved_db_url()
        if create or rebuild:
            try:
                index_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the index folder {index_dir}: {exc.strerror or exc}") from exc
        else:
            _check_exists(index_dir, url)
        engine = store.open_engine(url)
        try:
            if not store.has_index(engine) and not (create or rebuild):
                raise IndexNotFound(_not_found(index_dir, url))
            store.migrate(engine)
            index = cls(settings, index_dir, engine, encoder)
            index._init_state(create=create or rebuild, rebuild=rebuild)
            index._load_vectors()
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StorageError(f"cannot read the index in {store.mask_url(url)}: "
                               f"{store.describe_db_error(exc, url)}") from exc
        except BaseException:
            engine.dispose()
            raise
        return index

    def _init_state(self, *, create: bool, rebuild: bool) -> None:
        params = self._read_params()
        if params is None and not create:
            raise IndexNotFound(_not_found(self.index_dir, self.url))
        if params is None or rebuild:
            with self.writer_lock():
                current = self._read_params()  # another process may have created it meanwhile
                if current is None or rebuild:
                    self._reset(current)
            params = self._read_params()
        assert params is not None
        self._params = params
        if params.schema_version > SCHEMA_VERSION:
            raise ConfigError(
                f"the index {self.index_dir} was written by a newer bertsearch (schema {params.schema_version}); "
                "upgrade bertsearch to read it"
            )
        self._check_chunking(params)
        if self._encoder is not None:
            self._check_model(self._encoder)

    def _reset(self, old: BuildParams | None) -> None:
        """Create the state row, or drop everything and restart with the current build parameters."""
        encoder = self._encoder or self._load_encoder(self._model_path(old))
        self._encoder = encoder
        values = dict(
            model_id=encoder.model_id,
            model_path=str(Path(self._model_path(old)).resolve()),
            dimension=encoder.dimension,
            pooling=encoder.pooling,
            chunk_tokens=self._chunk_param("chunk_tokens", old),
            chunk_overlap=self._chunk_param("chunk_overlap", old),
            schema_version=SCHEMA_VERSION,
            root=None,
            updated_at=utcnow(),
        )
        if values["chunk_overlap"] >= values["chunk_tokens"]:
            raise ConfigError(
                f"chunk overlap ({values['chunk_overlap']}) must be smaller than chunk size ({values['chunk_tokens']})"
            )
        with self.transaction() as s:
            if old is None:
                s.add(IndexState(id=1, generation=1, created_at=utcnow(), **values))
            else:
                s.execute(delete(ChunkRow))
                s.execute(delete(Document))
                s.execute(
                    update(IndexState).where(IndexState.id == 1)
                    .values(generation=IndexState.generation + 1, **values)
                )
        (self.index_dir / FILE_NAME).unlink(missing_ok=True)

    def _model_path(self, params: BuildParams | None) -> str:
        # Explicit setting > the model the index was built with (if still there) > packaged default.
        if self.settings.model_path:
            return self.settings.model_path
        if params is not None and Path(params.model_path).is_dir():
            return params.model_path
        return packaged_encoder_path()

    def _chunk_param(self, name: str, params: BuildParams | None) -> int:
        if name in self.settings.model_fields_set or params is None:
            return int(getattr(self.settings, name))
        return int(getattr(params, name))

    def _check_chunking(self, params: BuildParams) -> None:
        wanted = (self._chunk_param("chunk_tokens", params), self._chunk_param("chunk_overlap", params))
        built = (params.chunk_tokens, params.chunk_overlap)
        if wanted != built:
            raise ModelMismatch(
                f"the index {self.index_dir} was built with chunks of {built[0]} tokens (overlap {built[1]}), "
                f"not {wanted[0]} (overlap {wanted[1]}); run `bertsearch index PATH --rebuild` "
                "to rebuild it with the new chunking, or leave the chunk options unset"
            )

    def _check_model(self, encoder: Encoder) -> None:
        p = self.params
        built = (p.model_id, p.dimension, p.pooling)
        given = (encoder.model_id, encoder.dimension, encoder.pooling)
        if built != given:
            raise ModelMismatch(
                f"the index {self.index_dir} was built with the model {p.model_id} "
                f"(dimension {p.dimension}, {p.pooling} pooling), not {given[0]} "
                f"(dimension {given[1]}, {given[2]} pooling); run `bertsearch index PATH --rebuild` "
                "to re-encode everything with the new model, or use the model it was built with "
                f"({p.model_path})"
            )

    def _load_encoder(self, path: str) -> Encoder:
        from bertsearch.indexer.encoder import Encoder

        return Encoder(path, precision=self.settings.precision, batch_size=self.settings.batch_size)

    @property
    def encoder(self) -> Encoder:
        """The encoder of this index (loaded on first use, checked against the build parameters).

        Raises:
            ModelMismatch: The model is not the one the index was built with.
        """
        if self._encoder is None:
            encoder = self._load_encoder(self._model_path(self.params))
            self._check_model(encoder)
            self._encoder = encoder
        return self._encoder

    # -- state -------------------------------------------------------------------------------

    @property
    def params(self) -> BuildParams:
        """The build parameters, as read on open (or after the last rebuild)."""
        assert self._params is not None, "index is closed"
        return self._params

    @property
    def generation(self) -> int:
        """The SQL generation the in-memory FAISS index reflects."""
        return self._vectors.generation if self._vectors is not None else 0

    @property
    def vectors(self) -> VectorIndex:
        """The in-memory FAISS index."""
        assert self._vectors is not None, "index is closed"
        return self._vectors

    @property
    def vectors_path(self) -> Path:
        """The FAISS file."""
        return self.index_dir / FILE_NAME

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short-lived session inside one transaction, committed on success.

        Raises:
            StorageError: The database refused the write (disk full, server gone, locked).
        """
        try:
            with self._sessions() as s, s.begin():
                yield s
        except SQLAlchemyError as exc:
            raise StorageError(_write_error(self.url, exc)) from exc

    def writer_lock(self, timeout: float | None = None):
        """The writer lock of this index (see :func:`bertsearch.indexer.store.writer_lock`)."""
        wait = self.settings.lock_timeout if timeout is None else timeout
        return store.writer_lock(self.index_dir, timeout=wait, engine=self._engine)

    def reload_params(self) -> None:
        """Re-read the build parameters (after a writer changed the recorded root)."""
        self._params = self._read_params() or self._params

    def _read_params(self) -> BuildParams | None:
        with self._sessions() as s:
            row = s.get(IndexState, 1)
            return BuildParams.from_row(row) if row is not None else None

    def _sql_counts(self) -> tuple[int, int]:
        with self._sessions() as s:
            generation = s.scalar(select(IndexState.generation).where(IndexState.id == 1)) or 0
            count = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
        return int(generation), int(count)

    # -- the FAISS file ----------------------------------------------------------------------

    def _load_vectors(self) -> bool:
        """Load the FAISS file, or rebuild it from SQL when it does not match; True if rebuilt."""
        generation, count = self._sql_counts()
        dim = self.params.dimension
        try:
            vectors = VectorIndex.load(self.vectors_path, dim)
            if vectors.generation == generation and vectors.count == count:
                self._vectors = vectors
                self._saved_generation = generation
                return False
            reason = (f"stale (generation {vectors.generation} with {vectors.count} vectors; "
                      f"the database is at generation {generation} with {count} chunks)")
        except VectorFileError as exc:
            reason = str(exc)
        self._vectors = self._rebuild_vectors(generation)
        self._saved_generation = None
        if count or reason != "missing":
            self.last_repair = reason
            log.warning("FAISS file %s was %s; rebuilt it from the database (%d vectors)",
                        self.vectors_path, reason, self._vectors.count)
        self._save_if_unlocked()
        return True

    def _rebuild_vectors(self, generation: int) -> VectorIndex:
        dim = self.params.dimension
        # Stamped with the generation read *before* streaming: if a writer commits meanwhile,
        # the stamp is older than the content and the next open/refresh simply rebuilds again.
        vectors = VectorIndex(dim, generation)
        stmt = select(ChunkRow.id, ChunkRow.vector).order_by(ChunkRow.id)
        try:
            with self._engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=_STREAM_ROWS).execute(stmt)
                for part in result.partitions():
                    ids = np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part))
                    vectors.add(ids, vectors_from_blobs([r[1] for r in part], dim))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the vectors from {store.mask_url(self.url)}: "
                               f"{store.describe_db_error(exc, self.url)}") from exc
        except ValueError as exc:  # a blob that is not `dimension` float32 values
            raise IndexCorrupt(f"the vectors stored in {store.mask_url(self.url)} do not have dimension {dim}; "
                               "run `bertsearch index PATH --rebuild`") from exc
        return vectors

    def save_vectors(self) -> None:
        """Write the in-memory FAISS index to the FAISS file, unless the file already holds it.

        Call it while holding the writer lock.
        """
        if self._saved_generation == self.vectors.generation:
            return
        for leftover in self.index_dir.glob(f".{FILE_NAME}.*.tmp"):  # from a run killed while saving
            leftover.unlink(missing_ok=True)
        self.vectors.save(self.vectors_path)
        self._saved_generation = self.vectors.generation

    def _save_if_unlocked(self) -> None:
        # A reader persists its repair only when no writer is active (else the writer saves).
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            with store.writer_lock(self.index_dir, timeout=0):
                self.save_vectors()
        except (IndexLocked, StorageError, OSError) as exc:
            log.debug("not saving the repaired FAISS file: %s", exc)

    def refresh(self) -> bool:
        """Serve the newest committed generation (for long-running readers such as a server).

        Returns:
            Whether a newer generation was loaded.
        """
        generation, _ = self._sql_counts()
        if self._vectors is not None and generation == self._vectors.generation:
            return False
        old, new = self._params, self._read_params() or self._params
        self._params = new
        if old is not None and new is not None and _model_of(old) != _model_of(new):
            # Rebuilt with another model by `index --rebuild`: queries need that model now.
            self._encoder = None
        self._load_vectors()
        return True

    # -- reading -----------------------------------------------------------------------------

    def search(self, query_vector: Any, k: int, *, path_glob: str | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``query_vector`` as ``(chunk_id, cosine score)``, best first.

        Args:
            query_vector: A vector of the index's dimension (normalised here).
            k: How many chunks at most.
            path_glob: Only chunks of documents whose path matches this glob (the syntax of
                ``--include``: ``*.md``, ``guides/**``, ``docs/*.rst``). Exact within the subset.
        """
        query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.params.dimension:
            raise ConfigError(f"query vector has dimension {query.shape[0]}, the index {self.params.dimension}")
        norm = float(np.linalg.norm(query))
        if norm > 0:
            query = query / norm
        subset = None
        if path_glob:
            subset = self._chunk_ids_matching(path_glob)
            if subset.size == 0:
                return []
        return self.vectors.search(query, k, subset=subset, threads=self.settings.search_threads)

    def _chunk_ids_matching(self, path_glob: str) -> np.ndarray:
        """The chunk ids of the documents matching ``path_glob``, kept per generation for the next
        query with the same filter (a server answers many)."""
        key = (path_glob, self.generation)
        with self._subsets_lock:
            if key in self._subsets:
                self._subsets.move_to_end(key)
                return self._subsets[key]
        ids = self._query_chunk_ids_matching(path_glob)
        with self._subsets_lock:
            self._subsets[key] = ids
            while len(self._subsets) > _SUBSET_CACHE_SIZE:
                self._subsets.popitem(last=False)
        return ids

    def _query_chunk_ids_matching(self, path_glob: str) -> np.ndarray:
        from bertsearch.indexer.documents import compile_glob, glob_prefix, matches_any
        from pathlib import PurePosixPath

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

    def fetch_chunks(self, ids: list[int]) -> list[ChunkRecord]:
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

    def get_document(self, doc_id: int) -> DocumentRecord:
        """The document with this id.

        Raises:
            DocumentNotFound: No such document.
        """
        with self._sessions() as s:
            doc = s.get(Document, int(doc_id))
            if doc is None:
                raise DocumentNotFound(f"no document with id {doc_id}")
            return DocumentRecord(
                id=doc.id, path=doc.path, title=doc.title, text=doc.text, content_hash=doc.content_hash,
                size=doc.size, mtime=doc.mtime, n_chunks=doc.n_chunks, indexed_at=doc.indexed_at,
            )

    def info(self) -> dict[str, Any]:
        """What the index holds and how it was built (refreshes to the newest generation first)."""
        self.refresh()
        p = self.params
        with self._sessions() as s:
            documents = s.scalar(select(func.count()).select_from(Document)) or 0
            chunks = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
        return {
            "index_dir": str(self.index_dir),
            "db_url": store.mask_url(self.url),
            "root": p.root,
            "documents": int(documents),
            "chunks": int(chunks),
            "faiss_vectors": self.vectors.count,
            "generation": self.generation,
            "model_id": p.model_id,
            "model_path": p.model_path,
            "dimension": p.dimension,
            "pooling": p.pooling,
            "chunk_tokens": p.chunk_tokens,
            "chunk_overlap": p.chunk_overlap,
            "schema_version": p.schema_version,
            "index_type": INDEX_TYPE,
            "size_bytes": _folder_size(self.index_dir),
            "created_at": p.created_at.isoformat() if p.created_at else None,
            "updated_at": p.updated_at.isoformat() if p.updated_at else None,
        }

    # -- writing -----------------------------------------------------------------------------

    def update(
        self,
        root: str | Path,
        *,
        include: tuple[str, ...] | list[str] = (),
        exclude: tuple[str, ...] | list[str] = (),
        show_progress: bool = False,
    ) -> IndexSummary:
        """Bring the index up to date with a folder (see :func:`bertsearch.indexer.update.update`)."""
        from bertsearch.indexer.update import update as run_update

        return run_update(self, Path(root), include=include, exclude=exclude, show_progress=show_progress)

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the database connections and the in-memory index."""
        self._vectors = None
        self._engine.dispose()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _model_of(params: BuildParams) -> tuple[str, int, str]:
    return params.model_id, params.dimension, params.pooling


def _write_error(url: str, exc: BaseException) -> str:
    return f"cannot write to the database {store.mask_url(url)}: {store.describe_db_error(exc, url)}"


def _check_exists(index_dir: Path, url: str) -> None:
    try:
        parsed = make_url(url)
    except Exception:
        return  # open_engine reports it
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            raise IndexNotFound(_not_found(index_dir, url))


def _not_found(index_dir: Path, url: str) -> str:
    return (f"no index at {index_dir} (database {store.mask_url(url)}); "
            "create one with `bertsearch index PATH`")


def _folder_size(folder: Path) -> int:
    total = 0
    if folder.is_dir():
        for path in folder.rglob("*"):
            try:
                if path.is_file():
                    total += path.stat().st_size
            except OSError:
                pass
    return total
