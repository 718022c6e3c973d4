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


def without_hanging(fn: Callable[..., Any], *args: Any, seconds: float = HANG_SECONDS, in_child: bool = True) -> Any:
    """``fn(*args)``'s result; fails the test when the call has not returned after ``seconds``.

    ``in_child`` (for pure computations): the call first runs in a forked child, killed at the
    bound, since a regular expression holds the interpreter lock while it matches and no thread
    of this process could give up on it; then here, for the result. Otherwise (a call that needs
    this process's threads, such as a TestClient's) it runs in a thread, and the bound is checked
    when it returns.
    """
    if in_child:
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            code = 1
            try:
                fn(*args)
                code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + seconds
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise AssertionError(f"{getattr(fn, '__name__', fn)} did not return within {seconds:.0f} s (a hang)")
            time.sleep(0.01)
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
