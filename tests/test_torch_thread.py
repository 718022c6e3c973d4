"""Every PyTorch call of a process runs on one thread (indexer/common/torch_thread.py): a server
that loaded its models in one thread and encoded in others ran each query 2.5 times slower."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bertsearch.indexer.common import torch_thread
from bertsearch.indexer.encoder import Encoder
from bertsearch.search.reader import Reader


def test_calls_from_any_thread_run_on_one_thread_and_nested_calls_run_at_once() -> None:
    def where() -> int:
        return threading.get_ident()

    def nested() -> tuple[int, int]:  # a call made on the PyTorch thread must not wait for itself
        return threading.get_ident(), torch_thread.run(where)

    with ThreadPoolExecutor(4) as pool:
        seen = {torch_thread.run(where)} | set(pool.map(lambda _: torch_thread.run(where), range(16)))
    outer, inner = torch_thread.run(nested)
    assert len(seen) == 1 and seen == {outer} == {inner}
    assert threading.get_ident() not in seen


def test_an_exception_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("from the PyTorch thread")

    with pytest.raises(ValueError, match="from the PyTorch thread"):
        torch_thread.run(fail)
    assert torch_thread.run(lambda: 2 + 2) == 4  # the thread survives it


def _child_runs(queue) -> None:
    queue.put(torch_thread.run(lambda: threading.current_thread().name))


def test_a_forked_child_gets_its_own_thread() -> None:
    torch_thread.run(lambda: None)  # the parent's thread exists before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_runs, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the child hung or failed calling torch_thread.run"
    assert queue.get(timeout=5).startswith("bertsearch-torch")


def test_the_encoder_and_the_reader_run_their_models_on_the_one_thread(tiny_bert_path: str, tiny_qa_path: str) -> None:
    ran_on: list[int] = []
    encoder = Encoder(tiny_bert_path, precision="fp32")
    reader = Reader(tiny_qa_path, precision="fp32", max_seq_len=48, stride=12)
    for model in (encoder._model, reader.model):
        model.register_forward_hook(lambda *_: ran_on.append(threading.get_ident()))
    encoder.encode(["from the main thread"])
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda t: encoder.encode([t]), ["one", "two", "three"]))
        for q in ("how long?", "what?"):  # a Reader is used by one thread at a time (Searcher holds a lock)
            pool.submit(reader.read, q, ["Rotated logs are kept for fourteen days."]).result()
    assert len(ran_on) == 6 and set(ran_on) == {torch_thread.run(threading.get_ident)}


def _child_searches(settings, queue) -> None:
    from bertsearch.search.searcher import Searcher

    with Searcher.open(settings) as searcher:
        queue.put([h.chunk_id for h in searcher.search("how long are logs kept?", top_k=3, mode="hybrid").hits])


def test_a_hybrid_search_runs_in_a_forked_child_as_in_its_parent(sample_index) -> None:
    """The dense half of a hybrid search runs beside BM25 in a pool thread, the encoder on the
    PyTorch thread: a child forked after the parent used both starts its own and gets the same hits."""
    from bertsearch.search.searcher import Searcher

    with Searcher.open(sample_index) as searcher:
        expected = [h.chunk_id for h in searcher.search("how long are logs kept?", top_k=3, mode="hybrid").hits]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_searches, args=(sample_index, queue))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, "the child hung or failed searching"
    assert queue.get(timeout=5) == expected and expected


def test_ctrl_c_ends_the_process_without_waiting_for_the_call_in_progress() -> None:
    import signal
    import subprocess
    import sys
    import time

    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from bertsearch.indexer.common import torch_thread\n"
              "torch_thread.run(lambda: print('running', flush=True))\n"
              "torch_thread.run(time.sleep, 60)  # a long encode\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "running"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        proc.wait(timeout=30)
        assert time.monotonic() - began < 10, "the process waited for the PyTorch thread's call"
        assert proc.returncode != 0  # KeyboardInterrupt
    finally:
        proc.kill()
