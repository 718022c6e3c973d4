"""The encoder of an open index: loaded on first use for the build being served, checked
against it, and dropped when a rebuild with another model is served (:mod:`.serving`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from bertsearch.indexer.build_rules import BuildRules
from bertsearch.indexer.common.errors import ModelMismatch
from bertsearch.indexer.snapshot import BuildParams

if TYPE_CHECKING:
    from bertsearch.indexer.encoder import Encoder

__all__ = ["EncoderSlot"]


class EncoderSlot:
    """Holds at most one :class:`~bertsearch.indexer.encoder.Encoder` (``encoder``: one already loaded)."""

    def __init__(self, rules: BuildRules, encoder: Encoder | None = None) -> None:
        self._rules = rules
        self._encoder = encoder
        # Loading a model from two threads at once breaks transformers' lazy imports; a refresh
        # that drops the encoder after a model change takes the same lock.
        self.lock = threading.RLock()

    def get(self, params: Callable[[], BuildParams]) -> Encoder:
        """The encoder, loaded and checked against ``params()`` (read under the lock) if there is none.

        Raises:
            ModelMismatch: The model is not the one the index was built with.
        """
        with self.lock:
            if self._encoder is None:
                built = params()
                encoder = self._load(self._rules.model_path(built), built)
                self._rules.check_model(built, encoder)
                self._encoder = encoder
            return self._encoder

    def for_build(self, old: BuildParams | None) -> Encoder:
        """The encoder of a new build replacing ``old`` (``None``: a new index): the one held, or
        the one the settings name, loaded unchecked."""
        if self._encoder is None:
            self._encoder = self._load(self._rules.model_path(old), None)
        return self._encoder

    def check(self, params: BuildParams) -> None:
        """Raises :class:`ModelMismatch` if an encoder is held that does not make ``params``' vectors."""
        if self._encoder is not None:
            self._rules.check_model(params, self._encoder)

    def forget(self) -> None:
        """Drop the encoder (hold :attr:`lock`): the next :meth:`get` loads the served build's."""
        self._encoder = None

    def precision(self, params: BuildParams) -> str:
        """How queries are encoded for ``params``: the held encoder's, or what one would load with
        (``"mismatch"`` where the set precision does not make the index's vectors)."""
        if self._encoder is not None:
            return self._encoder.precision
        try:
            return self._rules.encoder_precision(params)
        except ModelMismatch:
            return "mismatch"

    def _load(self, path: str, params: BuildParams | None) -> Encoder:
        from bertsearch.indexer.encoder import Encoder

        settings = self._rules.settings
        return Encoder(path, precision=self._rules.encoder_precision(params), batch_size=settings.batch_size,
                       cache_dir=settings.cache_dir)
