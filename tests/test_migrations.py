"""Alembic: ``upgrade head`` on a fresh database gives exactly the models, from the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bertsearch.indexer import store
from bertsearch.indexer.models import Base

REPO = Path(__file__).resolve().parent.parent


def _diffs(url: str) -> list:
    engine = store.open_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_head_on_a_fresh_database_matches_the_models(db_url: str):
    engine = store.open_engine(db_url)
    try:
        assert store.current_revision(engine) is None
        store.migrate(engine)
        assert store.current_revision(engine) == store.head_revision()
        assert set(inspect(engine).get_table_names()) >= {"documents", "chunks", "index_state", "alembic_version"}
        store.migrate(engine)  # idempotent
    finally:
        engine.dispose()
    assert _diffs(db_url) == []


def test_migrations_ship_inside_the_package():
    folder = store.migrations_dir()
    assert (folder / "env.py").is_file()
    assert list((folder / "versions").glob("0001_*.py"))
    assert store.head_revision() == "0008"


def test_alembic_command_line_for_developers(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "-x", f"db_url={url}", "upgrade", "head"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert _diffs(url) == []


def test_an_older_index_keeps_every_chunk_through_the_upgrade(tmp_path: Path):
    """SQLite alters a table by copying and dropping it: with foreign keys on, dropping the old
    ``documents`` would cascade to every chunk (0005 alters ``documents``)."""
    from alembic import command
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = store.open_engine(url)  # foreign keys on, as bertsearch opens every database
    try:
        with engine.begin() as conn:
            command.upgrade(store._alembic_config(conn), "0004")  # what bertsearch 0004 wrote
        with engine.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            for doc in (1, 2):
                conn.execute(text("INSERT INTO documents (id, path, title, content_hash, size, mtime, text, n_chunks, "
                                  "indexed_at) VALUES (:id, :path, 't', 'h', 1, 0, 'x', 3, '2026-01-01')"),
                             {"id": doc, "path": f"d{doc}.txt"})
                for ordinal in range(3):
                    conn.execute(text('INSERT INTO chunks (document_id, ordinal, start, "end", text, n_tokens, vector) '
                                      "VALUES (:doc, :o, 0, 1, 'x', 1, x'00')"), {"doc": doc, "o": ordinal})
        store.migrate(engine)
        assert store.current_revision(engine) == store.head_revision()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM chunks").scalar() == 6
            assert conn.exec_driver_sql("SELECT count(*) FROM documents WHERE source = 'folder'").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on for the index's own work
    finally:
        engine.dispose()


def test_an_index_state_row_of_0007_reads_as_no_chunk_header(tmp_path: Path):
    """0008 adds ``index_state.chunk_header``; a row written before it is NULL there, read as ``none``."""
    from alembic import command
    from sqlalchemy import text

    from bertsearch.indexer.snapshot import read_params

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = store.open_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(store._alembic_config(conn), "0007")  # what bertsearch 0007 wrote
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO index_state (id, generation, model_id, model_path, dimension, pooling, "
                              "chunk_tokens, chunk_overlap, schema_version, lexical_cut, created_at, updated_at) "
                              "VALUES (1, 3, 'm', '/m', 32, 'mean', 200, 40, 1, 'cjk', '2026-01-01', '2026-01-01')"))
        store.migrate(engine)
        assert store.current_revision(engine) == "0008"
        params = read_params(store.sessions(engine))
        assert params is not None and params.chunk_header is None and params.header == "none"
        assert (params.generation, params.chunk_tokens, params.cut) == (3, 200, "cjk")
    finally:
        engine.dispose()
