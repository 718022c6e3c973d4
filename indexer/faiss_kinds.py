"""The FAISS index kinds: which one an index gets, how each is built, and their measured settings.

Every kind is an ``IndexIDMap2`` whose ids are the chunks' SQL primary keys, around an exact
``IndexFlatIP`` (``flat``) or an approximate HNSW graph: ``IndexHNSWFlat`` (``hnsw``) or
``IndexHNSWSQ`` with 8-bit scalar-quantized vectors (``hnsw-sq8``).
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "hnsw-sq8")
"""The FAISS index kinds: exact, HNSW over float32 vectors, HNSW over 8-bit quantized vectors."""
# Graph neighbours per vector. At 1M vectors with the structure of real ones (benchmarks/ann.py,
# one thread): M=32 reached recall@10 0.905 at ef_search 256 (1.14 ms) and 0.947 at 512 (2.12 ms);
# M=48 reaches 0.938 at 256 (1.28 ms) and 0.957 at 384 (1.81 ms), for 7% more memory and the same
# build time (370 s against 382 s).
HNSW_M = 48
# Graph quality against build time, measured at 1M (benchmarks/ann.py, M=32): efConstruction 160
# builds in 4x the time of FAISS's default 40 and finds at ef_search 256 what 40 finds at 512.
HNSW_EF_CONSTRUCTION = 160
DEFAULT_EF_SEARCH = 384
AUTO_HNSW_FROM = 200_000
"""``auto`` builds an exact index below this many vectors and an HNSW graph from it on: exact
search costs about 6 ms at 100,000 vectors and 55 ms at 1M on one core (``benchmarks/search.py``),
so below this it costs no more than the rest of a search, and the answer is exact."""


def choose_kind(index_type: str | None, count: int) -> str:
    """The kind an index of ``count`` vectors gets for the setting ``index_type`` (``auto`` or a kind)."""
    if index_type in KINDS:
        return index_type
    return "hnsw" if count >= AUTO_HNSW_FROM else "flat"


def new_base(kind: str, dimension: int) -> faiss.Index:
    """An empty index of ``kind`` (see :data:`KINDS`), keyed by chunk id."""
    if kind == "flat":
        inner = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    elif kind == "hnsw-sq8":
        inner = faiss.IndexHNSWSQ(dimension, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    if kind != "flat":
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return faiss.IndexIDMap2(inner)  # FAISS's Python wrapper keeps `inner` alive with it


def kind_of(index: faiss.Index) -> str:
    """The kind of an index :func:`new_base` made, or the class name of what else it wraps."""
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSWSQ):
        return "hnsw-sq8"
    if isinstance(inner, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(inner, faiss.IndexFlat):
        return "flat"
    return type(inner).__name__


def search_index(index: faiss.Index, query: np.ndarray, k: int, selector: Any,
                 ef_search: int | None = None) -> list[tuple[int, float]]:
    """The ``k`` nearest ids of one index with their scores, within ``selector`` (``None``: all).

    ``ef_search`` (HNSW kinds only) sets how many candidates the query explores.
    """
    k = min(k, int(index.ntotal))
    if k <= 0:
        return []
    if ef_search is not None:
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef_search
        if selector is not None:
            params.sel = selector
    else:
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
    scores, ids = index.search(query, k, params=params)
    return [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i != -1]


def flat_vectors(index: faiss.Index) -> np.ndarray:
    """The vectors of an ``IndexIDMap2(IndexFlatIP)``, in the order of its id map (a copy)."""
    inner = faiss.downcast_index(index.index)
    return faiss.vector_to_array(inner.codes).view(np.float32).reshape(-1, inner.d)
