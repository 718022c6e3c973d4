"""``bertsearch serve``: the HTTP API."""

from __future__ import annotations

import click

from bertsearch.cli.commands._common import index_options, make_settings


@click.command()
@index_options
@click.option(
    "--qa-model", "qa_model_path", type=click.Path(exists=True, file_okay=False), default=None,
    envvar="BERTSEARCH_QA_MODEL_PATH", help="QA model folder (default: the shipped head).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="Server log level.")
def serve(index_dir, db_url, qa_model_path: str | None, host: str, port: int, log_level: str) -> None:
    """Serve the HTTP API (POST /search, POST /ask; OpenAPI docs at /docs).

    The server picks up a new generation committed by `bertsearch index` without a restart.
    """
    import uvicorn

    from bertsearch.cli.api import create_app
    from bertsearch.search.searcher import Searcher

    settings = make_settings(index_dir=index_dir, db_url=db_url, qa_model_path=qa_model_path)
    # Opened here, not in the lifespan, so a missing index or encoder is the CLI's `Error: ...`
    # before the port is bound.
    searcher = Searcher.open(settings)
    try:
        searcher.load_models(reader=False)
        uvicorn.run(create_app(settings, searcher=searcher), host=host, port=port, log_level=log_level)
    finally:
        searcher.close()


COMMANDS = [serve]
