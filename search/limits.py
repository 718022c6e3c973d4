"""What a request may ask: the bounds of a query, a count, a threshold and an embedding request,
and their checks (each raises :class:`~bertsearch.indexer.common.errors.InvalidQuery`).

The HTTP API's schemas state the same bounds (``bertsearch.cli.api.schemas``), so a client learns
them from the OpenAPI document; the checks here hold for the embedded :class:`Searcher` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

from bertsearch.indexer.common.errors import InvalidQuery

__all__ = [
    "BLANK", "INPUT_TYPES", "MAX_EF_SEARCH", "MAX_EMBED_CHARS", "MAX_EMBED_TEXTS", "MAX_QUERY_CHARS", "MAX_TOP_K",
    "InputType", "check_count", "check_ef_search", "check_input_type", "check_query", "check_texts", "check_threshold",
]

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 100
MAX_EF_SEARCH = 1024  # HNSW candidates a request may ask for
# One embedding request: at most this many texts of at most this many characters each (the
# encoder reads 256 tokens of a text at most; the bound keeps tokenising a request short).
MAX_EMBED_TEXTS = 256
MAX_EMBED_CHARS = 20_000
# What an embedded text is: a passage (as chunks are encoded) or a search query; they differ only
# for a model with prefixes (E5's "passage: " and "query: ").
InputType = Literal["passage", "query"]
INPUT_TYPES: tuple[str, ...] = get_args(InputType)

# What JSON Schema (ECMAScript) calls white space: a text of only these is blank. The API's schema
# says so with the same set, so a client and the server agree on what "empty" is.
BLANK = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
        "\u2028\u2029\u202f\u205f\u3000\ufeff"


def check_query(text: Any, name: str) -> str:
    """``text`` without its blank ends: a query or question (``name`` says which) of 1 to
    :data:`MAX_QUERY_CHARS` characters.

    Raises:
        InvalidQuery: Not a string, blank, or too long.
    """
    if not isinstance(text, str):
        raise InvalidQuery(f"the {name} must be a string")
    text = text.strip(BLANK)
    if not text:
        raise InvalidQuery(f"the {name} is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"the {name} is too long: {len(text)} characters, at most {MAX_QUERY_CHARS}")
    return text


def check_count(value: Any, name: str) -> None:
    """Raises :class:`InvalidQuery` unless ``value`` is an integer from 1 to :data:`MAX_TOP_K`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise InvalidQuery(f"{name} must be an integer from 1 to {MAX_TOP_K}, got {value!r}")


def check_ef_search(ef_search: Any) -> None:
    """Raises :class:`InvalidQuery` unless ``ef_search`` is ``None`` or an integer from 1 to :data:`MAX_EF_SEARCH`."""
    if ef_search is not None and not (isinstance(ef_search, int) and 1 <= ef_search <= MAX_EF_SEARCH):
        raise InvalidQuery(f"ef_search must be an integer from 1 to {MAX_EF_SEARCH}, got {ef_search!r}")


def check_threshold(threshold: Any) -> None:
    """Raises :class:`InvalidQuery` unless ``threshold`` is a number from 0 to 1."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise InvalidQuery(f"threshold must be from 0 to 1, got {threshold!r}")


def check_texts(texts: Any) -> None:
    """Raises :class:`InvalidQuery` unless ``texts`` is a list of 1 to :data:`MAX_EMBED_TEXTS`
    non-empty strings of at most :data:`MAX_EMBED_CHARS` characters."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidQuery("texts must be a list of strings")
    if not 1 <= len(texts) <= MAX_EMBED_TEXTS:
        raise InvalidQuery(f"give 1 to {MAX_EMBED_TEXTS} texts, not {len(texts)}")
    for n, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            raise InvalidQuery(f"text {n} is empty or not a string")
        if len(text) > MAX_EMBED_CHARS:
            raise InvalidQuery(f"text {n} is too long: {len(text)} characters, at most {MAX_EMBED_CHARS}")


def check_input_type(input_type: Any) -> None:
    """Raises :class:`InvalidQuery` unless ``input_type`` is one of :data:`INPUT_TYPES`."""
    if input_type not in INPUT_TYPES:
        raise InvalidQuery(f"input_type must be one of {', '.join(INPUT_TYPES)}, got {input_type!r}")
