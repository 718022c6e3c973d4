"""``bertsearch put`` and ``bertsearch delete``: documents by key, written into the local index
through the same core as ``PUT``/``DELETE /documents/by-key/{key}`` (:mod:`bertsearch.indexer.ingest`)."""

from __future__ import annotations

import json
import sys

import click

from bertsearch.cli.commands._common import echo_json, index_options, make_settings


@click.command("put")
@click.argument("key")
@click.argument("file", default="-", metavar="[FILE|-]")
@index_options
@click.option("--title", default=None, help="The title (default: the file's own, else the key).")
@click.option("--metadata", default=None, metavar="JSON",
              help='A JSON object stored with the document, e.g. \'{"lang": "en", "tags": ["a"]}\'.')
@click.option("--model", "model_path", default=None, metavar="PATH",
              help="Encoder model folder, when this creates the index (default: the packaged MiniLM).")
def put(key: str, file: str, index_dir, db_url, title: str | None, metadata: str | None,
        model_path: str | None) -> None:
    """Put FILE (txt, md, rst, html, pdf; `-` or none: plain text from standard input) under KEY.

    KEY is yours: an id, a URL, a path. It lives beside the indexed folder's files: `bertsearch
    index` never removes it, and it never replaces a file of the same path. The same text again
    is not re-encoded. Prints what was done as JSON (status created, replaced or unchanged).
    """
    from pathlib import Path

    from bertsearch.indexer.common.errors import ConfigError
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.ingest import DocumentPut, apply_changes

    settings = make_settings(index_dir=index_dir, db_url=db_url, model_path=model_path)
    if file == "-":
        document = DocumentPut(key, text=sys.stdin.read(), title=title, metadata=_metadata(metadata))
    else:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"not a file: {path}")
        if path.stat().st_size > settings.max_file_size:
            raise ConfigError(f"{path} is over the limit of {settings.max_file_size} bytes (BERTSEARCH_MAX_FILE_SIZE)")
        document = DocumentPut(key, data=path.read_bytes(), filename=path.name, title=title,
                               metadata=_metadata(metadata))
    with Index.open(settings, create=True) as index:
        echo_json(apply_changes(index, [document]).to_dict())


@click.command("delete")
@click.argument("key")
@index_options
def delete(key: str, index_dir, db_url) -> None:
    """Delete the document put under KEY (never a file of the indexed folder)."""
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.ingest import delete_document

    with Index.open(make_settings(index_dir=index_dir, db_url=db_url)) as index:
        echo_json(delete_document(index, key).to_dict())


def _metadata(value: str | None) -> object:
    from bertsearch.indexer.common.errors import ConfigError

    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ConfigError("--metadata is not JSON") from None


COMMANDS = [put, delete]
