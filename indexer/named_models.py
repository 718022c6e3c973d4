"""Encoders named rather than given as a folder: ``--model multilingual-e5-small``.

A name resolves to a local folder made on first use (:func:`resolve_model`); an index built with
it stores that folder, and its model id begins with the name (:func:`model_name`), so an index
whose folder was removed with the cache is served by the same model, made again (the conversion
is deterministic: the same fingerprint).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bertsearch.indexer import e5_convert, mpnet_parts

__all__ = ["NAMES", "as_name", "model_name", "named_model_folder", "resolve_model"]

# name -> (cache folder, notify) -> the model folder
_CONVERTERS: dict[str, Callable[..., Path]] = {
    e5_convert.NAME: e5_convert.converted_model,
    mpnet_parts.NAME: mpnet_parts.joined_model,
}
NAMES = tuple(_CONVERTERS)


def resolve_model(value: str, cache_dir: Path, *, notify: Callable[[str], None] | None = None) -> str:
    """The model folder ``value`` names: a named model's (made on first use, ``notify`` told),
    else ``value`` itself, a folder (one of that name in the working folder wins over a name).

    Raises:
        ConfigError: The named model's package is missing (the install hint), or the cache
            folder cannot be written.
        ModelLoadError: The named model's source is not the pinned file.
    """
    name = as_name(value)
    return value if name is None else str(named_model_folder(name, cache_dir, notify=notify))


def as_name(value: str) -> str | None:
    """``value`` when it names a model, else ``None``: a folder of that name in the working
    folder is a folder, not the name."""
    return value if value in _CONVERTERS and not Path(value).is_dir() else None


def named_model_folder(name: str, cache_dir: Path, *, notify: Callable[[str], None] | None = None) -> Path:
    """The folder of the named model ``name`` (made on first use), never a folder of that name in
    the working folder.

    Raises:
        KeyError: ``name`` names no model.
        ConfigError: Its package is missing (the install hint), or the cache folder cannot be written.
        ModelLoadError: Its source is not the pinned file.
    """
    return _CONVERTERS[name](Path(cache_dir), notify=notify)


def model_name(model_id: str) -> str | None:
    """The name of the named model whose fingerprint is ``model_id`` (``<name>@<digest>``), else ``None``."""
    name = model_id.partition("@")[0]
    return name if name in _CONVERTERS else None
