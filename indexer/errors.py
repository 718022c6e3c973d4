"""The error vocabulary of bertsearch.

Every error a user can cause or meet is a subclass of :class:`BertsearchError`. The CLI turns
them into ``Error: ...`` and exit code 1; the HTTP API into one JSON shape (``{"detail": ...}``)
with the status code named by :attr:`BertsearchError.status_code`.
"""

from __future__ import annotations


class BertsearchError(Exception):
    """Base class of every error bertsearch reports to a user."""

    status_code: int = 400


class ConfigError(BertsearchError):
    """A setting or argument is invalid (bad path, bad database URL, bad value)."""


class IndexNotFound(BertsearchError):
    """No index exists at the given location."""

    status_code = 404


class DocumentNotFound(BertsearchError):
    """No document with the given id exists in the index."""

    status_code = 404


class ModelMismatch(BertsearchError):
    """The index was built with other build parameters (model, dimension, pooling, chunking)."""

    status_code = 409


class IndexLocked(BertsearchError):
    """Another writer holds the index."""

    status_code = 409


class IndexCorrupt(BertsearchError):
    """The index files cannot be read and cannot be repaired from the database."""

    status_code = 500


class StorageError(BertsearchError):
    """The database cannot be reached or written (server down, wrong password, disk full)."""

    status_code = 503


class UnsupportedDocument(BertsearchError):
    """A file cannot be read as a document (binary, corrupt, permission denied)."""


class ModelLoadError(BertsearchError):
    """A model directory is missing or does not hold a usable model."""

    status_code = 500


class InvalidQuery(BertsearchError):
    """A query or question is empty, too long, or asks for an out-of-range number of results."""

    status_code = 422
