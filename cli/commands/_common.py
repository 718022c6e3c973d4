"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bertsearch.indexer.common.settings import Settings


def index_options(func):
    """``--index`` and ``--db``, the location of an index, shared by every command."""
    func = click.option(
        "--db", "db_url", default=None, envvar="BERTSEARCH_DB_URL",
        help="SQLAlchemy database URL (default: SQLite inside the index folder).",
    )(func)
    func = click.option(
        "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        envvar="BERTSEARCH_INDEX_DIR", help="Index folder (default: ./.bertsearch).",
    )(func)
    return func


def make_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the options the user gave on the command line."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal, and never with ``--quiet``."""
    return not quiet and sys.stderr.isatty()


def echo_json(obj: Any) -> None:
    """One JSON object on one line (the last line of output)."""
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))
