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
serialised, which costs nothing on a CPU whose cores one call already keeps busy.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

__all__ = ["run"]

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_owner_pid = 0
_thread_id: int | None = None


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the process's PyTorch thread; its result, or its exception."""
    if threading.get_ident() == _thread_id and os.getpid() == _owner_pid:
        return fn(*args, **kwargs)
    return _pool().submit(fn, *args, **kwargs).result()


def _pool() -> ThreadPoolExecutor:
    global _executor, _owner_pid
    with _lock:
        if _executor is None or _owner_pid != os.getpid():  # a forked child has no such thread
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertsearch-torch",
                                           initializer=_mark)
            _owner_pid = os.getpid()
        return _executor


def _mark() -> None:
    global _thread_id
    _thread_id = threading.get_ident()
