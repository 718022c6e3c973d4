"""``bertsearch mcp``: the MCP server over stdio, for an agent that starts it as a subprocess."""

from __future__ import annotations

import click

from bertsearch.cli.commands._common import index_options, large_reader_option, make_settings


@click.command()
@index_options
@click.option(
    "--qa-model", "qa_model_path", type=click.Path(exists=True, file_okay=False), default=None,
    envvar="BERTSEARCH_QA_MODEL_PATH", help="QA model folder (default: the shipped head).",
)
@large_reader_option
def mcp(index_dir, db_url, qa_model_path: str | None, large_reader: str | None) -> None:
    """Serve the index to an MCP client (an agent) over stdin and stdout: the tools search, ask, get_document,
    put_document and delete_document.

    The client starts this command itself (see README, "MCP"); it serves until stdin closes, and
    picks up a new generation committed by `bertsearch index` without a restart.
    """
    from importlib.metadata import version

    import anyio

    from bertsearch.cli.api.deps import REFRESH_INTERVAL
    from bertsearch.cli.api.security import ADMIN
    from bertsearch.cli.api.writer import DocumentWriter
    from bertsearch.cli.api.mcp_tools import build_server
    from bertsearch.search.searcher import Searcher

    settings = make_settings(index_dir=index_dir, db_url=db_url, qa_model_path=qa_model_path, large_reader=large_reader)
    # Opened and the encoder loaded before serving, so a missing index or model is `Error: ...`.
    with Searcher.open(settings) as searcher:
        searcher.load_models(reader=False)

        def fresh() -> Searcher:
            searcher.refresh(min_interval=REFRESH_INTERVAL, background=True)
            return searcher

        writer = DocumentWriter(settings, searcher)  # opens the index for writing on the first write only
        try:
            # The local user may do what the index's files let them do: every scope.
            server = build_server(fresh, local_scope=ADMIN, version=version("bertsearch"), writer=lambda: writer)
            anyio.run(server.run_stdio_async)
        finally:
            writer.close()


COMMANDS = [mcp]
