"""The ``where`` filter of a search: Chroma's operators over a document's metadata.

A filter is a JSON object. ``{"lang": "zh"}`` (a bare value: ``$eq``); ``{"year": {"$gte": 2020}}``;
``{"tags": {"$contains": "ops"}}``; ``{"path": {"$glob": "docs/*.md"}}``; ``{"$or": [{...}, {...}]}``.
Several fields in one object, or several operators on one field, must all hold (an implicit
``$and``). The operators:

- ``$eq``, ``$ne``: a string, number or boolean (``true`` is not ``1``); ``$in``, ``$nin``: a list of them;
- ``$gt``, ``$gte``, ``$lt``, ``$lte``: a number (compared with numbers) or a string (with strings,
  e.g. ISO dates);
- ``$contains``: a string held by a list field (``tags``);
- ``$glob``: a path glob (the syntax of ``path_glob`` and ``--include``), over a string field;
- ``$and``, ``$or``: a non-empty list of filters.

A field a document lacks matches only ``$ne`` and ``$nin`` (the negations of ``$eq`` and ``$in``).
A document's fields are its metadata (:mod:`~bertsearch.indexer.metadata`) plus ``path`` (its
relative path or key) and ``source`` (``folder`` or ``api``), which are always the document's own.

:func:`parse_where` checks a filter and gives a :class:`Where` (its bad part named in the
:class:`~bertsearch.indexer.common.errors.InvalidQuery`); :meth:`Where.matches` evaluates it on
one document's fields. Which chunks pass is worked out per generation by
:class:`~bertsearch.indexer.reading.ChunkReader`, and both retrievers search only those.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from bertsearch.indexer.common.errors import InvalidGlob, InvalidQuery

__all__ = ["MAX_CLAUSES", "MAX_DEPTH", "OPERATORS", "Where", "parse_where"]

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$glob")
_LOGICAL = ("$and", "$or")
MAX_DEPTH = 8  # nested $and / $or
MAX_CLAUSES = 64  # field conditions in one filter
_MAX_LIST = 256  # values of one $in / $nin
_MAX_TEXT = 1000  # characters of one string value (a glob included)


@dataclass(frozen=True)
class _Condition:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class _Group:
    op: str  # "$and" or "$or"
    parts: tuple[Any, ...]


class Where:
    """A checked filter: :meth:`matches` a document's fields; :attr:`key` is its canonical JSON
    (the same filter written in another order has the same key)."""

    def __init__(self, root: Any, key: str) -> None:
        self._root = root
        self.key = key

    def matches(self, fields: dict[str, Any]) -> bool:
        """Whether a document with these fields (metadata, ``path``, ``source``) passes."""
        return _holds(self._root, fields)

    def and_path(self, path_glob: str | None) -> Where:
        """This filter and ``{"path": {"$glob": path_glob}}`` (itself when ``path_glob`` is empty)."""
        if not path_glob:
            return self
        glob = parse_where({"path": {"$glob": path_glob}})
        assert glob is not None
        return Where(_Group("$and", (self._root, glob._root)), json.dumps(["$and", self.key, glob.key]))

    def __repr__(self) -> str:
        return f"Where({self.key})"


def parse_where(where: Any) -> Where | None:
    """``where`` checked and compiled (``None`` or ``{}``: no filter).

    Raises:
        InvalidQuery: It is not a filter; the message names the bad part (``where.$or[1].year.$gt``).
    """
    if where is None or (isinstance(where, dict) and not where):
        return None
    if isinstance(where, Where):
        return where
    count = [0]
    root = _parse(where, "where", 0, count)
    return Where(root, json.dumps(_canonical(root), sort_keys=True, ensure_ascii=False))


def _parse(node: Any, at: str, depth: int, count: list[int]) -> Any:
    if not isinstance(node, dict):
        raise InvalidQuery(f"{at}: a filter must be a JSON object, not {_kind(node)}")
    if not node:
        raise InvalidQuery(f"{at}: an empty object filters nothing; leave it out")
    if depth > MAX_DEPTH:
        raise InvalidQuery(f"{at}: nested more than {MAX_DEPTH} levels deep")
    parts = []
    for name, value in node.items():
        here = f"{at}.{name}"
        if name in _LOGICAL:
            if not isinstance(value, list) or not value:
                raise InvalidQuery(f"{here}: expects a non-empty list of filters")
            parts.append(_Group(name, tuple(_parse(v, f"{here}[{i}]", depth + 1, count)
                                            for i, v in enumerate(value))))
        elif not isinstance(name, str) or not name:
            raise InvalidQuery(f"{at}: a field name must be a non-empty string")
        elif name.startswith("$"):
            raise InvalidQuery(f"{here}: unknown operator {name!r} (fields cannot start with '$'; "
                               f"operators: {', '.join(_LOGICAL + OPERATORS)})")
        elif isinstance(value, dict):
            if not value:
                raise InvalidQuery(f"{here}: an empty object; give an operator such as {{\"$eq\": ...}}")
            parts.extend(_condition(name, op, operand, f"{here}.{op}", count) for op, operand in value.items())
        else:
            parts.append(_condition(name, "$eq", value, here, count))
    return parts[0] if len(parts) == 1 else _Group("$and", tuple(parts))


def _condition(field: str, op: str, value: Any, at: str, count: list[int]) -> _Condition:
    count[0] += 1
    if count[0] > MAX_CLAUSES:
        raise InvalidQuery(f"{at}: a filter holds at most {MAX_CLAUSES} conditions")
    if op not in OPERATORS:
        raise InvalidQuery(f"{at}: unknown operator {op!r} (on a field: {', '.join(OPERATORS)})")
    if op in ("$eq", "$ne"):
        _check_scalar(value, at)
    elif op in ("$in", "$nin"):
        if not isinstance(value, list) or not value or len(value) > _MAX_LIST:
            raise InvalidQuery(f"{at}: expects a list of 1 to {_MAX_LIST} values")
        for i, v in enumerate(value):
            _check_scalar(v, f"{at}[{i}]")
        value = tuple(value)
    elif op in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InvalidQuery(f"{at}: expects a number or a string, not {_kind(value)}")
        _check_scalar(value, at)
    elif op == "$contains":
        if not isinstance(value, str):
            raise InvalidQuery(f"{at}: expects a string (an item of a list field), not {_kind(value)}")
        _check_scalar(value, at)
    else:  # $glob
        if not isinstance(value, str) or not value.strip():
            raise InvalidQuery(f"{at}: expects a glob such as \"docs/*.md\", not {_kind(value)}")
        _check_scalar(value, at)
        value = _compiled_glob(value, at)
    return _Condition(field, op, value)


def _check_scalar(value: Any, at: str) -> None:
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise InvalidQuery(f"{at}: a string of {len(value)} characters, at most {_MAX_TEXT}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidQuery(f"{at}: not a finite number")
    elif not isinstance(value, (bool, int)):
        raise InvalidQuery(f"{at}: expects a string, number or boolean, not {_kind(value)}")


@dataclass(frozen=True)
class _Glob:
    pattern: str
    compiled: Any


def _compiled_glob(pattern: str, at: str) -> _Glob:
    from bertsearch.indexer.documents import compile_glob

    try:
        return _Glob(pattern, compile_glob(pattern))
    except InvalidGlob as exc:
        raise InvalidQuery(f"{at}: {exc}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _canonical(node: Any) -> Any:
    if isinstance(node, _Group):
        return {node.op: sorted((_canonical(p) for p in node.parts), key=lambda p: json.dumps(p, sort_keys=True))}
    value = node.value
    if isinstance(value, _Glob):
        value = value.pattern
    elif isinstance(value, tuple):
        value = [_typed(v) for v in value]
    else:
        value = _typed(value)
    return [node.field, node.op, value]


def _typed(value: Any) -> Any:
    # true and 1 are different filters, though Python holds them equal
    return ["b", value] if isinstance(value, bool) else value


# -- evaluation ---------------------------------------------------------------------------------

def _holds(node: Any, fields: dict[str, Any]) -> bool:
    if isinstance(node, _Group):
        if node.op == "$and":
            return all(_holds(p, fields) for p in node.parts)
        return any(_holds(p, fields) for p in node.parts)
    present = node.field in fields
    value = fields.get(node.field)
    op = node.op
    if op == "$ne":
        return not (present and _same(value, node.value))
    if op == "$nin":
        return not (present and any(_same(value, v) for v in node.value))
    if not present:
        return False
    if op == "$eq":
        return _same(value, node.value)
    if op == "$in":
        return any(_same(value, v) for v in node.value)
    if op == "$contains":
        return isinstance(value, list) and node.value in value
    if op == "$glob":
        return isinstance(value, str) and _glob_matches(node.value, value)
    return _compares(op, value, node.value)


def _same(a: Any, b: Any) -> bool:
    """Equal and of one kind: a boolean equals only a boolean, a number only a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and isinstance(a, str) and a == b


def _compares(op: str, value: Any, bound: Any) -> bool:
    if isinstance(bound, str):
        if not isinstance(value, str):
            return False
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if op == "$gt":
        return value > bound
    if op == "$gte":
        return value >= bound
    if op == "$lt":
        return value < bound
    return value <= bound


def _glob_matches(glob: _Glob, value: str) -> bool:
    from bertsearch.indexer.documents import matches_any

    return matches_any([glob.compiled], PurePosixPath(value))
