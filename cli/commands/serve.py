"""``bertsearch serve``: the HTTP API."""

from __future__ import annotations

import ipaddress
import os
import socket

import click

from bertsearch.cli.commands._common import index_options, large_reader_option, make_settings
from bertsearch.indexer.common.settings import LOOPBACK_NAMES


@click.command()
@index_options
@click.option(
    "--qa-model", "qa_model_path", type=click.Path(exists=True, file_okay=False), default=None,
    envvar="BERTSEARCH_QA_MODEL_PATH", help="QA model folder (default: the shipped head).",
)
@large_reader_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--api-keys-file", type=click.Path(dir_okay=False, path_type=str), default=None,
              envvar="BERTSEARCH_API_KEYS_FILE",
              help="File of hashed API keys (`bertsearch key` makes the lines); keys also come from "
                   "BERTSEARCH_API_KEYS=\"key1:admin,key2\".")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="A Host name clients use to reach the server, besides the loopback names (repeatable; `*`: any).")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="An origin whose pages may call the API (repeatable; default: CORS off).")
@click.option("--max-body-size", "max_body_bytes", type=click.IntRange(1), default=None,
              help="Largest request body in bytes (default: 1 MiB); larger ones get 413.")
@click.option("--insecure-no-auth", is_flag=True,
              help="Serve a non-loopback address without API keys (anyone who reaches it may search).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes on this index, each with its own models and snapshot (uses N times the memory).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="Server log level.")
def serve(index_dir, db_url, qa_model_path: str | None, large_reader: str | None, host: str, port: int,
          api_keys_file: str | None,
          allowed_hosts: tuple[str, ...], cors_origins: tuple[str, ...], max_body_bytes: int | None,
          insecure_no_auth: bool, workers: int, log_level: str) -> None:
    """Serve the HTTP API (POST /search, POST /ask; OpenAPI docs at /docs).

    The server picks up a new generation committed by `bertsearch index` without a restart.
    On an address other than loopback it needs API keys (see README, "Running as a service").
    """
    import uvicorn

    from bertsearch.cli.api import create_app
    from bertsearch.cli.api.security import KeyRing
    from bertsearch.search.searcher import Searcher

    settings = make_settings(
        index_dir=index_dir, db_url=db_url, qa_model_path=qa_model_path, large_reader=large_reader,
        api_keys_file=api_keys_file,
        # Added to the loopback names: a Host of `localhost` cannot come from a rebinding page.
        allowed_hosts=",".join([LOOPBACK_NAMES, *allowed_hosts]) if allowed_hosts else None,
        cors_origins=",".join(cors_origins) or None,
        max_body_bytes=max_body_bytes,
    )
    keys = KeyRing.from_settings(settings)
    if not keys.enabled and not _is_loopback(host):
        if not insecure_no_auth:
            raise click.ClickException(
                f"refusing to serve {host} without API keys: set BERTSEARCH_API_KEYS or --api-keys-file "
                "(`bertsearch key` makes one), or pass --insecure-no-auth")
        click.echo(f"Warning: serving {host} without authentication (--insecure-no-auth)", err=True)
    # Opened here, not in the lifespan, so a missing index or encoder is the CLI's `Error: ...`
    # before the port is bound.
    searcher = Searcher.open(settings)
    if workers > 1:
        searcher.close()
        # Each worker process builds the app from the environment (one settings object) and
        # opens its own searcher; every one picks up new generations on its own.
        _export(settings)
        uvicorn.run("bertsearch.cli.api.app:create_app", factory=True, workers=workers, host=host, port=port,
                    log_level=log_level)
        return
    try:
        searcher.load_models(reader=False)
        uvicorn.run(create_app(settings, searcher=searcher), host=host, port=port, log_level=log_level)
    finally:
        searcher.close()


@click.command()
@click.option("--scope", type=click.Choice(["read", "write", "admin"]), default="read", show_default=True,
              help="What the key may do: read (search, ask, documents), write (also put and delete documents by "
                   "key) or admin (also /stats with paths).")
def key(scope: str) -> None:
    """Make a new random API key: the key for the client, and the hashed line for a keys file."""
    from bertsearch.cli.api.security import hash_key, new_key

    secret = new_key()
    click.echo(f"key (give it to the client; it is not stored): {secret}")
    click.echo(f"keys file line (append it to the file given to --api-keys-file): {hash_key(secret)} {scope}")


def _export(settings) -> None:
    """The settings given (on the command line or in the environment) as ``BERTSEARCH_*``
    variables, for worker processes that read the environment. Only those: a default exported
    would count as set there (an explicit chunk size is checked against the index's)."""
    from pydantic import SecretStr

    for name, value in settings.model_dump(exclude_unset=True).items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        os.environ[f"BERTSEARCH_{name.upper()}"] = str(value)


def _is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


COMMANDS = [serve, key]
