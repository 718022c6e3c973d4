"""SQuAD paragraphs as a folder of documents, ``<article>/<pid>.txt``, one paragraph each.

The benchmarks (``benchmarks/_common.py``) and the fits (:mod:`bertsearch.search.training.calibrate`)
index such a folder with ``Index.update``; a hit's path names its paragraph (:func:`pid_of_path`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol


class _Paragraph(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def title(self) -> str: ...

    @property
    def context(self) -> str: ...


def slug(title: str) -> str:
    """An article title as a folder name: runs of other characters than ``A-Za-z0-9_-`` become one
    ``_``, at most 80 characters, ``untitled`` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", title).strip("_")[:80] or "untitled"


def document_path(folder: Path, title: str, pid: int) -> Path:
    """Where :func:`write_corpus` puts paragraph ``pid`` of the article ``title``."""
    return folder / slug(title) / f"{pid:05d}.txt"


def write_corpus(paragraphs: Iterable[_Paragraph], folder: Path) -> Path:
    """Write each paragraph as the document ``<slug(title)>/<pid:05d>.txt`` under ``folder``.

    A file that already holds its paragraph is left alone, so a warm ``bertsearch index`` sees
    nothing new; one that holds other text is rewritten.

    Returns:
        ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for p in paragraphs:
        path = document_path(folder, p.title, p.pid)
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == p.context:
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(p.context, encoding="utf-8")
    return folder


def pid_of_path(path: str | Path) -> int:
    """The paragraph id of a document written by :func:`write_corpus`."""
    return int(Path(path).stem)
