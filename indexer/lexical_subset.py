"""BM25 within a few chunks without a term set: their own terms, scored as tantivy scores them.

tantivy searches within a set of chunks through a term set of their ids, which it looks up one
by one (about 1.1 µs an id: 1.9 ms for 1,000 ids against 0.2 ms for the search unfiltered, at
100,000 chunks). Within at most :data:`EXACT_SUBSET_MAX` chunks the reader keeps instead each
chunk's analysed terms (those tantivy indexed: :meth:`SubsetTerms.build` is handed them) and
scores them here with tantivy's BM25 and the index's own statistics (documents, average length,
each term's document frequency), in float32 and tantivy's order of operations, every chunk of the
set that holds a query term scored before the top k is cut: the search tantivy would make.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["EXACT_SUBSET_MAX", "SubsetTerms", "top_within"]

EXACT_SUBSET_MAX = 20_000
"""The most chunks a filter keeps for their terms to be kept (measured: ``benchmarks/filter.py``;
building them costs about 0.35 ms a chunk, once a filter and generation)."""

_K1 = np.float32(1.2)
_B = np.float32(0.75)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)


def _fieldnorm(code: int) -> int:
    """The length a one-byte field norm stands for (Lucene's SmallFloat scheme, which tantivy uses):
    the first 24 codes exact, then 3 bits of mantissa under a growing exponent."""
    if code < 24:
        return code
    mantissa, exponent = (code - 24) & 7, (code - 24) >> 3
    return 24 + (mantissa if exponent == 0 else (mantissa | 8) << (exponent - 1))


_FIELDNORMS = np.array([_fieldnorm(code) for code in range(256)], dtype=np.int64)


@dataclass(frozen=True)
class SubsetTerms:
    """The analysed terms of a set of chunks: their ids, their lengths as tantivy stores them
    (rounded down to a field norm), and per term the rows that hold it with its frequency."""

    ids: np.ndarray
    lengths: np.ndarray
    postings: dict[str, tuple[np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, chunks: Iterable[tuple[int, list[str]]]) -> SubsetTerms:
        """From ``(chunk_id, the tokens tantivy indexed for it)`` pairs."""
        ids: list[int] = []
        lengths: list[int] = []
        rows: dict[str, list[int]] = {}
        freqs: dict[str, list[int]] = {}
        for row, (chunk_id, tokens) in enumerate(chunks):
            ids.append(int(chunk_id))
            lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                rows.setdefault(term, []).append(row)
                freqs.setdefault(term, []).append(tf)
        stored = _FIELDNORMS[np.searchsorted(_FIELDNORMS, np.asarray(lengths, dtype=np.int64), side="right") - 1]
        return cls(np.asarray(ids, dtype=np.int64), stored.astype(np.float32),
                   {term: (np.asarray(r, dtype=np.int32), np.asarray(freqs[term], dtype=np.float32))
                    for term, r in rows.items()})

    @property
    def size(self) -> int:
        """How many chunks."""
        return int(self.ids.size)


def top_within(within: SubsetTerms, terms: list[str], doc_freqs: list[int], total_docs: int,
               average_length: float, k: int) -> list[tuple[int, float]]:
    """The ``k`` best chunks of ``within`` for the analysed query ``terms`` as ``(chunk_id, score)``,
    best first (ties by id), each a sum of one BM25 score per term it holds, as tantivy's.

    Args:
        within: The chunks searched.
        terms: The query's distinct analysed terms.
        doc_freqs: Each term's document frequency in the whole index.
        total_docs: The documents of the whole index (tantivy's ``N``: deleted ones too).
        average_length: The index's average field length (tantivy's ``avgdl``), a float32.
        k: How many chunks at most.
    """
    average = np.float32(average_length)
    norms = _K1 * ((_ONE - _B) + _B * within.lengths / average)  # tantivy's per-length cache
    scores = np.zeros(within.size, dtype=np.float32)
    held = np.zeros(within.size, dtype=bool)
    for term, n in zip(terms, doc_freqs):
        posting = within.postings.get(term)
        if posting is None:
            continue
        rows, tf = posting
        x = (np.float32(total_docs - n) + _HALF) / (np.float32(n) + _HALF)
        weight = np.float32(math.log(float(_ONE + x))) * (_ONE + _K1)  # f32 ln, correctly rounded
        scores[rows] += weight * (tf / (tf + norms[rows]))
        held[rows] = True
    found = np.flatnonzero(held)
    if found.size > k:
        found = found[np.argpartition(-scores[found], k - 1)[:k]]
    best = found[np.lexsort((within.ids[found], -scores[found]))]
    return [(int(within.ids[i]), float(scores[i])) for i in best]
