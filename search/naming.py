"""Which documents a question names: "How do I do a dry run of wipefs?" names ``wipefs.8.txt``.

A document's name is its file name without extensions and man section, in lower-case words
(:func:`document_names`: ``rsyncd.conf`` of ``rsyncd.conf.5.txt``, ``git rebase`` of
``git-rebase.html``, ``ssh config`` of ``ssh_config.5.txt``). A question names it where it holds
those words in a row, not as a part of a longer name (:func:`mentions`: "ssh_config" does not name
``ssh.1``, "git-rebase" does not name ``rebase.html``; beside Chinese or Japanese text a name needs
no space around it). A name of one word that is a common English word (``split``, ``time``,
``at``: the words of :data:`COMMON_WORDS_FILE`, those of at least 20 of SQuAD train's 87,387
questions, made by ``python -m bertsearch.search.training.common_words``) names its document only
as a tool is named: before "option", "flag", "command", "page" ... ("which split option"), or
touching Chinese text ("find的-name选项"); a question about ls's "full time" does not name ``time.1``.
Where one name's mention contains another's, only the longer counts.

The confidence of an answer reads it (:func:`bertsearch.search.confidence.confidence_features`):
whether the question names the answer's document, or another document read beside it but not this
one. Pure Python, linear in the question; the word list is read on first use, never at import.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

from bertsearch.indexer.terms import CJK_CHARS

__all__ = ["COMMON_WORDS_FILE", "common_words", "document_names", "file_name_words", "file_stem", "mentions",
           "named_documents", "words"]

COMMON_WORDS_FILE = Path(__file__).resolve().parent / "common_words.txt"

# Extensions of documents and man sections ("1", "3am", "8"; a version's ".0" stays).
_EXTENSIONS = re.compile(r"(?:\.(?:txt|html?|xhtml|md|markdown|rst|pdf|gz|[1-9][a-z]{0,5}))+$", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:[.+][^\W_]+)*")
_SCRIPT = re.compile(f"[{CJK_CHARS}]+|[^{CJK_CHARS}]+")
_CJK = re.compile(f"[{CJK_CHARS}]")
# A letter, digit or underscore of a script written with spaces: what a name may not touch.
_LATIN = f"[^\\W{CJK_CHARS}]"
_TOOL_NOUN = re.compile(
    r"\s+(?:options?|flags?|switch(?:es)?|commands?|man\s+pages?|pages?|manual|programs?|utility|tool)\b")


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
    they could name nothing: a number (a version too), one letter."""
    found = file_name_words(path)
    joined = "".join(found)
    return () if len(joined) < 2 or re.fullmatch(r"[\d.]+", joined) else found


@lru_cache(maxsize=1024)
def _pattern(name: tuple[str, ...]) -> re.Pattern[str]:
    body = r"[\W_]*".join(map(re.escape, name))
    return re.compile(f"(?<!{_LATIN})(?<![.+-]){body}(?!{_LATIN})(?![+-]|\\.{_LATIN})")


def mentions(question: str, name: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where ``question`` (lower-cased: the offsets are those of ``question.lower()``) names a
    document called ``name`` (:func:`document_names`), as the module docstring says."""
    if not name:
        return []
    text = question.lower()
    common = len(name) == 1 and name[0] in common_words()
    found = []
    for m in _pattern(name).finditer(text):
        lo, hi = m.span()
        if common and not (_TOOL_NOUN.match(text, hi) or _CJK.match(text[hi:hi + 1])
                           or (lo > 0 and _CJK.match(text[lo - 1]))):
            continue
        found.append((lo, hi))
    return found


def named_documents(question: str, hits: Sequence[_Located]) -> list[tuple[float, float]]:
    """For each hit: whether ``question`` names its document (1.0 or 0.0), and whether it names
    another document of ``hits`` but not this one (a question about wipefs read in rsync's page)."""
    names = [document_names(hit.path) for hit in hits]
    spans = [(lo, hi, name) for name in set(names) - {()} for lo, hi in mentions(question, name)]
    # Where one mention contains another's, the longer one is named ("配置说明" over "配置").
    named = {name for lo, hi, name in spans
             if not any(lo2 <= lo and hi <= hi2 and hi2 - lo2 > hi - lo for lo2, hi2, _ in spans)}
    found = [name in named for name in names]
    return [(1.0 if f else 0.0,
             1.0 if not f and any(g and other.document_id != hit.document_id for g, other in zip(found, hits)) else 0.0)
            for f, hit in zip(found, hits)]
