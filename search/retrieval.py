"""Retrieval modes and their fusion: dense (FAISS), lexical (BM25) and hybrid.

Hybrid takes the ``depth`` best chunks of each retriever, and looks up each retriever's own
score of the chunks only the other one found (a BM25-only chunk's cosine from its vector, a
dense-only chunk's BM25 from the lexical index, 0 when it holds none of the query's words), so
that every candidate has both scores. It standardises each retriever's scores over the
candidates (standard deviations above their mean) and ranks by the convex combination
``w * dense + (1 - w) * lexical`` (Bruch et al. 2023: a convex combination of normalised scores
beats reciprocal rank fusion and needs few labels to fit). The fused scores are then rescaled to
[0, 1] over the candidates (the best is 1), which changes no rank.

Chosen on 1,500 SQuAD *train* questions over 40 articles (each at its best ``w``): looking the
missing scores up, where a chunk missing from a list used to get that list's lowest score, took
paragraph MRR@10 from 0.8795 to 0.8845 and recall@5 from 0.9627 to 0.9653; standardising ranked
better than min-max normalisation (0.8845 / 0.9653 against 0.8802 / 0.9633). ``w`` is fitted on
SQuAD *train* questions (``bertsearch.search.training.calibrate``) and shipped in
``answer_model.json``; the caller passes it in (:class:`~bertsearch.search.confidence.AnswerModel`).

A question that names a document ("How do I list all group IDs of a user with id?" names
``id.1``; :mod:`~bertsearch.search.naming`) lifts that document's candidates: the fit's
``name_weight`` is added to their combined score (``bertsearch.search.training.fit_names`` fits
it on written questions of held-out training documents). An English question over Chinese pages
is where it matters: both retrievers lean to the pages with English text in them.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertsearch.indexer.common.errors import InvalidQuery
from bertsearch.search.naming import named_documents
from bertsearch.search.types import Hit

if TYPE_CHECKING:
    from bertsearch.search.confidence import AnswerModel

__all__ = ["DEFAULT_MODE", "MODES", "Hybrid", "Ranked", "check_mode", "fuse", "named_chunks", "retrieve_hits"]

MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"


@dataclass(frozen=True)
class Ranked:
    """A chunk as one mode ranks it: its score in that mode, its rank in each retriever that found
    it (1 = best), and its score in each retriever (in hybrid mode, looked up when that one did
    not find it)."""

    chunk_id: int
    score: float
    ranks: dict[str, int]
    dense_score: float | None
    lexical_score: float | None


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`.

    Raises:
        InvalidQuery: Another value.
    """
    if mode not in MODES:
        raise InvalidQuery(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _standardised(scores: dict[int, float]) -> dict[int, float]:
    """Each score as standard deviations above the mean of them all (0 when they are all equal)."""
    if not scores:
        return {}
    mean = sum(scores.values()) / len(scores)
    spread = math.sqrt(sum((v - mean) ** 2 for v in scores.values()) / len(scores))
    if spread < 1e-9:
        return dict.fromkeys(scores, 0.0)
    return {i: (s - mean) / spread for i, s in scores.items()}


def _completed(scored: list[tuple[int, float]], more: dict[int, float] | None,
               candidates: list[int]) -> dict[int, float]:
    """One retriever's score of every candidate: from its list, else from ``more``, else the
    list's lowest."""
    known = dict(more or {}) | dict(scored)
    floor = min((s for _, s in scored), default=0.0)
    return {cid: known.get(cid, floor) for cid in candidates}


def _candidates(dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> list[int]:
    return list(dict.fromkeys([c for c, _ in dense] + [c for c, _ in lexical]))


def fuse(dense: list[tuple[int, float]], lexical: list[tuple[int, float]], dense_weight: float, k: int,
         dense_more: dict[int, float] | None = None, lexical_more: dict[int, float] | None = None,
         named: frozenset[int] = frozenset(), name_weight: float = 0.0) -> list[Ranked]:
    """The ``k`` best chunks of the convex combination of standardised dense and lexical scores,
    plus ``name_weight`` for the chunks in ``named`` (those of a document the question names), the
    fused scores rescaled to [0, 1] over all the candidates.

    The candidates are the chunks of both lists. ``dense_more`` and ``lexical_more`` give each
    retriever's own score of the candidates only the other list holds (a BM25-only chunk's cosine,
    a dense-only chunk's BM25: :class:`Hybrid` looks them up by id), so that every candidate is
    ranked on both of its scores; a candidate without one gets that list's lowest. Each
    retriever's scores are standardised over all the candidates.
    """
    candidates = _candidates(dense, lexical)
    raw_dense = _completed(dense, dense_more, candidates)
    raw_lexical = _completed(lexical, lexical_more, candidates)
    zd, zl = _standardised(raw_dense), _standardised(raw_lexical)
    dense_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
    lexical_rank = {cid: r for r, (cid, _) in enumerate(lexical, 1)}
    combined = {cid: dense_weight * zd[cid] + (1.0 - dense_weight) * zl[cid] + (name_weight if cid in named else 0.0)
                for cid in candidates}
    lo, hi = (min(combined.values()), max(combined.values())) if combined else (0.0, 0.0)
    fused = []
    for cid in candidates:
        score = (combined[cid] - lo) / (hi - lo) if hi - lo > 1e-9 else 1.0
        ranks = {name: r[cid] for name, r in (("dense", dense_rank), ("lexical", lexical_rank)) if cid in r}
        fused.append(Ranked(cid, score, ranks, raw_dense[cid], raw_lexical[cid]))
    fused.sort(key=lambda r: (-r.score, min(r.ranks.values())))
    return fused[:k]


@dataclass(frozen=True)
class Hybrid:
    """Both retrievers' ``depth`` best chunks for one query, and each one's score of the chunks
    only the other found (what :func:`fuse` ranks at any weight)."""

    dense: list[tuple[int, float]]
    lexical: list[tuple[int, float]]
    dense_more: dict[int, float]
    lexical_more: dict[int, float]

    @classmethod
    def search(cls, index: Any, vector: Any, query: str, depth: int, *, path_glob: str | None = None,
               where: Any = None, snapshot: Any = None, ef_search: int | None = None) -> Hybrid:
        """Search ``index`` (one ``snapshot``, the current one when ``None``) both ways, each
        within the filters (``path_glob``, ``where``)."""
        snapshot = snapshot or index.snapshot
        # FAISS lets go of the GIL while it searches and tantivy does not: the graph search runs
        # beside BM25 instead of after it (2 ms less at 1M chunks, benchmarks/search.py).
        pending = _side_pool().submit(index.search, vector, depth, path_glob=path_glob, where=where,
                                      snapshot=snapshot, ef_search=ef_search)
        lexical = index.search_lexical(query, depth, path_glob=path_glob, where=where, snapshot=snapshot)
        dense = pending.result()
        in_dense, in_lexical = {c for c, _ in dense}, {c for c, _ in lexical}
        return cls(dense, lexical,
                   index.dense_scores(vector, [c for c, _ in lexical if c not in in_dense], snapshot=snapshot),
                   index.lexical_scores(query, [c for c, _ in dense if c not in in_lexical], snapshot=snapshot))

    @property
    def candidates(self) -> list[int]:
        """The chunk ids of both lists, each once."""
        return _candidates(self.dense, self.lexical)

    def fuse(self, dense_weight: float, k: int, named: frozenset[int] = frozenset(),
             name_weight: float = 0.0) -> list[Ranked]:
        """The ``k`` best chunks at this dense weight (see :func:`fuse`)."""
        return fuse(self.dense, self.lexical, dense_weight, k, self.dense_more, self.lexical_more,
                    named, name_weight)


def named_chunks(question: str, records: list[Any]) -> frozenset[int]:
    """The chunk ids of ``records`` (chunk records: ``chunk_id``, ``path``, ``document_id``) whose
    document ``question`` names (:func:`bertsearch.search.naming.named_documents`)."""
    return frozenset(r.chunk_id for r, (names, _) in zip(records, named_documents(question, records)) if names)


def single(scored: list[tuple[int, float]], mode: str) -> list[Ranked]:
    """One retriever's list as :class:`Ranked` chunks."""
    return [
        Ranked(cid, score, {mode: r}, score if mode == "dense" else None, score if mode == "lexical" else None)
        for r, (cid, score) in enumerate(scored, 1)
    ]


def retrieve_hits(index: Any, encode: Any, query: str, k: int, path_glob: str | None, mode: str,
                  catch_up: Any = None, ef_search: int | None = None, *, fit: AnswerModel,
                  where: Any = None) -> list[Hit]:
    """The ``k`` best passages of ``index`` for ``query`` in ``mode``, read from one snapshot.

    ``encode(text)`` gives the query vector (not called in the lexical mode). When a chunk found
    was deleted by a generation committed after the snapshot (a writer is ahead of this reader),
    ``catch_up()``, if given, brings the index to the newest generation and the search runs once
    more on it, so the answer is whole rather than short of the chunks that changed.
    ``ef_search``: HNSW candidates per query (an approximate index; the setting when ``None``).
    ``fit``: the answer model, whose ``dense_weight`` and ``depth`` the hybrid mode fuses with.
    ``where``: a parsed filter (:class:`~bertsearch.indexer.filters.Where`), applied inside both
    retrievers as ``path_glob`` is, before their top k is cut.
    """
    hits, vanished = _retrieve_once(index, encode, query, k, path_glob, where, mode, ef_search, fit)
    if vanished and catch_up is not None:
        catch_up()
        hits, _ = _retrieve_once(index, encode, query, k, path_glob, where, mode, ef_search, fit)
    return hits


def _retrieve_once(index: Any, encode: Any, query: str, k: int, path_glob: str | None, where: Any,
                   mode: str, ef_search: int | None, fit: AnswerModel) -> tuple[list[Hit], int]:
    snapshot = index.snapshot  # one generation for the whole request
    fetched: dict[int, Any] = {}
    if mode == "lexical":
        ranked = single(index.search_lexical(query, k, path_glob=path_glob, where=where, snapshot=snapshot),
                        "lexical")
    elif mode == "dense":
        ranked = single(index.search(encode(query), k, path_glob=path_glob, where=where, snapshot=snapshot,
                                     ef_search=ef_search), "dense")
    else:
        found = Hybrid.search(index, encode(query), query, max(k, fit.depth), path_glob=path_glob, where=where,
                              snapshot=snapshot, ef_search=ef_search)
        named: frozenset[int] = frozenset()
        if fit.name_weight:  # the candidates' documents, read once: the hits come from them
            fetched = {r.chunk_id: r for r in index.fetch_chunks(found.candidates)}
            named = named_chunks(query, list(fetched.values()))
        ranked = found.fuse(fit.dense_weight, k, named, fit.name_weight)
    if not ranked:
        return [], 0
    records = fetched or {r.chunk_id: r for r in index.fetch_chunks([r.chunk_id for r in ranked])}
    # A chunk missing from SQL was deleted by a generation committed after the search.
    hits = [
        Hit(score=float(item.score), chunk_id=r.chunk_id, document_id=r.document_id, path=r.path, title=r.title,
            text=r.text, start=r.start, end=r.end, ranks=item.ranks)
        for item in ranked
        if (r := records.get(item.chunk_id)) is not None
    ]
    return hits, len(ranked) - len(hits)


_side: ThreadPoolExecutor | None = None
_side_lock = threading.Lock()


def _side_pool() -> ThreadPoolExecutor:
    """Threads for the dense half of a hybrid search (one pool a process)."""
    global _side
    with _side_lock:
        if _side is None:
            _side = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bertsearch-dense")
        return _side


def _forget_side_pool() -> None:
    """In a forked child: the parent's pool threads are not there; the first search starts the child's own."""
    global _side, _side_lock
    _side, _side_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_side_pool)
