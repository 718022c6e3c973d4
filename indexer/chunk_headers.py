"""What the encoder reads of a chunk: its text alone, or a header before it (``chunk_header``, a
build parameter stored in ``index_state``).

``title`` puts the document's title before each chunk (``<header>\\n<chunk text>``): a chunk deep
in a page still says which page it is. Only the vectors change: the stored chunk text, its
offsets and the lexical index are the chunk's own text, whatever the header.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from bertsearch.indexer.common.errors import ConfigError

if TYPE_CHECKING:
    from bertsearch.indexer.commit import DocumentWrite

__all__ = ["HEADERS", "LEGACY_HEADER", "encoded_texts", "header_of"]

HEADERS = ("none", "title")
"""The values of ``chunk_header``: ``none`` (the chunk's text alone) or ``title``."""
LEGACY_HEADER = "none"
"""The header of the indexes built before it was stored (``index_state.chunk_header`` NULL)."""


def header_of(title: str, path: str) -> str:
    """The header of the document at ``path``: its title, or, where the title is just the file's
    name (what a plain text file reads to, ``ls.1.txt``), that name less its last suffix (``ls.1``);
    none (``""``) where that name holds no letter (``00012.txt``, ``2024-01-05.txt``): a number says
    nothing of the chunk, and before every chunk it costs the dense retriever (SQuAD train paragraphs
    as ``<pid>.txt`` files: recall@5 87.1% alone, 85.9% behind their number)."""
    name = PurePosixPath(path).name
    if title == name:
        stem = PurePosixPath(name).stem
        return stem if any(ch.isalpha() for ch in stem) else ""
    return title.strip()


def encoded_texts(doc: DocumentWrite, header: str) -> list[str]:
    """The texts to encode for ``doc``'s chunks, in order: ``header_of(...) + "\\n" + chunk.text``
    with the header ``title`` (and a non-empty title), else ``chunk.text``.

    Raises:
        ConfigError: ``header`` is not one of :data:`HEADERS`.
    """
    if header not in HEADERS:
        raise ConfigError(f"unknown chunk header {header!r}: one of {', '.join(HEADERS)}")
    head = header_of(doc.title, doc.path) if header == "title" else ""
    return [f"{head}\n{chunk.text}" if head else chunk.text for chunk in doc.chunks]
