"""The index id (derived files from another database are never served), migrations under the
writer lock, and a writer that loses its PostgreSQL lock writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from bertsearch.indexer import store
from bertsearch.indexer.commit import Batch
from bertsearch.indexer.common.errors import IndexLocked
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index

SAMPLE_DOCS = Path(__file__).resolve().parent.parent / "samples" / "docs"


def _build(folder: Path, tiny_bert_path: str, db_url: str | None = None) -> Settings:
    settings = Settings(index_dir=folder, model_path=tiny_bert_path, db_url=db_url)
    with Index.open(settings, create=True) as index:
        index.update(SAMPLE_DOCS)
    return Settings(index_dir=folder, db_url=db_url)


def test_derived_files_from_another_database_are_rebuilt_not_served(tmp_path: Path, tiny_bert_path: str) -> None:
    a = _build(tmp_path / "a", tiny_bert_path)
    b = _build(tmp_path / "b", tiny_bert_path)
    with Index.open(a) as ia, Index.open(b) as ib:
        # Same documents, same generation, same count: only the identity tells them apart.
        assert (ia.generation, ia.vectors.count) == (ib.generation, ib.vectors.count)
        assert ia.params.index_id and ia.params.index_id != ib.params.index_id
        assert ia.vectors.index_id == ia.params.index_id and ia.snapshot.lexical.index_id == ia.params.index_id
    for name in ("vectors.faiss", "lexical.json"):
        shutil.copy(tmp_path / "b" / name, tmp_path / "a" / name)
    shutil.rmtree(tmp_path / "a" / "lexical")
    shutil.copytree(tmp_path / "b" / "lexical", tmp_path / "a" / "lexical")
    with Index.open(a) as index:
        assert index.last_repair is not None and "another database" in index.last_repair
        assert index.vectors.index_id == index.params.index_id == index.snapshot.lexical.index_id
    with Index.open(a) as index:
        assert index.last_repair is None  # the repair was written back


def test_an_old_schema_is_migrated_under_the_writer_lock(tmp_path: Path, tiny_bert_path: str) -> None:
    settings = _build(tmp_path / "idx", tiny_bert_path)
    url = settings.resolved_db_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        command.downgrade(store._alembic_config(conn), "0001")
    engine.dispose()
    engine = store.open_engine(url)
    try:
        assert store.needs_migration(engine)
        with store.writer_lock(tmp_path / "idx"):
            with pytest.raises(IndexLocked):
                Index.open(settings)  # a writer runs: no migration under its feet
        assert store.needs_migration(engine)
    finally:
        engine.dispose()
    with Index.open(settings) as index:
        assert len(index.params.index_id or "") == 32
        assert index.info()["documents"] == 5
        # An index from before precisions were stored holds float vectors (bf16 or fp32).
        assert index.params.precision is None and index.info()["precision"] == "fp32"
        assert index.encoder.precision in {"bf16", "fp32"}


@pytest.mark.postgres
def test_a_writer_that_loses_its_postgres_lock_writes_nothing(tmp_path: Path, pg_url: str,
                                                            tiny_bert_path: str) -> None:
    settings = _build(tmp_path / "idx", tiny_bert_path, db_url=pg_url)
    with Index.open(settings) as index:
        before = index.info()
        with index.writer_lock():
            killer = create_engine(pg_url)
            with killer.begin() as conn:  # the connection that holds the advisory lock drops
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                                  "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"))
            killer.dispose()
            with pytest.raises(IndexLocked, match="lost its lock"):
                index.commit(Batch(remove_documents=[1]))
    with Index.open(settings) as index:
        after = index.info()
        assert (after["generation"], after["documents"], after["chunks"]) == \
            (before["generation"], before["documents"], before["chunks"])


def test_two_index_folders_on_one_sqlite_file_do_not_write_at_once(tmp_path: Path, tiny_bert_path: str) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'meta.db'}"
    (tmp_path / "shared").mkdir()
    settings = _build(tmp_path / "a", tiny_bert_path, db_url=url)
    (tmp_path / "b").mkdir()
    with Index.open(settings) as a, Index.open(Settings(index_dir=tmp_path / "b", db_url=url)) as b:
        with a.writer_lock():
            with pytest.raises(IndexLocked, match="the database meta.db is being written"):
                with b.writer_lock():
                    pass
        with b.writer_lock():  # free again
            pass
