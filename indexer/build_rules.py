"""What an index is built with, and the checks of the settings against it.

The build parameters (model, dimension, pooling, the query and passage prefixes, precision,
chunking, the chunk header, index type, schema version, the lexical cut) are stored in
``index_state`` (:class:`~bertsearch.indexer.snapshot.BuildParams`). A setting that asks for
other ones raises :class:`ModelMismatch` naming ``--rebuild`` (or, for the index type,
``--index-type``, which rebuilds FAISS from SQL); a setting left unset follows the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertsearch.indexer.common.errors import ConfigError, ModelMismatch
from bertsearch.indexer.common.precision import family, resolve, use_bf16
from bertsearch.indexer.common.settings import Settings, packaged_encoder_path
from bertsearch.indexer.named_models import model_name, resolve_model
from bertsearch.indexer.models import SCHEMA_VERSION, utcnow
from bertsearch.indexer.snapshot import BuildParams
from bertsearch.indexer.terms import DEFAULT_CUT

if TYPE_CHECKING:
    from bertsearch.indexer.encoder import Encoder

__all__ = ["BuildRules"]


class BuildRules:
    """The build parameters that ``settings`` ask of the index in ``index_dir``, and their checks."""

    def __init__(self, settings: Settings, index_dir: Path) -> None:
        self.settings = settings
        self.index_dir = index_dir

    def model_path(self, params: BuildParams | None) -> str:
        """The encoder to load for an index built with ``params`` (``None``: a new build)."""
        # Explicit setting > the model the index was built with (if still there, or converted
        # again when it is a named model) > packaged default.
        if self.settings.model_path:
            return resolve_model(self.settings.model_path, self.settings.cache_dir)
        if params is not None and Path(params.model_path).is_dir():
            return params.model_path
        if params is not None and model_name(params.model_id):
            return resolve_model(model_name(params.model_id), self.settings.cache_dir)
        return packaged_encoder_path()

    def chunk_param(self, name: str, params: BuildParams | None) -> int:
        """``chunk_tokens`` or ``chunk_overlap``: the setting if set (or a new build), else the index's."""
        if name in self.settings.model_fields_set or params is None:
            return int(getattr(self.settings, name))
        return int(getattr(params, name))

    def chunk_header(self, params: BuildParams | None) -> str:
        """``chunk_header``: the setting if set (or a new build), else the index's."""
        if "chunk_header" in self.settings.model_fields_set or params is None:
            return self.settings.chunk_header
        return params.header

    def build_values(self, encoder: Encoder, old: BuildParams | None) -> dict[str, Any]:
        """The ``index_state`` values of a new build with ``encoder`` and the current settings
        (``old``: the build it replaces, whose chunking, chunk header and index type it keeps unless set).

        Raises:
            ConfigError: The chunk overlap is not smaller than the chunk size.
        """
        values = dict(
            model_id=encoder.model_id,
            model_path=str(Path(self.model_path(old)).resolve()),
            dimension=encoder.dimension,
            pooling=encoder.pooling,
            query_prefix=encoder.query_prefix,
            passage_prefix=encoder.passage_prefix,
            precision=encoder.precision,
            chunk_tokens=self.chunk_param("chunk_tokens", old),
            chunk_overlap=self.chunk_param("chunk_overlap", old),
            chunk_header=self.chunk_header(old),
            index_type=(self.settings.index_type if old is None or "index_type" in self.settings.model_fields_set
                        else old.index_type),
            schema_version=SCHEMA_VERSION,
            lexical_cut=DEFAULT_CUT,  # a new build takes the current cut (an old index keeps its own)
            root=None,
            updated_at=utcnow(),
        )
        if values["chunk_overlap"] >= values["chunk_tokens"]:
            raise ConfigError(
                f"chunk overlap ({values['chunk_overlap']}) must be smaller than chunk size ({values['chunk_tokens']})"
            )
        return values

    def check_schema(self, params: BuildParams) -> None:
        """Raises :class:`ConfigError` for an index written by a newer bertsearch."""
        if params.schema_version > SCHEMA_VERSION:
            raise ConfigError(
                f"the index {self.index_dir} was written by a newer bertsearch (schema {params.schema_version}); "
                "upgrade bertsearch to read it"
            )

    def new_index_type(self, params: BuildParams, *, create: bool) -> str | None:
        """The index type to store: the setting, where it is set and differs from the index's.

        Raises:
            ModelMismatch: It differs and ``create`` is false (``bertsearch index --index-type``
                changes it).
        """
        wanted = self.settings.index_type
        if "index_type" not in self.settings.model_fields_set or wanted == (params.index_type or "auto"):
            return None
        if not create:
            raise ModelMismatch(
                f"the index {self.index_dir} uses the index type {params.index_type or 'auto'}, not "
                f"{wanted}; change it with `bertsearch index PATH --index-type "
                f"{wanted}` (the FAISS index is rebuilt from SQL, nothing is re-encoded)")
        return wanted

    def check_chunking(self, params: BuildParams) -> None:
        """Raises :class:`ModelMismatch` when set chunk options differ from the index's."""
        wanted = (self.chunk_param("chunk_tokens", params), self.chunk_param("chunk_overlap", params))
        built = (params.chunk_tokens, params.chunk_overlap)
        if wanted != built:
            raise ModelMismatch(
                f"the index {self.index_dir} was built with chunks of {built[0]} tokens (overlap {built[1]}), "
                f"not {wanted[0]} (overlap {wanted[1]}); run `bertsearch index PATH --rebuild` "
                "to rebuild it with the new chunking, or leave the chunk options unset"
            )

    def check_chunk_header(self, params: BuildParams) -> None:
        """Raises :class:`ModelMismatch` when a set chunk header differs from the index's."""
        wanted = self.chunk_header(params)
        if wanted != params.header:
            raise ModelMismatch(
                f"the index {self.index_dir} was built with the chunk header {params.header}, not {wanted}; "
                "run `bertsearch index PATH --rebuild` to re-encode everything with it, "
                "or leave the chunk header unset"
            )

    def check_model(self, params: BuildParams, encoder: Encoder) -> None:
        """Raises :class:`ModelMismatch` when ``encoder`` does not make the index's vectors."""
        p = params
        built = (p.model_id, p.dimension, p.pooling)
        given = (encoder.model_id, encoder.dimension, encoder.pooling)
        if family(p.precision) != family(encoder.precision):
            raise ModelMismatch(_precision_mismatch(self.index_dir, p.precision, encoder.precision))
        if built == given and p.prefixes != (encoder.query_prefix, encoder.passage_prefix):
            raise ModelMismatch(
                f"the index {self.index_dir} was built with the prefixes {p.prefixes[0]!r} (queries) and "
                f"{p.prefixes[1]!r} (chunks), and the model now says {encoder.query_prefix!r} and "
                f"{encoder.passage_prefix!r} (config_sentence_transformers.json); run `bertsearch index PATH "
                "--rebuild` to re-encode everything with them")
        if built != given:
            raise ModelMismatch(
                f"the index {self.index_dir} was built with the model {p.model_id} "
                f"(dimension {p.dimension}, {p.pooling} pooling), not {given[0]} "
                f"(dimension {given[1]}, {given[2]} pooling); run `bertsearch index PATH --rebuild` "
                "to re-encode everything with the new model, or use the model it was built with "
                f"({p.model_path})"
            )

    def encoder_precision(self, params: BuildParams | None) -> str:
        """How to encode for an index built with ``params`` (``None``: a new build, which takes the
        setting). A set precision must make the index's vectors (else :class:`ModelMismatch`);
        ``auto`` keeps int8 for an int8 index and picks bf16 or fp32 by the CPU for the others."""
        wanted = self.settings.precision
        if params is None:
            return resolve(wanted)
        if wanted == "auto":
            return "int8" if family(params.precision) == "int8" else ("bf16" if use_bf16("auto") else "fp32")
        if family(wanted) != family(params.precision):
            raise ModelMismatch(_precision_mismatch(self.index_dir, params.precision, wanted))
        return wanted


def _precision_mismatch(index_dir: Path, built: str | None, wanted: str) -> str:
    kind = "int8" if family(built) == "int8" else "bf16/fp32"
    return (f"the index {index_dir} was built with {kind} vectors, which precision {wanted} does not make; "
            "leave the precision unset (auto follows the index), or run `bertsearch index PATH --rebuild` "
            f"to re-encode everything with {wanted}")
