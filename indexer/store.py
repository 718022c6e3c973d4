"""The SQL store: engines, migrations, short-lived sessions, and the writer lock.

Every database error a user can meet (a malformed URL, a missing driver, a server that is down,
a wrong password, a file that cannot be opened) leaves this module as a
:class:`~bertsearch.indexer.common.errors.ConfigError` or :class:`~bertsearch.indexer.common.errors.StorageError`
whose message shows the URL with its password masked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bertsearch.indexer.common.errors import ConfigError, IndexLocked, StorageError

LOCK_FILE = "write.lock"
# Any fixed 64-bit key: every bertsearch writer of one PostgreSQL database uses the same one.
_PG_LOCK_KEY = 0x6265727473656172  # "bertsear"


# `scheme://user:password@...`: the password of a URL SQLAlchemy cannot parse (or whose port is
# not a number) is found by shape, so even a broken URL is shown without it.
_PASSWORD = re.compile(r"^([A-Za-z0-9+.-]*:/*[^:/@]*:).*(@)")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and ``info``), even when
    SQLAlchemy cannot parse it."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***\2", url) if "@" in url else url


def describe_db_error(exc: BaseException, url: str) -> str:
    """A one-line reason for a database error, with the URL's password never shown."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = reason[0] if reason else type(exc).__name__
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        password = None
    if password:
        line = line.replace(str(password), "***")
    return line


def open_engine(url: str) -> Engine:
    """An engine for ``url``, checked by connecting once.

    SQLite gets WAL (readers never block the writer), foreign keys on (``ON DELETE CASCADE``)
    and a busy timeout; WAL keeps the default ``synchronous=FULL`` so a commit survives power loss.

    Raises:
        ConfigError: the URL cannot be parsed or names a database driver that is not installed.
        StorageError: the database cannot be reached or opened.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"cannot parse the database URL {mask_url(url)!r}: expected e.g. "
                          "sqlite:////path/meta.db or postgresql+psycopg://user@host:5432/db") from None
    masked = mask_url(url)
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30.0}
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise ConfigError(f"unknown database type in {masked}") from exc
    except ImportError as exc:
        hint = " (pip install 'bertsearch[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
        raise ConfigError(f"the database driver for {masked} is not installed: {exc}{hint}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        engine.dispose()
        raise StorageError(f"cannot open the database {masked}: {describe_db_error(exc, url)}") from exc
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory; open one per unit of work (``with factory() as s, s.begin(): ...``)."""
    return sessionmaker(engine, expire_on_commit=False)


def migrations_dir() -> Path:
    """The folder of the Alembic environment, from an installed wheel or a source checkout."""
    package_root = Path(__file__).resolve().parent.parent
    # Installed: bertsearch/migrations next to bertsearch/indexer. Editable: alembic/ next to indexer/.
    for name in ("migrations", "alembic"):
        candidate = package_root / name
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigError(f"the database migrations are missing from the installation ({package_root})")


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration shipped with this version of bertsearch."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or ``None`` for a database bertsearch never touched."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def has_index(engine: Engine) -> bool:
    """Whether the database holds a bertsearch schema."""
    return inspect(engine).has_table("index_state")


