"""A bound that catches a hang, not a slow machine.

Speed belongs to ``benchmarks/``. A unit test of a hostile input only has to tell linear from
exponential work: the exponential case took minutes to hours before each fix, so a run that
ends within a minute, however loaded the machine, has not hung.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

HANG_SECONDS = 60.0


def exit_code_in_child(fn: Callable[..., Any], *args: Any, seconds: float = HANG_SECONDS) -> int:
    """Run ``fn(*args)`` in a forked child and return its exit code: ``fn``'s result when that is
    an ``int``, 0 when it returns anything else, 1 when it raises. Fails the test, killing the
    child, when it has not ended after ``seconds`` (a hang, or a lock the fork inherited)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 1
        try:
            result = fn(*args)
            code = result if type(result) is int else 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + seconds
    while not (waited := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError(f"{getattr(fn, '__name__', fn)} did not return within {seconds:.0f} s (a hang)")
        time.sleep(0.01)
    return os.waitstatus_to_exitcode(waited[1])


def without_hanging(fn: Callable[..., Any], *args: Any, seconds: float = HANG_SECONDS, in_child: bool = True) -> Any:
    """``fn(*args)``'s result; fails the test when the call has not returned after ``seconds``.

    ``in_child`` (for pure computations): the call first runs in a forked child, killed at the
    bound, since a regular expression holds the interpreter lock while it matches and no thread
    of this process could give up on it; then here, for the result. Otherwise (a call that needs
    this process's threads, such as a TestClient's) it runs in a thread, and the bound is checked
    when it returns.
    """
    if in_child:
        exit_code_in_child(fn, *args, seconds=seconds)
        return fn(*args)
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    began = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    took = time.monotonic() - began
    assert not worker.is_alive() and took < seconds, f"{getattr(fn, '__name__', fn)} took {took:.0f} s (a hang)"
    if "error" in out:
        raise out["error"]
    return out["value"]
