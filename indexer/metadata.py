"""What a document's metadata holds (``documents.metadata``, one flat JSON object).

Values are strings, numbers, booleans or lists of strings. One object holds, from the first
that gives a name to the last (the first wins):

1. the caller's own fields (a document put by key with ``metadata``);
2. the file's facts: ``type`` (the reader: ``text``, ``markdown``, ``rst``, ``html``, ``pdf``),
   ``size`` (bytes), ``mtime`` (seconds since the epoch: the file's, or when it was put);
3. what the file declares: Markdown YAML front matter (every field), HTML ``<meta name content>``
   and ``<html lang>`` (as ``language``), a PDF's ``title`` and ``author``;
4. ``title`` (the document's title) and ``language``, guessed from the text's script:
   ``zh`` when most letters are Han, ``ja`` when kana are a fifth of them, ``ko`` when most are
   Hangul, else ``en`` (a guess, cheap and the same everywhere; declare ``language`` to be sure).

A filter (:mod:`~bertsearch.indexer.filters`) also sees ``path`` and ``source``, the document's
own, whatever these hold.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["FOUND", "declared", "found_metadata", "guess_language", "merged"]

FOUND = ("title", "author", "type", "size", "mtime", "language")
"""The names bertsearch fills in itself (a file's front matter or the caller may set them too)."""
_MAX_FIELDS = 64  # declared fields kept, the first ones
_MAX_TEXT = 1000  # characters of one declared string, the rest cut
_MAX_ITEMS = 64  # items of one declared list
_SAMPLE = 20_000  # characters of the text the language is guessed from


def declared(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """The fields a file declares (front matter, HTML meta) that metadata can hold: names are
    non-empty strings not starting with ``$``; dates become ISO strings, lists of scalars lists of
    strings; nested objects and nulls are left out; long strings and lists are cut."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if len(out) >= _MAX_FIELDS:
            break
        if not isinstance(name, str) or not name.strip() or name.startswith("$"):
            continue
        kept = _value(value)
        if kept is not None:
            out[name.strip()] = kept
    return out


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)  # JSON numbers beyond that lose digits
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:_MAX_TEXT].replace("\x00", " ") if value.strip() else None  # PostgreSQL: no NUL
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        items = [_value(v) for v in value[:_MAX_ITEMS]]
        return [str(v).lower() if isinstance(v, bool) else str(v) for v in items if v is not None]
    return None


def guess_language(text: str) -> str:
    """``zh``, ``ja``, ``ko`` or ``en`` from the scripts of the letters (see the module docstring)."""
    han = kana = hangul = letters = 0
    for ch in text[:_SAMPLE]:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
            kana += 1
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            hangul += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or code >= 0x20000:
            han += 1
    if not letters:
        return "en"
    if kana * 5 >= letters:
        return "ja"
    if hangul * 2 > letters:
        return "ko"
    if han * 2 > letters:
        return "zh"
    return "en"


def found_metadata(text: str, title: str, declared_fields: Mapping[str, Any], kind: str, size: int,
                   mtime: float) -> dict[str, Any]:
    """What bertsearch finds of a document (2 to 4 in the module docstring)."""
    out: dict[str, Any] = {"title": title, "language": guess_language(text)}
    out.update(declared_fields)
    out.update(type=kind, size=int(size), mtime=float(mtime))
    return out


def merged(found: Mapping[str, Any] | None, caller: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The caller's fields over what was found (``None`` when both are empty)."""
    out = {**(found or {}), **(caller or {})}
    return out or None
