"""The ``bertsearch`` command line: parses, calls the core, formats.

Errors of the core (:class:`~bertsearch.indexer.common.errors.BertsearchError`) are turned into
``Error: ...`` and exit code 1 in one place, :class:`_Group`.
"""

from __future__ import annotations

import logging
import sys

import click

from bertsearch.indexer.common.errors import BertsearchError


class _Group(click.Group):
    """A click group that turns core errors into ``Error: ...`` and a non-zero exit."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except BertsearchError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; the index keeps its last committed state") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bertsearch")
def cli() -> None:
    """bertsearch: semantic search and answers over your documents."""
    # A damaged PDF is reported once, as a failed document in the summary; pypdf's own
    # warnings about it would only clutter the output.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


def _register() -> None:
    from bertsearch.cli.commands import documents, embed, index, mcp, qa, search, serve

    for module in (index, documents, search, embed, serve, mcp, qa):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bertsearch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
