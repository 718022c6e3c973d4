"""Words for the lexical index, cut for technical text.

A plain word tokenizer splits ``sshd_config`` at the underscore and ``--rebuild`` loses its
dashes, so the question's exact words stop matching. :func:`lexical_terms` keeps every
compound whole (identifiers, paths, options, versions, ``host:port``) and adds its parts, so a
query for ``sshd_config``, ``sshd`` or ``config`` finds the same passage:

>>> lexical_terms("Set PermitRootLogin in /etc/ssh/sshd_config, then run --rebuild")
['set', 'permitrootlogin', 'permit', 'root', 'login', 'in', '/etc/ssh/sshd_config', 'etc', 'ssh', 'sshd_config', 'sshd', 'config', 'then', 'run', '--rebuild', 'rebuild']

The lexical index then lower-cases and stems each term (English Porter stemmer), on the indexed
text and on the query alike.
"""

from __future__ import annotations

import re

__all__ = ["lexical_terms", "MAX_TERM_CHARS"]

MAX_TERM_CHARS = 64
"""Longer compounds are kept only as their parts (a base64 blob is no search term)."""

# A compound: word characters joined by the punctuation of identifiers, paths, versions,
# options and addresses; a leading "/", "-", "--" or "~" belongs to it (a path, an option).
_COMPOUND = re.compile(r"(?:--?|/|~/?|\.)?\w+(?:[./:\-@+]\w+|/)*", re.UNICODE)
_PART = re.compile(r"[^\W_]+|_+", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def lexical_terms(text: str) -> list[str]:
    """The terms of ``text``, lower-cased, in order: each compound, then its parts."""
    out: list[str] = []
    for match in _COMPOUND.finditer(text):
        compound = match.group().rstrip("/")
        whole = compound.lower()
        parts = _parts(compound)
        if len(whole) <= MAX_TERM_CHARS and whole not in parts:
            out.append(whole)
        out.extend(p for p in parts if len(p) <= MAX_TERM_CHARS)
    return out


def _parts(compound: str) -> list[str]:
    """``/etc/ssh/sshd_config`` -> etc, ssh, sshd_config, sshd, config; ``camelCase`` -> camelcase, camel, case."""
    parts: list[str] = []
    for piece in re.split(r"[./:\-@+~]+", compound):
        if not piece:
            continue
        words = [w for w in _PART.findall(piece) if not w.startswith("_")]
        if len(words) > 1 or piece.strip("_") != piece:
            parts.append(piece.lower())  # snake_case or __dunder__ as written
        for word in words:
            camel = _CAMEL.findall(word)
            parts.append(word.lower())
            if len(camel) > 1:
                parts.extend(c.lower() for c in camel)
    return parts
