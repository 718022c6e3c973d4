"""``bertsearch index`` (build or update an index) and ``bertsearch info`` (what it holds)."""

from __future__ import annotations

from pathlib import Path

import click

from bertsearch.indexer.common.precision import PRECISIONS
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
@click.option("--model", "model_path", default=None, metavar="PATH",
              help="Encoder model folder (default: the one the index was built with, else the packaged MiniLM).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="How to encode: auto (bf16 with native bf16, else int8 when ONNX Runtime is installed, "
                   "else fp32), bf16, fp32 or int8. Stored with the index: int8 or not.")
@click.option("--index-type", type=click.Choice(["auto", "flat", "hnsw", "hnsw-sq8"]), default=None,
              help="The FAISS index: auto (exact below 200,000 chunks, HNSW above), flat, hnsw, hnsw-sq8. "
                   "Stored with the index; changing it rebuilds FAISS from SQL, nothing is re-encoded.")
@click.option("--chunk-tokens", type=int, default=None, help="Tokens per chunk (stored with the index).")
@click.option("--chunk-overlap", type=int, default=None, help="Tokens shared by neighbouring chunks.")
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
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def index_command(path: Path, index_dir, db_url, include, exclude, rebuild, model_path, precision, index_type,
                  chunk_tokens, chunk_overlap, max_file_size, follow_symlinks, use_ray, ray_address, ray_actors,
                  quiet, as_json) -> None:
    """Index the documents under PATH, or bring the index up to date with it.

    Only new and changed files are encoded; files deleted or renamed away are removed.
    """
    from bertsearch.indexer.common.errors import ConfigError
    from bertsearch.indexer.index import Index

    if not path.is_dir():
        raise ConfigError(f"not a folder: {path}")
    settings = make_settings(index_dir=index_dir, db_url=db_url, model_path=model_path, precision=precision,
                             index_type=index_type, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                             max_file_size=max_file_size, follow_symlinks=follow_symlinks)
    prepare = None
    if use_ray or ray_address:
        from bertsearch.indexer.distributed import ray_preparer

        workers_model = str(Path(model_path).resolve()) if model_path else None
        prepare = ray_preparer(address=ray_address, model_path=workers_model, batch_size=settings.batch_size,
                               # Workers cache int8 models where their own machine keeps them, unless one was named.
                               cache_dir=str(settings.cache_dir) if "cache_dir" in settings.model_fields_set else None,
                               actors=ray_actors, native_bf16=settings.native_bf16)
    with Index.open(settings, create=True, rebuild=rebuild) as index:
        summary = index.update(path, include=include, exclude=exclude, show_progress=show_progress(quiet),
                               prepare=prepare)
        total = index.info()
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
