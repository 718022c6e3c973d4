"""The index: SQL rows (the source of truth) plus the FAISS file derived from them.

:meth:`Index.open` opens (or creates) an index, checks what it was built with, and loads the
FAISS file, rebuilding it from the vectors in SQL when it is missing, corrupt or stale.
Reading (:meth:`~Index.search`, :meth:`~Index.fetch_chunks`, :meth:`~Index.info`) never takes
the writer lock; :meth:`~Index.update` does (see :mod:`bertsearch.indexer.update`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import replace
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from bertsearch.indexer import store
from bertsearch.indexer.common.errors import (
    ConfigError,
    IndexLocked,
    IndexNotFound,
    ModelMismatch,
    StorageError,
)
from bertsearch.indexer.commit import Batch, Committed, bump_generation, write_batch
from bertsearch.indexer.common.precision import cpu_has_native_bf16, family, resolve, use_bf16
from bertsearch.indexer.lexical import LexicalIndex, LexicalWriter
from bertsearch.indexer.models import SCHEMA_VERSION, ChunkRemoval, ChunkRow, Document, IndexState, utcnow
from bertsearch.indexer.reading import ChunkReader
from bertsearch.indexer.records import ChunkRecord, DocumentRecord
from bertsearch.indexer.common.settings import Settings, packaged_encoder_path
from bertsearch.indexer.snapshot import (
    BuildParams, Snapshot, advance_snapshot, build_vectors, chunk_texts, load_snapshot, read_params,
)
from bertsearch.indexer.vectors import FILE_NAME, HNSW_M, VectorIndex, choose_kind

if TYPE_CHECKING:
    from bertsearch.indexer.encoder import Encoder
    from bertsearch.indexer.update import IndexSummary

__all__ = ["BuildParams", "ChunkRecord", "DocumentRecord", "Index", "Snapshot"]

log = logging.getLogger(__name__)

# The writer rewrites the FAISS file once this many vectors (or 1% of them) changed since it
# was written: until then readers bring the file forward from SQL, so a small run on a large
# index writes in proportion to its change.
SAVE_AFTER = 10_000

# Generations of chunk removals kept in SQL behind the FAISS file: a reader that far behind
# (or further) loads the file and brings it forward instead.
REMOVALS_KEPT = 1000

INDEX_TYPES = {
    "flat": "faiss IndexIDMap2(IndexFlatIP): exact inner product of L2-normalised vectors (cosine)",
    "hnsw": f"faiss IndexIDMap2(IndexHNSWFlat, M={HNSW_M}): approximate, removed chunks filtered out",
    "hnsw-sq8": f"faiss IndexIDMap2(IndexHNSWSQ 8-bit, M={HNSW_M}): approximate, removed chunks filtered out",
}


# Over 250 lines: the one facade of an open index (opening checks, snapshots, commits); the
# work itself lives in snapshot.py, reading.py, commit.py and update.py. Next split: build rules.
class Index:
    """An open bertsearch index. Use :meth:`open`; close it (or use it as a context manager)."""

    def __init__(self, settings: Settings, index_dir: Path, engine: Any, encoder: Encoder | None) -> None:
        self.settings = settings
        self.index_dir = index_dir
        self.url = settings.resolved_db_url()
        self._engine = engine
        self._sessions = store.sessions(engine)
        self._encoder = encoder
        # Loading a model from two threads at once breaks transformers' lazy imports; a refresh
        # that drops the encoder after a model change takes the same lock.
        self._encoder_lock = threading.RLock()
        self._params: BuildParams | None = None  # while opening, before the first snapshot
        self._snapshot: Snapshot | None = None
        self._writing = 0  # writer_lock depth held by this process
        self._lock_guard: store.LockGuard | None = None
        self._lexical_writer: LexicalWriter | None = None
        self._chunks = ChunkReader(self._sessions, settings.search_threads, settings.ef_search)
        self._last_repair: str | None = None
        # `--rebuild`: the new build's values, applied by the next update in one transaction
        # (readers serve the old generation until it commits; a failed rebuild changes nothing).
        self._pending_rebuild: dict[str, Any] | None = None
        self._rebuild_session: Session | None = None
        self._rebuild_params: BuildParams | None = None

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
            rebuild: Start over with the current build parameters (needed after changing the
                model or the chunking): the next :meth:`update` re-reads and re-encodes every
                document in one transaction that replaces the old index when it commits, so
                readers serve the old index until then and a failed rebuild leaves it intact.
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
            if store.needs_migration(engine):
                # Under the writer lock: two processes never migrate at once, and no writer
                # commits in the middle of a migration.
                index_dir.mkdir(parents=True, exist_ok=True)
                with store.writer_lock(index_dir, timeout=settings.lock_timeout, engine=engine):
                    store.migrate(engine)
            index = cls(settings, index_dir, engine, encoder)
            index._init_state(create=create or rebuild, rebuild=rebuild)
            index._serve(index._load_snapshot(index.params))
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
        if params is None:
            with self.writer_lock():
                current = self._read_params()  # another process may have created it meanwhile
                if current is None:
                    self._create()
            params = self._read_params()
        elif rebuild:
            self._pending_rebuild = self._build_values(params)
        assert params is not None
        self._params = params
        if params.schema_version > SCHEMA_VERSION:
            raise ConfigError(
                f"the index {self.index_dir} was written by a newer bertsearch (schema {params.schema_version}); "
                "upgrade bertsearch to read it"
            )
        if "index_type" in self.settings.model_fields_set and self.settings.index_type != (params.index_type or "auto"):
            if not create:
                raise ModelMismatch(
                    f"the index {self.index_dir} uses the index type {params.index_type or 'auto'}, not "
                    f"{self.settings.index_type}; change it with `bertsearch index PATH --index-type "
                    f"{self.settings.index_type}` (the FAISS index is rebuilt from SQL, nothing is re-encoded)")
            with self.writer_lock(), self.transaction() as s:  # the writer rebuilds FAISS at its next save
                s.execute(update(IndexState).where(IndexState.id == 1).values(index_type=self.settings.index_type))
            params = self._read_params()
            assert params is not None
            self._params = params
        if self._pending_rebuild is None:
            self._check_chunking(params)
            self._encoder_precision(params)  # a set precision that does not make these vectors
            if self._encoder is not None:
                self._check_model(self._encoder)

    def _build_values(self, old: BuildParams | None) -> dict[str, Any]:
        """The ``index_state`` values of a new build with the current settings (loads the encoder)."""
        encoder = self._encoder or self._load_encoder(self._model_path(old), None)
        self._encoder = encoder
        values = dict(
            model_id=encoder.model_id,
            model_path=str(Path(self._model_path(old)).resolve()),
            dimension=encoder.dimension,
            pooling=encoder.pooling,
            precision=encoder.precision,
            chunk_tokens=self._chunk_param("chunk_tokens", old),
            chunk_overlap=self._chunk_param("chunk_overlap", old),
            index_type=(self.settings.index_type if old is None or "index_type" in self.settings.model_fields_set
                        else old.index_type),
            schema_version=SCHEMA_VERSION,
            root=None,
            updated_at=utcnow(),
        )
        if values["chunk_overlap"] >= values["chunk_tokens"]:
            raise ConfigError(
                f"chunk overlap ({values['chunk_overlap']}) must be smaller than chunk size ({values['chunk_tokens']})"
            )
        return values

    def _create(self) -> None:
        values = self._build_values(None)
        with self.transaction() as s:
            s.add(IndexState(id=1, generation=1, created_at=utcnow(), index_id=uuid.uuid4().hex, removals_from=1,
                             **values))

    @property
    def rebuild_pending(self) -> bool:
        """Whether this index was opened with ``rebuild`` and the rebuild has not run yet."""
        return self._pending_rebuild is not None

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """Replace the whole index in one transaction: inside, every document is written anew
        (:meth:`commit` and :meth:`transaction` join this transaction) and :attr:`params` are the
        new ones. On a clean exit it commits and the derived indexes are rebuilt from SQL; on an
        error (or a kill) nothing of it was committed and the old index is served as before.
        Call it while holding :meth:`writer_lock`.
        """
        assert self._writing and self._pending_rebuild is not None, "rebuilding needs the writer lock and --rebuild"
        try:
            with self._sessions() as s, s.begin():
                s.execute(delete(ChunkRow))
                s.execute(delete(Document))
                s.execute(update(IndexState).where(IndexState.id == 1).values(**self._pending_rebuild))
                generation = bump_generation(s)
                # Every chunk is new: readers load this generation whole, so no removal is logged.
                s.execute(delete(ChunkRemoval))
                s.execute(update(IndexState).where(IndexState.id == 1).values(removals_from=generation))
                self._rebuild_params = BuildParams.from_row(s.get(IndexState, 1))
                self._rebuild_session = s
                try:
                    yield
                    if self._lock_guard is not None:
                        self._lock_guard.verify(s)
                finally:
                    self._rebuild_session = None
                    self._rebuild_params = None
        except SQLAlchemyError as exc:
            raise StorageError(_write_error(self.url, exc)) from exc
        self._pending_rebuild = None
        self._close_lexical_writer()
        params = self._read_params()
        assert params is not None
        # FAISS and lexical rebuilt from SQL (no re-encoding); the old files are stale now.
        self._serve(load_snapshot(self._engine, self._sessions, self.index_dir, self.url, params,
                                  may_write=True, expected=True))
        log.info("rebuilt %s: generation %d", self.index_dir, params.generation)

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
        if family(p.precision) != family(encoder.precision):
            raise ModelMismatch(_precision_mismatch(self.index_dir, p.precision, encoder.precision))
        if built != given:
            raise ModelMismatch(
                f"the index {self.index_dir} was built with the model {p.model_id} "
                f"(dimension {p.dimension}, {p.pooling} pooling), not {given[0]} "
                f"(dimension {given[1]}, {given[2]} pooling); run `bertsearch index PATH --rebuild` "
                "to re-encode everything with the new model, or use the model it was built with "
                f"({p.model_path})"
            )

    def _load_encoder(self, path: str, params: BuildParams | None) -> Encoder:
        from bertsearch.indexer.encoder import Encoder

        return Encoder(path, precision=self._encoder_precision(params), batch_size=self.settings.batch_size,
                       cache_dir=self.settings.cache_dir)

    def _encoder_precision(self, params: BuildParams | None) -> str:
        """How to encode for an index built with ``params`` (``None``: a new build, which takes the
        setting). A set precision must make the index's vectors (else :class:`ModelMismatch`);
        ``auto`` keeps int8 for an int8 index and picks bf16 or fp32 by the CPU for the others."""
        wanted = self.settings.precision
        if params is None:
            return resolve(wanted)
        if wanted == "auto":
            return "int8" if family(params.precision) == "int8" else ("bf16" if use_bf16("auto") else "fp32")
        if family(wanted) != family(params.precision):
            raise ModelMismatch(_precision_mismatch(self.index_dir, params.precision, wanted))
        return wanted

    @property
    def encoder(self) -> Encoder:
        """The encoder of this index (loaded on first use, checked against the build parameters).

        Raises:
            ModelMismatch: The model is not the one the index was built with.
        """
        with self._encoder_lock:
            if self._encoder is None:
                encoder = self._load_encoder(self._model_path(self.params), self.params)
                self._check_model(encoder)
                self._encoder = encoder
            return self._encoder

    # -- state -------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The generation being served: take it once per request and read only from it."""
        snapshot = self._snapshot
        assert snapshot is not None, "index is closed"
        return snapshot

    @property
    def params(self) -> BuildParams:
        """The build parameters of the snapshot being served (inside :meth:`rebuilding`: the new build's)."""
        if self._rebuild_params is not None:
            return self._rebuild_params
        return self._snapshot.params if self._snapshot is not None else self._opening_params()

    def _opening_params(self) -> BuildParams:
        assert self._params is not None, "index is closed"
        return self._params

    @property
    def generation(self) -> int:
        """The SQL generation the snapshot being served reflects."""
        return self._snapshot.generation if self._snapshot is not None else 0

    @property
    def vectors(self) -> VectorIndex:
        """The FAISS index of the snapshot being served."""
        return self.snapshot.vectors

    @property
    def last_repair(self) -> str | None:
        """Why a derived index (FAISS, lexical) was last rebuilt from SQL on open or refresh, if it was."""
        return self._last_repair

    @property
    def vectors_path(self) -> Path:
        """The FAISS file."""
        return self.index_dir / FILE_NAME

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short-lived session inside one transaction, committed on success.

        Inside :meth:`rebuilding` it is the rebuild's one transaction.

        Raises:
            StorageError: The database refused the write (disk full, server gone, locked).
        """
        if self._rebuild_session is not None:
            yield self._rebuild_session
            return
        try:
            with self._sessions() as s, s.begin():
                yield s
                if self._lock_guard is not None:
                    self._lock_guard.verify(s)  # a writer that lost its lock writes nothing
        except SQLAlchemyError as exc:
            raise StorageError(_write_error(self.url, exc)) from exc

    @contextmanager
    def writer_lock(self, timeout: float | None = None) -> Iterator[None]:
        """The writer lock of this index (see :func:`bertsearch.indexer.store.writer_lock`).

        While it is held, this process repairs the derived files on disk and commits.
        """
        wait = self.settings.lock_timeout if timeout is None else timeout
        with store.writer_lock(self.index_dir, timeout=wait, engine=self._engine) as guard:
            self._writing += 1
            self._lock_guard = guard
            try:
                yield
            finally:
                self._writing -= 1
                if not self._writing:
                    self._lock_guard = None
                    self._close_lexical_writer()

    def _read_params(self) -> BuildParams | None:
        return read_params(self._sessions)

    # -- snapshots -------------------------------------------------------------------------------

    def _load_snapshot(self, params: BuildParams) -> Snapshot:
        """The newest generation, complete; repairs are written back when no other writer runs."""
        if self._writing:
            return load_snapshot(self._engine, self._sessions, self.index_dir, self.url, params, may_write=True)
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            with store.writer_lock(self.index_dir, timeout=0):
                snapshot = load_snapshot(self._engine, self._sessions, self.index_dir, self.url, params,
                                         may_write=True)
                self._save_vectors_of(snapshot, lazy=True)
                return snapshot
        except (IndexLocked, StorageError, OSError) as exc:  # another writer, or a folder it cannot write
            log.debug("not writing repairs of %s; they stay in memory: %s", self.index_dir, exc)
        return load_snapshot(self._engine, self._sessions, self.index_dir, self.url, params, may_write=False)

    def _serve(self, snapshot: Snapshot) -> None:
        if snapshot.repaired:
            self._last_repair = snapshot.repaired
        self._snapshot = snapshot  # the one assignment that moves readers to the next generation

    def refresh(self) -> bool:
        """Serve the newest committed generation (for long-running readers such as a server).

        The next snapshot is built completely before it replaces the current one.

        Returns:
            Whether a newer generation was loaded.
        """
        params = self._read_params()  # the poll: one row, by its primary key
        current = self._snapshot
        if params is None or (current is not None and params.generation == current.generation):
            return False
        old = current.params if current is not None else None
        snapshot = None
        if current is not None and not self._writing:
            # What changed since, applied beside the shared base: costs the change, not the index.
            snapshot = advance_snapshot(self._engine, self._sessions, self.index_dir, self.url, current, params)
        if snapshot is None:
            snapshot = self._load_snapshot(params)
        with self._encoder_lock:
            if old is not None and old.model != params.model:
                # Rebuilt with another model by `index --rebuild`: queries need that model now.
                self._encoder = None
            self._serve(snapshot)
        return True

    def ping(self) -> None:
        """Read the generation row: a check that the database answers.

        Raises:
            StorageError: It does not.
        """
        try:
            self._read_params()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the index in {store.mask_url(self.url)}: "
                               f"{store.describe_db_error(exc, self.url)}") from exc

    # -- writing -------------------------------------------------------------------------------

    def commit(self, batch: Batch, root: Path | None = None) -> Committed:
        """Write ``batch`` to SQL in one transaction that bumps the generation, then apply it to
        the derived indexes. Call it while holding :meth:`writer_lock`.

        In the writer's own process the FAISS index is advanced in place (a copy per commit would
        cost the whole index); readers in other processes load their own snapshots.

        Raises:
            StorageError: The database or the lexical index refused the write.
        """
        assert self._writing, "commit needs the writer lock"
        if self._rebuild_session is not None:  # the derived indexes follow when the rebuild commits
            return write_batch(self._rebuild_session, batch, self.params.dimension, root)
        snapshot = self.snapshot
        lexical_writer = self._lexical_writer_for(snapshot)  # before the commit: it may rebuild from SQL
        with self.transaction() as s:
            done = write_batch(s, batch, self.params.dimension, root)
        vectors = snapshot.vectors
        vectors.remove(done.removed_chunk_ids)
        vectors.add(done.added_chunk_ids, done.vectors)
        vectors.generation = done.generation
        lexical = lexical_writer.apply(
            done.generation, done.removed_chunk_ids, zip(done.added_chunk_ids.tolist(), done.added_texts))
        self._serve(snapshot.advanced(self._read_params() or snapshot.params, lexical))
        return done

    def _lexical_writer_for(self, snapshot: Snapshot) -> LexicalWriter:
        if self._lexical_writer is None:
            lexical = snapshot.lexical
            if lexical.path is None or lexical.generation != snapshot.generation:
                lexical = LexicalIndex.rebuild_on_disk(
                    self.index_dir, snapshot.generation, chunk_texts(self._engine, self.url),
                    snapshot.params.index_id or "")
            self._lexical_writer = LexicalWriter(lexical)
        return self._lexical_writer

    def _close_lexical_writer(self) -> None:
        if self._lexical_writer is not None:
            self._lexical_writer.close()
            self._lexical_writer = None

    def save_vectors(self, *, lazy: bool = False) -> None:
        """Write the served FAISS index to the FAISS file, unless the file already holds it, and
        drop the removal log older than :data:`REMOVALS_KEPT` generations before the file.
        ``lazy``: not while fewer than :data:`SAVE_AFTER` vectors changed since the file was
        written and SQL's removal log reaches back to it (readers bring it forward).

        Call it while holding the writer lock.
        """
        snapshot = self.snapshot
        wanted = choose_kind(snapshot.params.index_type, snapshot.vectors.count)
        why = snapshot.vectors.rebuild_reason(wanted) if self._rebuild_session is None else None
        if why is not None:
            # Another kind for this size (or a setting changed), or an HNSW graph full of removed
            # vectors: rebuilt from SQL (no re-encoding) while the old one still serves.
            log.info("rebuilding the FAISS index of %s from the database: %s", self.index_dir, why)
            fresh = build_vectors(self._engine, self.url, snapshot.params, snapshot.generation,
                                  snapshot.vectors.count, snapshot.params.index_id or "")
            snapshot = replace(snapshot, vectors=fresh, repaired=None)
            self._serve(snapshot)
        vectors = snapshot.vectors
        self._save_vectors_of(snapshot, lazy=lazy)
        if self._rebuild_session is None and vectors.saved_generation is not None:
            horizon = vectors.saved_generation - REMOVALS_KEPT
            if horizon > (self.params.removals_from or 0):
                with self.transaction() as s:
                    s.execute(delete(ChunkRemoval).where(ChunkRemoval.generation <= horizon))
                    s.execute(update(IndexState).where(IndexState.id == 1).values(removals_from=horizon))

    def _save_vectors_of(self, snapshot: Snapshot, *, lazy: bool = False) -> None:
        vectors = snapshot.vectors
        for leftover in self.index_dir.glob(f".{FILE_NAME}.*.tmp"):  # from a run killed while saving
            leftover.unlink(missing_ok=True)
        if vectors.saved_generation == vectors.generation:
            return
        removals_from = snapshot.params.removals_from
        if (lazy and vectors.saved_generation is not None and vectors.unsaved is not None
                and vectors.unsaved < max(SAVE_AFTER, vectors.count // 100)
                and removals_from is not None and removals_from <= vectors.saved_generation
                and self.vectors_path.is_file()):
            return
        vectors.save(self.vectors_path)

    def record_run(self, root: Path, touched: list[dict[str, Any]]) -> None:
        """Record the indexed folder and the refreshed mtimes of unchanged files (no new generation)."""
        with self.transaction() as s:
            if touched:
                s.execute(update(Document), touched)
            s.execute(update(IndexState).where(IndexState.id == 1).values(root=str(root), updated_at=utcnow()))
        params = self._read_params()
        if params is not None and self._snapshot is not None:
            self._serve(self._snapshot.advanced(params, self._snapshot.lexical))

    # -- reading -----------------------------------------------------------------------------

    @property
    def reader(self) -> ChunkReader:
        """Searches over a snapshot and reads chunks and documents from SQL."""
        return self._chunks

    def search(self, query_vector: Any, k: int, *, path_glob: str | None = None,
               snapshot: Snapshot | None = None, ef_search: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``query_vector`` (see :meth:`ChunkReader.dense`)."""
        return self._chunks.dense(snapshot or self.snapshot, query_vector, k, path_glob=path_glob,
                                  ef_search=ef_search)

    def search_lexical(self, query: str, k: int, *, path_glob: str | None = None,
                       snapshot: Snapshot | None = None) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by BM25 (see :meth:`ChunkReader.lexical`)."""
        return self._chunks.lexical(snapshot or self.snapshot, query, k, path_glob=path_glob)

    def dense_scores(self, query_vector: Any, ids: list[int], *, snapshot: Snapshot | None = None) -> dict[int, float]:
        """The cosine score of ``query_vector`` for each of the chunks ``ids`` (see :meth:`ChunkReader.dense_scores`)."""
        return self._chunks.dense_scores(snapshot or self.snapshot, query_vector, ids)

    def lexical_scores(self, query: str, ids: list[int], *, snapshot: Snapshot | None = None) -> dict[int, float]:
        """The BM25 score of ``query`` for each of the chunks ``ids`` (see :meth:`ChunkReader.lexical_scores`)."""
        return self._chunks.lexical_scores(snapshot or self.snapshot, query, ids)

    def database_files(self) -> list[Path]:
        """The files of the SQLite database (see :func:`store.sqlite_files`); none on PostgreSQL.
        A run never reads them as documents."""
        return store.sqlite_files(self._engine)

    def fetch_chunks(self, ids: list[int]) -> list[ChunkRecord]:
        """The chunks with these ids, in the same order (ids no longer in SQL are left out)."""
        return self._chunks.fetch(ids)

    def get_document(self, doc_id: int) -> DocumentRecord:
        """The document with this id.

        Raises:
            DocumentNotFound: No such document.
        """
        return self._chunks.document(doc_id)

    def info(self) -> dict[str, Any]:
        """What the index holds and how it was built (refreshes to the newest generation first)."""
        self.refresh()
        snapshot = self.snapshot
        p = snapshot.params
        with self._sessions() as s:
            documents = s.scalar(select(func.count()).select_from(Document)) or 0
            chunks = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
        return {
            "index_dir": str(self.index_dir),
            "db_url": store.mask_url(self.url),
            "root": p.root,
            "documents": int(documents),
            "chunks": int(chunks),
            "faiss_vectors": snapshot.vectors.count,
            "lexical_chunks": snapshot.lexical.count,
            "generation": snapshot.generation,
            "model_id": p.model_id,
            "model_path": p.model_path,
            "dimension": p.dimension,
            "pooling": p.pooling,
            "chunk_tokens": p.chunk_tokens,
            "chunk_overlap": p.chunk_overlap,
            "schema_version": p.schema_version,
            "index_type": snapshot.vectors.kind,
            "index_type_setting": p.index_type or "auto",
            "index_description": INDEX_TYPES.get(snapshot.vectors.kind, snapshot.vectors.kind),
            "tombstones": snapshot.vectors.tombstones,
            # The index's vectors (int8, or bf16/fp32: the same vectors), and how this machine
            # encodes queries for them: bf16 where the CPU has native bf16 (AVX512-BF16, AMX).
            "precision": p.precision or "fp32",
            "encoder_precision": self._precision(p),
            "cpu_native_bf16": cpu_has_native_bf16(),
            "size_bytes": _folder_size(self.index_dir),
            "created_at": p.created_at.isoformat() if p.created_at else None,
            "updated_at": p.updated_at.isoformat() if p.updated_at else None,
        }

    def _precision(self, params: BuildParams) -> str:
        if self._encoder is not None:
            return self._encoder.precision
        try:
            return self._encoder_precision(params)
        except ModelMismatch:
            return "mismatch"

    # -- writing -----------------------------------------------------------------------------

    def update(
        self,
        root: str | Path,
        *,
        include: tuple[str, ...] | list[str] = (),
        exclude: tuple[str, ...] | list[str] = (),
        show_progress: bool = False,
        prepare: Any = None,
    ) -> IndexSummary:
        """Bring the index up to date with a folder (see :func:`bertsearch.indexer.update.update`;
        ``prepare``: where files are read, chunked and encoded, e.g. on Ray)."""
        from bertsearch.indexer.update import update as run_update

        return run_update(self, Path(root), include=include, exclude=exclude, show_progress=show_progress,
                          prepare=prepare)

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the database connections and the in-memory index."""
        self._close_lexical_writer()
        self._snapshot = None
        self._engine.dispose()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _write_error(url: str, exc: BaseException) -> str:
    return f"cannot write to the database {store.mask_url(url)}: {store.describe_db_error(exc, url)}"


def _check_exists(index_dir: Path, url: str) -> None:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
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


def _precision_mismatch(index_dir: Path, built: str | None, wanted: str) -> str:
    kind = "int8" if family(built) == "int8" else "bf16/fp32"
    return (f"the index {index_dir} was built with {kind} vectors, which precision {wanted} does not make; "
            "leave the precision unset (auto follows the index), or run `bertsearch index PATH --rebuild` "
            f"to re-encode everything with {wanted}")
