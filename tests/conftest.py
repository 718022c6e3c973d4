"""Shared fixtures: the packaged model, a tiny random BERT for plumbing tests, database URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg-url", default=os.environ.get("BERTSEARCH_TEST_PG_URL"),
        help="PostgreSQL server URL (postgresql+psycopg://user@host:port/db) for the postgres tests; "
        "with it, every index test also runs against PostgreSQL.",
    )


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """Folder of the real packaged all-MiniLM-L6-v2."""
    from bertsearch.indexer.common.settings import packaged_encoder_path

    return packaged_encoder_path()


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A tiny randomly initialised BERT (2 layers, 32 dims) with the real MiniLM tokenizer.

    For tests where only the plumbing matters: fast to load and run.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_qa_path(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A tiny randomly initialised BERT QA model (answers are meaningless; plumbing only)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    out = tmp_path_factory.mktemp("tiny-qa")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    BertForQuestionAnswering(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: an SQLite file, and a fresh PostgreSQL database when --pg-url is given."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path / "meta.db")
    base = request.config.getoption("--pg-url")
    if not base:
        pytest.skip("PostgreSQL not configured: pass --pg-url or set BERTSEARCH_TEST_PG_URL")
    return _fresh_pg_database(base)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database, or a visible skip when none is configured."""
    base = request.config.getoption("--pg-url")
    if not base:
        pytest.skip("PostgreSQL not configured: pass --pg-url or set BERTSEARCH_TEST_PG_URL")
    return _fresh_pg_database(base)


def _fresh_pg_database(base: str) -> str:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bs_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


SAMPLE_DOCS = Path(__file__).resolve().parent.parent / "samples" / "docs"


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, tiny_bert_path: str):
    """Settings of an index of samples/docs built with the tiny BERT (shared: read it, never write it)."""
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.common.settings import Settings

    root = tmp_path_factory.mktemp("sample-index")
    settings = Settings(index_dir=root, model_path=tiny_bert_path)
    with Index.open(settings, create=True) as index:
        index.update(SAMPLE_DOCS)
    return Settings(index_dir=root)


@pytest.fixture(params=["flat", "hnsw"])
def index_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with an exact and with an approximate (HNSW) FAISS index (``BERTSEARCH_INDEX_TYPE``)."""
    monkeypatch.setenv("BERTSEARCH_INDEX_TYPE", request.param)
    return request.param
