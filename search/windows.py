"""Question and passage as model inputs: strided windows with character offsets, and padding.

A *window* is one model input: ``[CLS] question [SEP] part of the context [SEP]``. A long context
is split into several windows that overlap by ``stride`` tokens (the Hugging Face meaning of
``stride``). Every window keeps, for each of its tokens, the character offsets into the context
(``None`` for question and special tokens), so a span of tokens maps back to exact characters.
The reader and QA training both build their inputs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["Windows", "pad_windows", "tokenize_windows"]


@dataclass
class Windows:
    """Tokenised windows of a list of (question, context) pairs, unpadded.

    Attributes:
        input_ids: One int32 array per window.
        token_type_ids: One int8 array per window (0 question side, 1 context side).
        offsets: Per window, per token: ``(start, end)`` characters in the context, or ``None``
            for question and special tokens.
        example_index: Per window, the index of the pair it came from.
    """

    input_ids: list[np.ndarray] = field(default_factory=list)
    token_type_ids: list[np.ndarray] = field(default_factory=list)
    offsets: list[list[tuple[int, int] | None]] = field(default_factory=list)
    example_index: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)


def tokenize_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    max_seq_len: int = 256,
    stride: int = 96,
    max_question_tokens: int = 64,
) -> Windows:
    """Tokenise (question, context) pairs into overlapping windows with character offsets.

    Args:
        tokenizer: A fast Hugging Face tokenizer (for the offsets).
        questions: The questions.
        contexts: The contexts, one per question.
        max_seq_len: Tokens per window, special tokens included.
        stride: Tokens shared by two consecutive windows of one context.
        max_question_tokens: Longer questions are cut to this many tokens (keeps room for context).

    Returns:
        The windows, in the order of the pairs.
    """
    if len(questions) != len(contexts):
        raise ValueError("questions and contexts differ in length")
    windows = Windows()
    if not questions:
        return windows
    q_ids = tokenizer(list(questions), add_special_tokens=False)["input_ids"]
    short_questions = [
        tokenizer.decode(ids[:max_question_tokens]) if len(ids) > max_question_tokens else q
        for q, ids in zip(questions, q_ids)
    ]
    enc = tokenizer(
        short_questions,
        list(contexts),
        truncation="only_second",
        max_length=max_seq_len,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    for w, ids in enumerate(enc["input_ids"]):
        seq_ids = enc.sequence_ids(w)
        windows.input_ids.append(np.asarray(ids, dtype=np.int32))
        windows.token_type_ids.append(np.asarray([1 if s == 1 else 0 for s in seq_ids], dtype=np.int8))
        windows.offsets.append(
            [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][w], seq_ids)]
        )
        windows.example_index.append(int(enc["overflow_to_sample_mapping"][w]))
    return windows


def pad_windows(
    input_ids: Sequence[np.ndarray], token_type_ids: Sequence[np.ndarray], index: Sequence[int], multiple: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack the windows ``index`` into int64 ``(ids, token types, attention mask)`` arrays.

    Padded to the longest of them, rounded up to ``multiple``; shared by training and the reader.
    """
    longest = max(len(input_ids[i]) for i in index)
    width = -(-longest // multiple) * multiple
    ids = np.zeros((len(index), width), dtype=np.int64)
    types = np.zeros((len(index), width), dtype=np.int64)
    mask = np.zeros((len(index), width), dtype=np.int64)
    for row, i in enumerate(index):
        n = len(input_ids[i])
        ids[row, :n] = input_ids[i]
        types[row, :n] = token_type_ids[i]
        mask[row, :n] = 1
    return ids, types, mask
