"""A bound that catches a hang, not a slow machine.

Speed belongs to ``benchmarks/``. A unit test of a hostile input only has to tell linear from
exponential work: the exponential case took minutes to hours before each fix, so a run that
ends within a minute, however loaded the machine, has not hung.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

HANG_SECONDS = 60.0


def without_hanging(fn: Callable[..., Any], *args: Any, seconds: float = HANG_SECONDS) -> Any:
    """``fn(*args)``'s result; fails the test when it has not returned after ``seconds``."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{getattr(fn, '__name__', fn)} did not return within {seconds:.0f} s (a hang)"
    if "error" in out:
        raise out["error"]
    return out["value"]
