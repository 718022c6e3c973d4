"""The progress bar of long work: a tqdm bar on stderr when shown, a silent stand-in otherwise."""

from __future__ import annotations

from typing import Any, Iterable


def progress_bar(show: bool, desc: str, unit: str, total: int | None = None, iterable: Iterable | None = None) -> Any:
    """A tqdm bar (disabled unless ``show``), cleared when done; iterate it when given ``iterable``.

    A disabled bar prints nothing and accepts ``update`` and ``close``, so callers need no check.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, disable=not show)
