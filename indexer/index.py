"""The index: SQL rows (the source of truth) plus the FAISS file and the lexical index derived from them.

:meth:`Index.open` opens (or creates) an index, checks what it was built with
(:mod:`.build_rules`), and serves its newest generation (:mod:`.serving`), loading the derived
files or rebuilding them from SQL when they are missing, corrupt or stale. Reading
(:meth:`~Index.search`, :meth:`~Index.fetch_chunks`, :meth:`~Index.info`) never takes the writer
lock; :meth:`~Index.update` does (see :mod:`bertsearch.indexer.update`), through the index's
write side (:mod:`.writing`).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from bertsearch.indexer import store
from bertsearch.indexer.build_rules import BuildRules
from bertsearch.indexer.commit import Batch, Committed
from bertsearch.indexer.common.errors import IndexNotFound, StorageError
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.encoder_slot import EncoderSlot
from bertsearch.indexer.filters import parse_where
from bertsearch.indexer.info import describe
from bertsearch.indexer.models import IndexState, utcnow
from bertsearch.indexer.reading import ChunkReader
from bertsearch.indexer.records import ChunkRecord, DocumentRecord
from bertsearch.indexer.serving import Serving
from bertsearch.indexer.snapshot import BuildParams, Snapshot, read_params
from bertsearch.indexer.vector_file import FILE_NAME
from bertsearch.indexer.vectors import VectorIndex
from bertsearch.indexer.writing import Writer

if TYPE_CHECKING:
    from bertsearch.indexer.encoder import Encoder
    from bertsearch.indexer.update import IndexSummary

__all__ = ["BuildParams", "ChunkRecord", "DocumentRecord", "Index", "Snapshot"]


class Index:
    """An open bertsearch index. Use :meth:`open`; close it (or use it as a context manager)."""

    def __init__(self, settings: Settings, index_dir: Path, engine: Any, encoder: Encoder | None) -> None:
        self.settings = settings
        self.index_dir = index_dir
        self.url = settings.resolved_db_url()
        self._engine = engine
        self._sessions = store.sessions(engine)
        self._rules = BuildRules(settings, index_dir)
        self._encoders = EncoderSlot(self._rules, encoder)
        self._serving = Serving(engine, self._sessions, index_dir, self.url, self._encoders)
        self._writer = Writer(settings, index_dir, engine, self._sessions, self.url, self._serving, self._encoders)
        self._chunks = ChunkReader(self._sessions, settings.search_threads, settings.ef_search)

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

        Build parameters not set explicitly (``model_path``, ``chunk_tokens``, ``chunk_overlap``,
        ``chunk_header``) are taken from the index; explicit ones must match it.

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
            index._serving.serve(index._serving.load(index.params, writing=index._writer.writing))
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StorageError(f"cannot read the index in {store.mask_url(url)}: "
                               f"{store.describe_db_error(exc, url)}") from exc
        except BaseException:
            engine.dispose()
            raise
        return index

    def _init_state(self, *, create: bool, rebuild: bool) -> None:
        rules = self._rules
        params = read_params(self._sessions)
        if params is None and not create:
            raise IndexNotFound(_not_found(self.index_dir, self.url))
        if params is None:
            with self.writer_lock():
                current = read_params(self._sessions)  # another process may have created it meanwhile
                if current is None:
                    self._create()
            params = read_params(self._sessions)
        elif rebuild:
            self._writer.plan_rebuild(rules.build_values(self._encoders.for_build(params), params))
        assert params is not None
        self._serving.opening(params)
        rules.check_schema(params)
        index_type = rules.new_index_type(params, create=create)
        if index_type is not None:
            with self.writer_lock(), self.transaction() as s:  # the writer rebuilds FAISS at its next save
                s.execute(update(IndexState).where(IndexState.id == 1).values(index_type=index_type))
            params = read_params(self._sessions)
            assert params is not None
            self._serving.opening(params)
        if not self._writer.rebuild_pending:
            rules.check_chunking(params)
            rules.check_chunk_header(params)
            rules.encoder_precision(params)  # a set precision that does not make these vectors
            self._encoders.check(params)

    def _create(self) -> None:
        values = self._rules.build_values(self._encoders.for_build(None), None)
        with self.transaction() as s:
            s.add(IndexState(id=1, generation=1, created_at=utcnow(), index_id=uuid.uuid4().hex, removals_from=1,
                             **values))

    # -- state -------------------------------------------------------------------------------

    @property
    def encoder(self) -> Encoder:
        """The encoder of this index (loaded on first use, checked against the build parameters).

        Raises:
            ModelMismatch: The model is not the one the index was built with.
        """
        return self._writer.encoder

    @property
    def snapshot(self) -> Snapshot:
        """The generation being served: take it once per request and read only from it."""
        return self._serving.snapshot

    @property
    def params(self) -> BuildParams:
        """The build parameters of the snapshot being served (while a rebuild runs: the new build's)."""
        return self._writer.params

    @property
    def generation(self) -> int:
        """The SQL generation the snapshot being served reflects."""
        return self._serving.generation

    @property
    def vectors(self) -> VectorIndex:
        """The FAISS index of the snapshot being served."""
        return self.snapshot.vectors

    @property
    def last_repair(self) -> str | None:
        """Why a derived index (FAISS, lexical) was last rebuilt from SQL on open or refresh, if it was."""
        return self._serving.last_repair

    @property
    def vectors_path(self) -> Path:
        """The FAISS file."""
        return self.index_dir / FILE_NAME

    def refresh(self) -> bool:
        """Serve the newest committed generation (for long-running readers such as a server).

        The next snapshot is built completely before it replaces the current one.

        Returns:
            Whether a newer generation was loaded.
        """
        return self._serving.refresh(writing=self._writer.writing)

    def ping(self) -> None:
        """Read the generation row: a check that the database answers.

        Raises:
            StorageError: It does not.
        """
        try:
            read_params(self._sessions)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the index in {store.mask_url(self.url)}: "
                               f"{store.describe_db_error(exc, self.url)}") from exc

    # -- writing (see writing.py) --------------------------------------------------------------

    def writer_lock(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """The writer lock of this index (see :meth:`Writer.writer_lock <.writing.Writer.writer_lock>`)."""
        return self._writer.writer_lock(timeout)

    def transaction(self) -> AbstractContextManager[Session]:
        """A short-lived session inside one transaction, committed on success (see
        :meth:`Writer.transaction <.writing.Writer.transaction>`).

        Raises:
            StorageError: The database refused the write (disk full, server gone, locked).
        """
        return self._writer.transaction()

    def commit(self, batch: Batch, root: Path | None = None) -> Committed:
        """Write ``batch`` to SQL in one transaction that bumps the generation, then apply it to
        the derived indexes (see :meth:`Writer.commit <.writing.Writer.commit>`). Call it while
        holding :meth:`writer_lock`.

        Raises:
            StorageError: The database or the lexical index refused the write.
        """
        return self._writer.commit(batch, root)

    def save_vectors(self, *, lazy: bool = False) -> None:
        """Write the served FAISS index to the FAISS file unless it holds it already (``lazy``:
        only once enough changed; see :meth:`Writer.save_vectors <.writing.Writer.save_vectors>`).
        Call it while holding :meth:`writer_lock`."""
        self._writer.save_vectors(lazy=lazy)

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

        return run_update(self._writer, Path(root), include=include, exclude=exclude, show_progress=show_progress,
                          prepare=prepare)

    # -- reading -----------------------------------------------------------------------------

    @property
    def reader(self) -> ChunkReader:
        """Searches over a snapshot and reads chunks and documents from SQL."""
        return self._chunks

    def search(self, query_vector: Any, k: int, *, path_glob: str | None = None, where: Any = None,
               snapshot: Snapshot | None = None, ef_search: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``query_vector`` (see :meth:`ChunkReader.dense`); ``where``: a
        filter as JSON or parsed (:func:`~bertsearch.indexer.filters.parse_where`)."""
        return self._chunks.dense(snapshot or self.snapshot, query_vector, k, path_glob=path_glob,
                                  where=parse_where(where), ef_search=ef_search)

    def search_lexical(self, query: str, k: int, *, path_glob: str | None = None, where: Any = None,
                       snapshot: Snapshot | None = None) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by BM25 (see :meth:`ChunkReader.lexical`)."""
        return self._chunks.lexical(snapshot or self.snapshot, query, k, path_glob=path_glob,
                                    where=parse_where(where))

    def dense_scores(self, query_vector: Any, ids: list[int], *, snapshot: Snapshot | None = None) -> dict[int, float]:
        """The cosine score of ``query_vector`` for each of the chunks ``ids`` (see :meth:`ChunkReader.dense_scores`)."""
        return self._chunks.dense_scores(snapshot or self.snapshot, query_vector, ids)

    def lexical_scores(self, query: str, ids: list[int], *, snapshot: Snapshot | None = None) -> dict[int, float]:
        """The BM25 score of ``query`` for each of the chunks ``ids`` (see :meth:`ChunkReader.lexical_scores`)."""
        return self._chunks.lexical_scores(snapshot or self.snapshot, query, ids)

    def database_files(self) -> list[Path]:
        """The files of the SQLite database (see :func:`store.sqlite_files`); none on PostgreSQL.
        A run never reads them as documents."""
        return self._writer.database_files()

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
        return describe(snapshot, self._sessions, self.index_dir, self.url, self._encoders.precision(snapshot.params))

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the database connections and the in-memory index."""
        self._writer.close()
        self._serving.close()
        self._engine.dispose()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
