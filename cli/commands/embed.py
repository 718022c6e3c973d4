"""``bertsearch embed``: vectors of texts, as JSON lines or a ``.npy`` file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bertsearch.indexer.common.precision import PRECISIONS
from bertsearch.cli.commands._common import echo_json, index_options, make_settings, show_progress


@click.command()
@click.argument("texts", nargs=-1)
@index_options
@click.option("--file", "file", type=click.File("r", encoding="utf-8"), default=None,
              help="Read the texts from this file, one a line (`-`: standard input).")
@click.option("--model", "model_path", default=None, metavar="PATH",
              help="Any local model folder (default: the index's encoder, else the packaged MiniLM).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="With --model: auto (default), bf16, fp32 or int8. With an index: its own unless set.")
@click.option("--npy", "npy", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the vectors to this .npy file (float32, one row a text) instead of JSON lines.")
@click.option("--query", is_flag=True,
              help="Encode the texts as search queries: with the model's query prefix, E5's `query: ` "
                   "(default: as passages, as chunks are encoded).")
@click.option("--no-normalize", is_flag=True, help="Leave the vectors unnormalised.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def embed(texts: tuple[str, ...], index_dir, db_url, file, model_path: str | None, precision: str | None, npy: Path | None,
          query: bool, no_normalize: bool, quiet: bool) -> None:
    """Turn TEXTS (or the lines of --file, or of standard input) into vectors.

    With an index (--index, or ./.bertsearch when it exists) its own encoder and precision make
    them, exactly as its chunks (or, with --query, its queries) are encoded; --model names any other
    model folder.
    Prints one JSON line a text, `{"embedding": [...]}`, or writes --npy.
    """
    import numpy as np

    from bertsearch.indexer.common.errors import ConfigError

    lines = list(texts)
    if file is not None:
        lines += [line.rstrip("\n") for line in file]
    elif not lines and not sys.stdin.isatty():
        lines = [line.rstrip("\n") for line in sys.stdin]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ConfigError("no text to embed: give texts as arguments, --file FILE, or lines on standard input")
    encoder = _encoder(index_dir, db_url, model_path, precision)
    vectors = encoder.encode(lines, normalize=not no_normalize, show_progress=show_progress(quiet) and len(lines) > 64,
                             query=query)
    if npy is not None:
        np.save(npy, vectors.astype(np.float32))
        echo_json({"texts": len(lines), "dimension": int(vectors.shape[1]), "model": encoder.model_id,
                   "precision": encoder.precision, "npy": str(npy)})
        return
    out = sys.stdout
    for row in vectors:
        out.write(json.dumps({"embedding": [float(x) for x in row]}) + "\n")


def _encoder(index_dir, db_url, model_path, precision):
    from bertsearch.indexer.common.settings import DEFAULT_INDEX_DIR
    from bertsearch.indexer.encoder import Encoder
    from bertsearch.indexer.index import Index

    settings = make_settings(index_dir=index_dir, db_url=db_url, model_path=model_path, precision=precision)
    if model_path is None and (index_dir is not None or db_url is not None or Path(DEFAULT_INDEX_DIR).is_dir()):
        with Index.open(settings) as index:
            return index.encoder  # the index's own model, checked against its build parameters
    return Encoder(settings.resolved_model_path(), precision=settings.precision, batch_size=settings.batch_size,
                   cache_dir=settings.cache_dir)


COMMANDS = [embed]
