"""Request and response schemas of the HTTP API (they become the OpenAPI documentation)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bertsearch.search.retrieval import DEFAULT_MODE

from bertsearch.indexer.ingest import IngestResult
from bertsearch.indexer.records import DocumentRecord
from bertsearch.search.limits import (
    MAX_EF_SEARCH, MAX_EMBED_CHARS, MAX_EMBED_TEXTS, MAX_QUERY_CHARS, MAX_TOP_K, InputType,
)
from bertsearch.search.searcher import DEFAULT_PASSAGES
from bertsearch.search.types import AskResult, SearchResult


Mode = Literal["hybrid", "dense", "lexical"]


def _integral(value: Any) -> Any:
    # JSON has one number type: 5.0 is the integer 5 to JSON Schema (and to schemathesis); strict
    # mode would refuse it. 5.5 and "5" still get 422.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Count = Annotated[int, BeforeValidator(_integral)]


# A metadata filter: checked by the core (bertsearch.indexer.filters), whose 422 names the bad part.
Where = Annotated[dict[str, Any] | None, Field(
    description='Only documents whose metadata this filter lets through, with Chroma\'s operators: '
                '`{"language": "zh"}` (a bare value is `$eq`), `$eq $ne $gt $gte $lt $lte $in $nin`, `$contains` '
                '(an item of a list field), `$glob` (a path glob), `$and`/`$or` (lists of filters), e.g. '
                '`{"$and": [{"type": "markdown"}, {"path": {"$glob": "docs/**"}}]}`. Fields: the metadata put '
                'with a document, what its reader found (`title`, `author`, `type`, `size`, `mtime`, '
                '`language`, front matter, HTML meta), and `path` and `source`.',
    examples=[{"language": "zh"}, {"tags": {"$contains": "ops"}, "year": {"$gte": 2020}}],
)]


# Blank text (white space only) is refused by the core with 422; the schema says so.
_NOT_BLANK: dict[str, Any] = {"not": {"pattern": "^\\s*$"}}


class _Request(BaseModel):
    # Strict: a number sent as a string, or a misspelt field, is a client bug worth a 422.
    model_config = ConfigDict(extra="forbid", strict=True)


class SearchRequest(_Request):
    """A semantic search."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="What to look for.",
                       json_schema_extra=_NOT_BLANK)
    top_k: Count = Field(default=5, ge=1, le=MAX_TOP_K, description="How many passages to return.")
    path_glob: str | None = Field(
        default=None, max_length=1000, description="Only documents whose path matches this glob, e.g. `docs/*.md`.",
    )
    mode: Mode = Field(default=DEFAULT_MODE, description="hybrid (meaning and words fused), dense or lexical (BM25).")
    # The bounds before the validator: so the OpenAPI says minimum/maximum (pydantic writes ge/le otherwise).
    ef_search: Annotated[int, Field(ge=1, le=MAX_EF_SEARCH), BeforeValidator(_integral)] | None = Field(
        default=None,
        description="On an approximate (HNSW) index: candidates explored per query; more is slower and closer "
                    "to exact. Default: the server's setting.",
    )
    where: Where = None


class AskRequest(_Request):
    """A question to answer from the indexed documents."""

    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The question.",
                          json_schema_extra=_NOT_BLANK)
    top_k: Count = Field(default=5, ge=1, le=MAX_TOP_K, description="How many answers to return at most.")
    passages: Count = Field(default=DEFAULT_PASSAGES, ge=1, le=MAX_TOP_K, description="How many passages to read.")
    path_glob: str | None = Field(default=None, max_length=1000, description="Only read documents matching this glob.")
    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="Minimum confidence of an answer, the estimated probability it is right (default: the answer "
                    "model's threshold, fitted on train data).",
    )
    mode: Mode = Field(default=DEFAULT_MODE, description="How passages are retrieved: hybrid, dense or lexical.")
    where: Where = None


EmbedText = Annotated[str, Field(min_length=1, max_length=MAX_EMBED_CHARS)]


_INPUT_TYPE = ("passage: as the index's chunks are encoded; query: as searches encode queries, with the "
               "model's query prefix (E5's `query: `). A model without prefixes (the MiniLM) gives both "
               "the same vectors.")


