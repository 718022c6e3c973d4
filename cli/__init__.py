"""Command line and HTTP API of bertsearch (thin layers over :mod:`bertsearch.search`)."""

from bertsearch.cli.main import cli, main

__all__ = ["cli", "main"]
