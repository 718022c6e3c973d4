"""One thread runs every PyTorch call of a process: the models' loading, encoding and reading.

PyTorch parallelises an operation with OpenMP, and OpenMP (GNU libgomp) keeps a team of threads
for each thread that calls it. Once a process's teams hold more threads than it has CPUs, libgomp
stops spinning between parallel regions and puts its threads to sleep after each one, and a
small forward pass (a query: a few dozen parallel regions of microseconds) pays a futex wake-up
for each. A server is such a process: it loaded the models in its main thread and encoded
queries in the threads that answer requests. On 2 cores (Intel Xeon, AMX) a query took 11.9 ms
to encode in a worker thread against 4.7 ms in a process that only ever called PyTorch from one
thread, and once a worker had encoded, the main thread took 12.0 ms as well. At 10,000 chunks
``POST /search`` took 18.2 ms where ``Searcher.search`` took 7.2 (``benchmarks/search.py``); with
this module, 13.7 ms.

:func:`run` sends a call to the one thread (started on first use, one per process, started anew
in a forked child) and waits for it; a call made on that thread runs at once. The calls are
serialised, which costs nothing on a CPU whose cores one call already keeps busy. The thread is a
daemon: Ctrl-C during a long encode ends the process without waiting for the batch to finish.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

__all__ = ["run"]

T = TypeVar("T")

_lock = threading.Lock()
_calls: queue.SimpleQueue | None = None
_thread_id: int | None = None


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the process's PyTorch thread; its result, or its exception."""
    if threading.get_ident() == _thread_id:
        return fn(*args, **kwargs)
    future: Future = Future()
    _queue().put((fn, args, kwargs, future))
    return future.result()


def _queue() -> queue.SimpleQueue:
    global _calls
    with _lock:
        if _calls is None:
            calls: queue.SimpleQueue = queue.SimpleQueue()
            ready = threading.Event()
            threading.Thread(target=_serve, args=(calls, ready), name="bertsearch-torch", daemon=True).start()
            ready.wait()
            _calls = calls
        return _calls


def _forget() -> None:
    """In a forked child: the parent's thread is not there; the first call starts the child's own."""
    global _calls, _thread_id, _lock
    _calls, _thread_id, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget)


def _serve(calls: queue.SimpleQueue, ready: threading.Event) -> None:
    global _thread_id
    _thread_id = threading.get_ident()
    ready.set()
    while True:
        fn, args, kwargs, future = calls.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller, whatever it is
            future.set_exception(exc)
