"""Chunking by tokens of the model's tokenizer, keeping each chunk's character offsets.

A document is tokenised once, without special tokens, by a *fast* tokenizer (which reports the
character span of every token). Windows of ``max_tokens`` tokens, neighbours sharing ``overlap``
tokens, become chunks; a chunk's text is the document from its first token's start to its last
token's end, so ``chunk.text == document[chunk.start:chunk.end]`` always holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bertsearch.indexer.common.errors import ConfigError

__all__ = ["Chunk", "chunk_text"]


@dataclass(frozen=True)
class Chunk:
    """A piece of a document.

    Attributes:
        text: The chunk's text, exactly ``document[start:end]``.
        start: Offset of the chunk's first character in the document.
        end: Offset one past the chunk's last character.
        n_tokens: Number of tokens in the chunk (without special tokens).
    """

    text: str
    start: int
    end: int
    n_tokens: int


def chunk_text(text: str, tokenizer: Any, max_tokens: int, overlap: int) -> list[Chunk]:
    """Split a document into overlapping windows of tokens.

    Args:
        text: The whole document.
        tokenizer: A Hugging Face fast tokenizer (``tokenizer.is_fast``), e.g. ``Encoder.tokenizer``.
        max_tokens: Tokens per chunk, special tokens not counted.
        overlap: Tokens shared by neighbouring chunks; ``0 <= overlap < max_tokens``.

    Returns:
        The chunks in document order; none for an empty or whitespace-only document.

    Raises:
        ConfigError: ``max_tokens``/``overlap`` are out of range or the tokenizer is not fast.
    """
    if max_tokens < 1:
        raise ConfigError(f"chunk size must be at least 1 token, got {max_tokens}")
    if not 0 <= overlap < max_tokens:
        raise ConfigError(
            f"chunk overlap must be at least 0 and less than the chunk size ({max_tokens} tokens), got {overlap}"
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("chunking needs a fast tokenizer (one that reports character offsets)")
    if not text.strip():
        return []
    offsets = _token_offsets(text, tokenizer)
    chunks: list[Chunk] = []
    step = max_tokens - overlap
    for first in range(0, len(offsets), step):
        window = offsets[first : first + max_tokens]
        start, end = window[0][0], window[-1][1]
        chunks.append(Chunk(text=text[start:end], start=start, end=end, n_tokens=len(window)))
        if first + max_tokens >= len(offsets):
            break
    return chunks


def _token_offsets(text: str, tokenizer: Any) -> list[tuple[int, int]]:
    """Character spans of every token of ``text``, in order, empty spans dropped.

    ``truncation=False`` resets any truncation a previous (encoder) call left on the shared
    backend tokenizer; ``verbose=False`` silences the "longer than the maximum length" warning,
    which does not apply: no window is longer than ``max_tokens``.
    """
    encoding = tokenizer(
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        truncation=False,
        padding=False,
        verbose=False,
    )
    return [(int(s), int(e)) for s, e in encoding["offset_mapping"] if e > s]
