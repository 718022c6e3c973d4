"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bertsearch.indexer.common.errors import ConfigError
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


#: ``--large-reader``: a second QA head that rereads the most promising passages (``ask``, ``serve``, ``mcp``).
large_reader_option = click.option(
    "--large-reader", "large_reader", type=click.Path(exists=True, file_okay=False), default=None,
    envvar="BERTSEARCH_LARGE_READER",
    help="A second, larger QA model folder (e.g. models/large-reader) that rereads the passages the QA model finds "
         "most promising; answers combine both heads (slower; default: none).",
)


def make_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the options the user gave on the command line.

    Raises:
        ConfigError: A setting is invalid (the message names it, never its value: it may be a secret).
    """
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                             for err in exc.errors(include_input=False, include_url=False))
        raise ConfigError(f"invalid setting (BERTSEARCH_... or an option): {problems}") from None


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal, and never with ``--quiet``."""
    return not quiet and sys.stderr.isatty()


def echo_json(obj: Any) -> None:
    """One JSON object on one line (the last line of output)."""
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))
