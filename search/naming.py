"""Which documents a question names: "How do I do a dry run of wipefs?" names ``wipefs.8.txt``.

A document's name is its file name without extensions and man section, in lower-case words
(:func:`document_names`: ``rsyncd.conf`` of ``rsyncd.conf.5.txt``, ``git rebase`` of
``git-rebase.html``, ``ssh config`` of ``ssh_config.5.txt``). A question names it when it holds
those words in a row (a name in a script written without spaces, Chinese or Japanese, anywhere in
the question). A name of one word that is a common English word (``file``, ``time``, ``at``: the
words of :data:`COMMON_WORDS_FILE`, those of at least 20 of SQuAD train's 87,387 questions, made by
``python -m bertsearch.search.training.common_words``) names nothing: a question about ls's
"full time" does not name ``time.1``. Where two names overlap in the question only the longer
counts (``ssh_config`` names ``ssh_config.5``, not ``ssh.1``).

The confidence of an answer reads it (:func:`bertsearch.search.confidence.confidence_features`):
whether the question names the answer's document, or another document read beside it but not this
one. Pure Python; the word list is read on first use, never at import.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

from bertsearch.indexer.terms import CJK_CHARS

__all__ = ["COMMON_WORDS_FILE", "common_words", "document_names", "file_name_words", "file_stem", "named_documents", "words"]

COMMON_WORDS_FILE = Path(__file__).resolve().parent / "common_words.txt"

# Extensions of documents and man sections ("1", "3am", "8"; a version's ".0" stays).
_EXTENSIONS = re.compile(r"(?:\.(?:txt|html?|xhtml|md|markdown|rst|pdf|gz|[1-9][a-z]{0,5}))+$", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:[.+][^\W_]+)*")
_SCRIPT = re.compile(f"[{CJK_CHARS}]+|[^{CJK_CHARS}]+")
_CJK = re.compile(f"[{CJK_CHARS}]")


class _Located(Protocol):
    path: str
    document_id: int


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """The common English words of :data:`COMMON_WORDS_FILE` (read on the first call)."""
    return frozenset(COMMON_WORDS_FILE.read_text(encoding="utf-8").split())


def words(text: str) -> list[str]:
    """The lower-case words of ``text``: runs of letters and digits (``.`` and ``+`` inside one
    kept: ``rsyncd.conf``), cut where a script written without spaces begins or ends."""
    return [part for token in _TOKEN.findall(text.lower()) for part in _SCRIPT.findall(token)]


def file_stem(path: str) -> str:
    """The file name of ``path`` without its extensions and man section (``ssh_config``)."""
    return _EXTENSIONS.sub("", path.replace("\\", "/").rsplit("/", 1)[-1])


def file_name_words(path: str) -> tuple[str, ...]:
    """The words of :func:`file_stem`."""
    return tuple(words(file_stem(path)))


def document_names(path: str) -> tuple[str, ...]:
    """The words that name the document at ``path`` (:func:`file_name_words`), or ``()`` where
    they could name nothing: a number, one letter, one common English word."""
    found = file_name_words(path)
    if not found or len("".join(found)) < 2 or "".join(found).isdigit():
        return ()
    if len(found) == 1 and found[0] in common_words():
        return ()
    return found


def named_documents(question: str, hits: Sequence[_Located]) -> list[tuple[float, float]]:
    """For each hit: whether ``question`` names its document (1.0 or 0.0), and whether it names
    another document of ``hits`` but not this one (a question about wipefs read in rsync's page)."""
    asked = words(question)
    joined = "".join(asked)
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    named: set[tuple[str, ...]] = set()
    for name in {document_names(hit.path) for hit in hits} - {()}:
        if len(name) == 1 and _CJK.search(name[0]):  # no word boundaries: anywhere in the question
            if name[0] in joined:
                named.add(name)
            continue
        n = len(name)
        spans += [(i, i + n, name) for i in range(len(asked) - n + 1) if tuple(asked[i:i + n]) == name]
    # Where names overlap, the longer one is named ("ssh config" over "ssh").
    named |= {name for lo, hi, name in spans
              if not any(lo2 <= lo and hi <= hi2 and hi2 - lo2 > hi - lo for lo2, hi2, _ in spans)}
    found = [document_names(hit.path) in named for hit in hits]
    return [(1.0 if f else 0.0,
             1.0 if not f and any(g and other.document_id != hit.document_id for g, other in zip(found, hits)) else 0.0)
            for f, hit in zip(found, hits)]
