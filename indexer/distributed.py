"""``bertsearch index --ray``: reading, chunking and encoding on a Ray cluster, committing here.

The changed files of a run become a Ray Data dataset; ``map_batches`` runs :class:`_Worker`, an
actor pool in which each actor loads the encoder once, reads its files, chunks them with the
model's tokenizer and encodes all their chunks together (sorted by length inside the batch).
Each document comes back to the one writer (this process) with its vectors, and the writer
commits them exactly as a local run does (:mod:`bertsearch.indexer.update`): same batches, same
generation bumps, same lock, so a killed driver leaves the last committed state, and the next
run (with or without Ray) finishes the work.

Files are read where the workers run: on a cluster, the folder must be on storage they all
mount at the same path. The workers need bertsearch and the model installed.

Ray is an optional extra: ``pip install 'bertsearch[ray]'``.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bertsearch.indexer.common.errors import ConfigError, ModelMismatch

__all__ = ["INSTALL_HINT", "RayPreparer", "ray_preparer"]

log = logging.getLogger(__name__)

INSTALL_HINT = "--ray needs Ray: pip install 'bertsearch[ray]'"
FILES_PER_TASK = 8


def ray_preparer(*, address: str | None = None, model_path: str | None = None, batch_size: int = 32,
                 cache_dir: str | None = None, actors: int | None = None,
                 native_bf16: bool | None = None) -> RayPreparer:
    """A preparer for :func:`bertsearch.indexer.update.update` that runs on Ray.

    Args:
        address: A Ray cluster (``ray://head:10001``, ``auto``); ``None``: ``RAY_ADDRESS`` if set,
            else a local cluster started for the run (and stopped after it).
        model_path: The encoder model folder as the workers see it (default: the one the index
            was built with). The workers encode as the index's vectors are: ``int8``, or float
            (each worker takes bf16 where its CPU has native bf16, else fp32).
        batch_size: Texts per forward pass in a worker.
        actors: Encoder actors (default: one per CPU of the cluster).
        native_bf16: ``Settings.native_bf16``, the override of the CPU flags, for the workers too
            (``None``: each worker reads its own CPU's flags).

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc
    return RayPreparer(address or os.environ.get("RAY_ADDRESS") or None, model_path, batch_size, cache_dir, actors,
                       native_bf16)


class RayPreparer:
    """Called by a run with its changed files; yields ``(DocumentWrite, vectors, failure)`` as they come."""

    def __init__(self, address: str | None, model_path: str | None, batch_size: int,
                 cache_dir: str | None, actors: int | None, native_bf16: bool | None = None) -> None:
        self.address = address
        self.model_path = model_path
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.actors = actors
        self.native_bf16 = native_bf16

    def __call__(self, changed: list[Any], params: Any) -> Iterator[Any]:
        if not changed:
            return
        import ray

        started = False
        quiet = [logging.getLogger(name) for name in ("ray", "ray.data")]
        levels = [logger.level for logger in quiet]
        for logger in quiet:  # the run's own bar and summary say what happens; Ray's logs go to its files
            logger.setLevel(logging.ERROR)
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, configure_logging=False)
            started = True
        try:
            actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            rows = [{"path": str(path), "rel": rel, "size": int(st.st_size), "mtime": float(st.st_mtime),
                     "doc_id": int(old[0]) if old else -1, "digest": digest}
                    for path, rel, st, old, digest in changed]
            blocks = min(len(rows), max(2 * actors, -(-len(rows) // FILES_PER_TASK)))
            dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
                _Worker, batch_size=FILES_PER_TASK, batch_format="pandas", concurrency=(1, actors),
                fn_constructor_kwargs={"model_path": self.model_path or params.model_path,
                                       "precision": "int8" if params.precision == "int8" else "float",
                                       "batch_size": self.batch_size, "cache_dir": self.cache_dir,
                                       "chunk_tokens": params.chunk_tokens, "chunk_overlap": params.chunk_overlap,
                                       "chunk_header": params.header,
                                       "native_bf16": self.native_bf16},
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Ray Data's hints on block counts and progress bars
                for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
                    for payload in batch["payload"]:
                        model_id, prepared = pickle.loads(payload)
                        if model_id != params.model_id:
                            raise ModelMismatch(
                                f"the Ray workers encode with the model {model_id}, the index was built with "
                                f"{params.model_id}; install the same model on the workers (or run without --ray)")
                        yield prepared
        finally:
            if started:
                ray.shutdown()
            for logger, level in zip(quiet, levels):
                logger.setLevel(level)


class _Worker:
    """A Ray actor: the encoder loaded once; reads, chunks and encodes a batch of files."""

    def __init__(self, model_path: str, precision: str, batch_size: int, cache_dir: str | None,
                 chunk_tokens: int, chunk_overlap: int, *, chunk_header: str,
                 native_bf16: bool | None = None) -> None:
        from bertsearch.indexer.common.precision import force_native_bf16, use_bf16
        from bertsearch.indexer.encoder import Encoder

        if native_bf16 is not None:  # the driver's override (its Settings), for this process too
            force_native_bf16(native_bf16)

        wanted = "int8" if precision == "int8" else ("bf16" if use_bf16("auto") else "fp32")
        self.encoder = Encoder(model_path, precision=wanted, batch_size=batch_size, cache_dir=cache_dir)
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.chunk_header = chunk_header

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        from bertsearch.indexer.chunk_headers import encoded_texts
        from bertsearch.indexer.common.errors import UnsupportedDocument
        from bertsearch.indexer.documents import read_document
        from bertsearch.indexer.update import document_write

        docs: list[Any] = []
        for row in batch.itertuples(index=False):
            try:
                loaded = read_document(Path(row.path))
            except UnsupportedDocument as exc:
                docs.append((None, None, (row.rel, str(exc))))
                continue
            doc = document_write(loaded, None if row.doc_id < 0 else int(row.doc_id), row.rel, row.digest,
                                 int(row.size), float(row.mtime), lambda: self.encoder.tokenizer,
                                 self.chunk_tokens, self.chunk_overlap)
            docs.append((doc, None, None))
        texts = [t for doc, _, _ in docs if doc is not None for t in encoded_texts(doc, self.chunk_header)]
        vectors = self.encoder.encode(texts) if texts else np.zeros((0, self.encoder.dimension), np.float32)
        out, at = [], 0
        for doc, _, failure in docs:
            n = len(doc.chunks) if doc is not None else 0
            prepared = (doc, vectors[at : at + n] if doc is not None else None, failure)
            at += n
            out.append(pickle.dumps((self.encoder.model_id, prepared), protocol=pickle.HIGHEST_PROTOCOL))
        return pd.DataFrame({"payload": out})