class EmbedRequest(_Request):
    """Texts to turn into vectors with the index's encoder."""

    texts: list[EmbedText] = Field(min_length=1, max_length=MAX_EMBED_TEXTS, description="The texts.")
    normalize: bool = Field(default=True, description="L2-normalise each vector (a dot product is then the cosine).")
    input_type: InputType = Field(default="passage", description=_INPUT_TYPE)


class EmbedResponse(BaseModel):
    """One vector per text, in the order of the texts."""

    model_config = ConfigDict(protected_namespaces=())

    model: str = Field(description="The encoder's fingerprint, as the index records it.")
    dimension: int
    precision: str = Field(description="bf16, fp32 or int8: how the encoder ran on this CPU.")
    embeddings: list[list[float]]
    tokens: int = Field(description="Tokens read, special tokens included.")
    took_ms: float


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request. Any `model` name is accepted (clients send their own default);
    the answer names the encoder that made the vectors. Fields OpenAI may add are ignored."""

    model_config = ConfigDict(extra="ignore")

    input: EmbedText | Annotated[list[EmbedText], Field(min_length=1, max_length=MAX_EMBED_TEXTS)] = Field(
        description=f"A text or a list of 1 to {MAX_EMBED_TEXTS} texts (token arrays are not accepted).")
    model: str = Field(max_length=256, description="Ignored: the index's encoder makes every vector.")
    encoding_format: Literal["float", "base64"] = Field(default="float", description="base64: little-endian float32.")
    dimensions: int | None = Field(default=None, ge=1, description="Must be the encoder's dimension when given.")
    input_type: InputType = Field(default="passage", description=f"Not in OpenAI's API: {_INPUT_TYPE}")
    user: str | None = Field(default=None, max_length=256)


class EmbeddingItem(BaseModel):
    """One vector."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(BaseModel):
    """Tokens read."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    """OpenAI's embeddings response."""

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingsUsage


# The responses are the core's own result types (one definition: the embedded Searcher, the
# Client and the OpenAPI schema all use them).
SearchResponse = SearchResult
AskResponse = AskResult
DocumentResponse = DocumentRecord


class HealthResponse(BaseModel):
    """The server can answer."""

    status: str = "ok"
    generation: int = Field(description="Generation of the index being served.")
    qa_model_loaded: bool


class LiveResponse(BaseModel):
    """The process answers."""

    status: str = "ok"


class StatsResponse(BaseModel):
    """What the served index holds and how it was built."""

    # Open to the keys a later index version adds to its info.
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    documents: int
    chunks: int
    generation: int
    model_id: str
    dimension: int
    pooling: str
    chunk_tokens: int
    chunk_overlap: int
    index_type: str
    size_bytes: int
    reader_precision: str = Field(description="What the QA reader reads in (bf16, fp32 or int8); before it is "
                                              "loaded, what it will try")
    took_ms: float


class ErrorResponse(BaseModel):
    """Every error the API reports (FastAPI's request validation errors keep their list `detail`)."""

    detail: Any


# -- documents put by key (`PUT /documents/by-key/{key}`, `POST /documents:batch`) --

MetadataValue = str | int | float | bool | list[str]
KEY_PATTERN = "^[^\\x00-\\x1f\\x7f]+$"  # what indexer.ingest.check_key accepts, less the length


class DocumentBody(_Request):
    """A document's text to put under a key (a file goes as multipart instead: see the route)."""

    text: str = Field(description="The document's text.")
    title: str | None = Field(default=None, max_length=1000, description="Default: the key.")
    metadata: dict[Annotated[str, Field(min_length=1)], MetadataValue] | None = Field(
        default=None, description="A flat JSON object stored with the document: strings, numbers, booleans, lists of "
                                  "strings; at most 64 fields and the server's BERTSEARCH_MAX_METADATA_BYTES.")


class BatchPut(DocumentBody):
    """One document of a batch."""

    key: str = Field(min_length=1, max_length=1024, pattern=KEY_PATTERN,
                     description="The caller's key: an id, a URL, a path.")


class BatchRequest(_Request):
    """Documents to put and keys to delete in one commit (one generation). A key appears once."""

    put: list[BatchPut] = Field(default_factory=list, description="Documents to put (text only).")
    delete: list[Annotated[str, Field(min_length=1, max_length=1024, pattern=KEY_PATTERN)]] = Field(
        default_factory=list, description="Keys to delete; an absent one is reported as `absent`.")


# What a write did: the core's own result (`bertsearch put` prints the same).
WriteResponse = IngestResult
