"""The error vocabulary of bertsearch.

Every error a user can cause or meet is a subclass of :class:`BertsearchError`. The CLI turns
them into ``Error: ...`` and exit code 1; the HTTP API into one JSON shape (``{"detail": ...}``)
with a status code chosen there (``bertsearch.cli.api.errors``): the core knows no HTTP.
"""

from __future__ import annotations


class BertsearchError(Exception):
    """Base class of every error bertsearch reports to a user."""


class ConfigError(BertsearchError):
    """A setting or argument is invalid (bad path, bad database URL, bad value)."""


class IndexNotFound(BertsearchError):
    """No index exists at the given location."""


class DocumentNotFound(BertsearchError):
    """No document with the given id exists in the index."""


class ModelMismatch(BertsearchError):
    """The index was built with other build parameters (model, dimension, pooling, chunking)."""


class IndexLocked(BertsearchError):
    """Another writer holds the index."""


class IndexCorrupt(BertsearchError):
    """The index files cannot be read and cannot be repaired from the database."""


class StorageError(BertsearchError):
    """The database cannot be reached or written (server down, wrong password, disk full)."""


class UnsupportedDocument(BertsearchError):
    """A file cannot be read as a document (binary, corrupt, permission denied)."""


class ModelLoadError(BertsearchError):
    """A model directory is missing or does not hold a usable model."""


class InvalidQuery(BertsearchError):
    """A query or question is empty, too long, or asks for an out-of-range number of results."""


class InvalidDocument(BertsearchError):
    """A document to put or delete by key is malformed or over a limit (key, metadata, batch size)."""


class InvalidGlob(InvalidQuery, ConfigError):
    """A path filter or an ``--include``/``--exclude`` pattern is not a valid glob."""
