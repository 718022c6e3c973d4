"""Answer latency: ``Searcher.ask`` and ``POST /ask`` reading 1, 5 and 10 passages.

The index holds the 2,067 SQuAD v1.1 dev paragraphs as documents (built once with
``Index.update`` and reused from ``--work-dir``); the questions are SQuAD dev questions. Each
timed call retrieves the passages (query encoding, FAISS, SQL) and reads them with the QA model
in one batched pass. Latency does not depend on the QA weights, only on the architecture, so
when no trained head is installed an untrained one of the same architecture is timed (the
result says so).

``--precision`` runs the encoder and the reader at one precision (``int8``: an index of int8 vectors
beside the default one, and the reader through ONNX Runtime); the default ``auto`` is what a user
gets on this CPU.

``--large-reader FOLDER`` times the two heads read as one (the shipped head reads every passage, the
large one rereads the most promising: ``BERTSEARCH_LARGE_READER``).

Run: ``python benchmarks/ask.py [--qa-model PATH] [--precision int8] [--large-reader FOLDER]``.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

import _common as c

PASSAGES = (1, 5, 10)


def main(args: Any) -> dict[str, Any]:
    import httpx

    paragraphs, questions = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=30 if args.smoke else None)
    settings, built = c.squad_index(args, paragraphs, precision=args.precision)
    qa_path, qa_note = c.qa_model_for_speed(args)
    large = args.large_reader or settings.large_reader  # or BERTSEARCH_LARGE_READER's: both paths read it
    n = args.questions or (5 if args.smoke else 50)
    rng = np.random.default_rng(0)
    qs = [questions[i].question for i in rng.choice(len(questions), size=min(n, len(questions)), replace=False)]

    # A fresh process, as a user's script: nothing of the index build (memory, threads) in the timings.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        library, answered, reader_facts = pool.submit(_library_latency, str(settings.index_dir), qa_path, qs,
                                                      args.precision, large).result()
    http: dict[str, Any] = {}
    with c.server(settings.index_dir, qa_model=qa_path, precision=args.precision,
                  large_reader=large) as (base, pid):
        with httpx.Client(base_url=base, timeout=300) as client:
            for p in PASSAGES:

                def call(q: str, p: int = p) -> None:
                    client.post("/ask", json={"question": q, "top_k": 1, "passages": p}).raise_for_status()

                http[str(p)] = c.latency_stats(c.time_calls(call, qs))
        server_rss = c.rss_mb(pid)
    return {
        "what": "latency of ask (retrieve + read) by number of passages read, top_k=1 answer",
        "precision": args.precision,
        "encoder": {"id": built["model_id"], "chunk_tokens": built["chunk_tokens"],
                    "chunk_overlap": built["chunk_overlap"]},
        "qa_model": {"path": qa_path or "shipped default", "note": qa_note, **reader_facts},
        "large_reader": c.shown(large) if large else None,
        "answer_model": c.fit_source(None, large, qa_path),
        "corpus": {"documents": built["documents"], "chunks": built["chunks"],
                   "source": "SQuAD v1.1 dev paragraphs, one document each"},
        "questions": len(qs),
        "library_ask": library,
        "http_ask": http,
        "questions_with_an_answer_above_threshold": answered,
        "library_note": "Searcher.ask timed in a fresh process (Searcher over Index.open, as a user's script)",
        "server_rss_mb": server_rss,
        "goal": "issue 3 asks for /ask latency with 5 passages to be reported",
    }


def _library_latency(index_dir: str, qa_path: str | None, qs: list[str],
                     precision: str, large_reader: str | None = None) -> tuple[dict, dict, dict]:
    """In a fresh process: open the index and the QA model, and time ``Searcher.ask``."""
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.search.searcher import Searcher

    settings = Settings(index_dir=index_dir, precision=precision)
    library: dict[str, Any] = {}
    answered: dict[str, int] = {}
    with Searcher(Index.open(settings), qa_model_path=qa_path, precision=settings.precision,
                  large_reader=large_reader, rereads=settings.large_reader_rereads) as searcher:
        searcher.load_models()
        for p in PASSAGES:
            results: list[Any] = []
            seconds = c.time_calls(lambda q: results.append(searcher.ask(q, top_k=1, passages=p)), qs)
            library[str(p)] = c.latency_stats(seconds)
            answered[str(p)] = sum(1 for r in results[-len(qs):] if r.answers)
        reader = searcher.reader
        first = getattr(reader, "first", reader)  # a pair: its first head's windows
        facts = {k: str(getattr(first, k)) for k in ("precision", "max_seq_len", "stride", "batch_size")
                 if hasattr(first, k)}
        if hasattr(reader, "rereads"):
            facts["rereads"] = str(reader.rereads)
        facts["searcher_threshold"] = str(getattr(searcher, "threshold", None))
    return library, answered, facts


if __name__ == "__main__":
    p = c.parser("ask", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p, qa=True)
    p.add_argument("--precision", choices=("auto", "bf16", "fp32", "int8"), default="auto",
                   help="the encoder's and the reader's precision (default auto: what this CPU picks)")
    p.add_argument("--questions", type=int, default=None,
                   help="timed questions per passage count and path (default 50; 5 with --smoke)")
    p.add_argument("--large-reader", default=None, help="a second QA model folder that rereads the best passages")
    c.run("ask", main, p.parse_args())
