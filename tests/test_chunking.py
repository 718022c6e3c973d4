"""Chunking by tokens: offsets reproduce the text, overlap, long documents, arguments."""

from __future__ import annotations

import warnings

import pytest
from transformers import AutoTokenizer

from bertsearch.indexer.chunking import Chunk, chunk_text
from bertsearch.indexer.common.errors import ConfigError

TEXT = (
    "Backups run every night at 02:00 UTC. They are kept for 30 days,\n"
    "then deleted. Café owners — and everyone else — can restore a file\r\n"
    "from the web interface in three clicks.   Logs rotate weekly; "
    "naïve résumé façade coöperate. 日本語のテキストも扱えます。 Emoji 🙂 too."
)


@pytest.fixture(scope="module")
def tokenizer(minilm_path: str):
    return AutoTokenizer.from_pretrained(minilm_path, local_files_only=True)


def _token_count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def test_offsets_reproduce_the_text(tokenizer) -> None:
    chunks = chunk_text(TEXT, tokenizer, max_tokens=12, overlap=3)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text == TEXT[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip()
        assert 0 < chunk.n_tokens <= 12
    assert chunks[0].start == 0
    assert chunks[-1].end == len(TEXT.rstrip())
    # Starts and ends move forward, and neighbours overlap.
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start < a.end <= b.end


def test_windows_share_exactly_overlap_tokens(tokenizer) -> None:
    enc = tokenizer(TEXT, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = enc["offset_mapping"]
    max_tokens, overlap = 10, 4
    chunks = chunk_text(TEXT, tokenizer, max_tokens, overlap)
    step = max_tokens - overlap
    for i, chunk in enumerate(chunks):
        first = i * step
        window = offsets[first : first + max_tokens]
        assert (chunk.start, chunk.end, chunk.n_tokens) == (window[0][0], window[-1][1], len(window))
    # Every token is in some chunk, and the last window ends at the last token.
    assert chunks[-1].end == offsets[-1][1]
    assert sum(c.n_tokens for c in chunks) - overlap * (len(chunks) - 1) == len(offsets)


def test_no_overlap_partitions_the_tokens(tokenizer) -> None:
    chunks = chunk_text(TEXT, tokenizer, max_tokens=8, overlap=0)
    assert sum(c.n_tokens for c in chunks) == _token_count(tokenizer, TEXT)
    for a, b in zip(chunks, chunks[1:]):
        assert a.end <= b.start


def test_short_document_is_one_chunk(tokenizer) -> None:
    text = "  \n Just a few words.\n\n"
    assert chunk_text(text, tokenizer, max_tokens=200, overlap=40) == [
        Chunk(text="Just a few words.", start=4, end=21, n_tokens=5)
    ]


def test_document_of_exactly_max_tokens_is_one_chunk(tokenizer) -> None:
    text = " ".join(["word"] * 20)
    assert [c.n_tokens for c in chunk_text(text, tokenizer, max_tokens=20, overlap=5)] == [20]
    assert [c.n_tokens for c in chunk_text(text + " word", tokenizer, max_tokens=20, overlap=5)] == [20, 6]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \r\n"])
def test_empty_documents_give_no_chunks(tokenizer, text: str) -> None:
    assert chunk_text(text, tokenizer, max_tokens=16, overlap=4) == []


def test_long_document_without_warnings(tokenizer) -> None:
    paragraph = "The quick brown fox jumps over the lazy dog near the riverbank at dawn. "
    text = "\n\n".join(f"Section {i}. {paragraph * 5}" for i in range(400))  # ~30,000 tokens
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chunks = chunk_text(text, tokenizer, max_tokens=200, overlap=40)
    assert len(chunks) > 100
    assert all(c.n_tokens == 200 for c in chunks[:-1])
    assert all(c.text == text[c.start : c.end] for c in chunks)
    # Re-tokenised, each chunk fits the model with its two special tokens.
    assert max(_token_count(tokenizer, c.text) for c in chunks) <= 202


def test_long_document_logs_no_length_warning(tokenizer, caplog: pytest.LogCaptureFixture) -> None:
    text = "word " * 2000
    with caplog.at_level("WARNING"):
        chunk_text(text, tokenizer, max_tokens=100, overlap=0)
    assert "sequence length" not in caplog.text


def test_not_cut_short_by_an_earlier_truncating_call(tokenizer) -> None:
    """The encoder's truncating calls leave state on the shared backend tokenizer."""
    text = "word " * 1000
    tokenizer(["a text"], truncation=True, max_length=16)
    chunks = chunk_text(text, tokenizer, max_tokens=100, overlap=0)
    assert sum(c.n_tokens for c in chunks) == 1000


@pytest.mark.parametrize(("max_tokens", "overlap"), [(10, 10), (10, 11), (10, -1), (0, 0)])
def test_invalid_sizes_are_config_errors(tokenizer, max_tokens: int, overlap: int) -> None:
    with pytest.raises(ConfigError):
        chunk_text(TEXT, tokenizer, max_tokens=max_tokens, overlap=overlap)


def test_slow_tokenizer_is_refused(minilm_path: str) -> None:
    slow = AutoTokenizer.from_pretrained(minilm_path, local_files_only=True, use_fast=False)
    with pytest.raises(ConfigError, match="fast tokenizer"):
        chunk_text(TEXT, slow, max_tokens=10, overlap=2)