def needs_migration(engine: Engine) -> bool:
    """Whether the schema is older than this version of bertsearch (or absent)."""
    return current_revision(engine) != head_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (``alembic upgrade head``) from the installed package.

    Raises:
        StorageError: the migration fails (permissions, disk full, server gone).
    """
    from alembic import command

    if current_revision(engine) == head_revision():
        return
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # SQLite alters a table by copying it and dropping the old one (batch mode); with
                # foreign keys on, that drop would cascade to every chunk of every document. The
                # pragma is a no-op inside a transaction, so it is set before the migration's.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                with conn.begin():
                    command.upgrade(_alembic_config(conn), "head")
                    if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                        raise StorageError("the schema migration left rows whose foreign keys point nowhere; "
                                           "nothing of it was kept")
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
    except SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=False)
        raise StorageError(
            f"cannot create or upgrade the schema in {mask_url(url)}: {describe_db_error(exc, url)}"
        ) from exc


class LockGuard:
    """What a writer checks before each commit: that it still holds the lock.

    The flock on the lock file cannot be lost while the process lives. The PostgreSQL advisory
    lock can: it belongs to one server connection, and if that connection drops the lock is gone
    while the writer goes on. :meth:`verify` runs inside the commit's transaction and refuses it
    then, so nothing of it is written.
    """

    def __init__(self, pg_backend_pid: int | None = None) -> None:
        self.pg_backend_pid = pg_backend_pid

    def verify(self, session: Session) -> None:
        """Raises IndexLocked when the advisory lock is no longer held."""
        if self.pg_backend_pid is None:
            return
        held = session.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = :pid "
                 "AND classid::bigint = :hi AND objid::bigint = :lo"),
            {"pid": self.pg_backend_pid, "hi": _PG_LOCK_KEY >> 32, "lo": _PG_LOCK_KEY & 0xFFFFFFFF},
        ).scalar()
        if not held:
            raise IndexLocked(
                "the writer lost its lock on the database (the connection holding it dropped); this "
                "commit was not written and the index keeps its last committed state: run `bertsearch index` again"
            )


@contextmanager
def writer_lock(index_dir: Path, *, timeout: float = 0.0, engine: Engine | None = None) -> Iterator[LockGuard]:
    """Hold the index's writer lock: ``flock`` on ``<index_dir>/write.lock``.

    On PostgreSQL a session advisory lock is held as well, so writers that share one database
    from different index folders (or machines) are serialised too. Readers never take this lock.

    Args:
        index_dir: The index folder (must exist).
        timeout: Seconds to wait for a lock held by another writer; 0 fails at once.
        engine: The index's database; used for the advisory lock on PostgreSQL.

    Yields:
        The :class:`LockGuard` to verify before each commit.

    Raises:
        IndexLocked: another writer holds the lock (the message names its pid).
    """
    with _file_lock(Path(index_dir) / LOCK_FILE, timeout):
        # An SQLite file outside the index folder may be shared by two folders' writers: it gets
        # a lock file of its own, as PostgreSQL gets its advisory lock.
        database = _sqlite_file(engine)
        shared = database is not None and database.parent != Path(index_dir).resolve()
        with _file_lock(database.with_name(database.name + ".lock"), timeout) if shared else _no_lock():
            with _pg_advisory_lock(engine, timeout) as guard:
                yield guard


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


@contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire_flock(fd, path, timeout)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def sqlite_files(engine: Engine | None) -> list[Path]:
    """The files of an SQLite database (the database, its WAL, shared memory, journal and lock
    files), resolved; none for another database.

    The writer never reads them as documents, even where the database lies in the folder it
    indexes: a process that opens and closes a file of a database it holds open drops its own
    POSIX locks on it, and other processes may then read it mid-write
    (https://www.sqlite.org/howtocorrupt.html, 2.2).
    """
    database = _sqlite_file(engine)
    if database is None:
        return []
    return [database, *(database.with_name(database.name + tail) for tail in ("-wal", "-shm", "-journal", ".lock"))]


def _sqlite_file(engine: Engine | None) -> Path | None:
    if engine is None or engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def _acquire_flock(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StorageError(f"cannot lock {path}: {exc.strerror}") from exc
        if time.monotonic() >= deadline:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            waited = f" after waiting {timeout:g}s" if timeout else ""
            what = f"the index {path.parent}" if path.name == LOCK_FILE else f"the database {path.name[:-5]}"
            raise IndexLocked(
                f"{what} is being written by another process (pid {holder}){waited}; "
                "wait for it to finish, or set BERTSEARCH_LOCK_TIMEOUT to wait"
            )
        time.sleep(0.1)


@contextmanager
def _pg_advisory_lock(engine: Engine | None, timeout: float) -> Iterator[LockGuard]:
    # Dialect branch (issue 5): flock only serialises writers that share one index folder;
    # PostgreSQL can be shared by several folders/machines, so it gets a server-side lock too.
    if engine is None or engine.dialect.name != "postgresql":
        yield LockGuard()
        return
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + timeout
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_LOCK_KEY}).scalar():
            if time.monotonic() >= deadline:
                holder = conn.execute(
                    text("SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                         "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() "
                         "AND l.pid <> pg_backend_pid() LIMIT 1")
                ).scalar()
                raise IndexLocked(
                    f"another bertsearch writer (server backend pid {holder}) is writing to the database "
                    f"{mask_url(engine.url.render_as_string(hide_password=False))}; wait for it to finish"
                )
            time.sleep(0.2)
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar())
        try:
            yield LockGuard(pid)
        finally:
            with suppress(SQLAlchemyError):  # a lost connection has no lock left to release
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
    finally:
        with suppress(SQLAlchemyError):
            conn.close()
