"""The lexical index: BM25 over the chunk texts (tantivy), derived from SQL like the FAISS file.

The folder ``lexical/`` holds one tantivy index per build, named by the pointer file
``lexical.json`` (replaced atomically, so a reader opens either the old build or the new one).
Each document is one chunk, keyed by its SQL id. One extra document (``chunk_id`` 0, no text)
holds the SQL generation the index reflects; the writer replaces it in the same tantivy commit
as the chunks, so a reader's point-in-time searcher knows exactly which generation it sees.
A missing, corrupt or stale index is never served: it is rebuilt from the SQL chunk texts.

Terms come from :func:`bertsearch.indexer.terms.lexical_terms`, then tantivy lower-cases and
stems them (English), on the indexed text and the query alike; a query leaves out stopwords
(:func:`bertsearch.indexer.terms.query_terms`). How text is cut (the build parameter ``cut``,
``index_state.lexical_cut``) is stamped too: a build cut another way is rebuilt, never served.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bertsearch.indexer.common.errors import StorageError
from bertsearch.indexer.terms import DEFAULT_CUT, LEGACY_CUT, lexical_terms, query_terms
from bertsearch.indexer.files import atomic_write
from bertsearch.indexer.lexical_subset import SubsetTerms, top_within

__all__ = ["LexicalIndex", "LexicalFileError", "LexicalWriter", "POINTER_FILE", "FOLDER"]

POINTER_FILE = "lexical.json"
FOLDER = "lexical"
_ANALYZER = "bertsearch_terms"
_STAMP_ID = 0
_WRITER_HEAP = 50_000_000
_MAX_QUERY_TERMS = 64


class LexicalFileError(Exception):
    """The lexical index is missing or unreadable (internal: repaired by rebuilding)."""


def _tantivy():
    import tantivy

    return tantivy


def _schema():
    t = _tantivy()
    builder = t.SchemaBuilder()
    builder.add_unsigned_field("chunk_id", stored=True, indexed=True, fast=True)
    builder.add_unsigned_field("generation", stored=True)
    builder.add_text_field("index_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("cut", stored=True, tokenizer_name="raw")  # absent from older builds
    builder.add_text_field("text", stored=False, tokenizer_name=_ANALYZER, index_option="freq")
    return builder.build()


def _analyzer():
    t = _tantivy()
    return (t.TextAnalyzerBuilder(t.Tokenizer.whitespace())
            .filter(t.Filter.lowercase()).filter(t.Filter.stemmer("english")).build())


class LexicalIndex:
    """A point-in-time BM25 view of one generation (immutable once opened)."""

    def __init__(self, index, generation: int, path: Path | None, index_id: str = "", cut: str = DEFAULT_CUT) -> None:
        self._index = index
        self.index_id = index_id
        """The identity (``index_state.index_id``) of the database these chunks come from."""
        self.cut = cut
        """How the texts and the queries are cut into terms (:data:`~bertsearch.indexer.terms.CUTS`)."""
        self._schema = index.schema
        self._searcher = index.searcher()
        self._analyzer = _analyzer()
        self.generation = generation
        self.count = int(self._searcher.num_docs) - 1  # the chunks: every document but the stamp
        self.path = path
        self._statistics: tuple[int, float] | None = None  # BM25's N and avgdl, read on first need

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, generation: int, chunks: Iterable[tuple[int, str]], folder: Path | None = None,
              index_id: str = "", cut: str = DEFAULT_CUT) -> LexicalIndex:
        """An index of ``(chunk_id, text)`` pairs cut by ``cut``, stamped ``generation``,
        ``index_id`` and ``cut``; in memory when ``folder`` is None."""
        t = _tantivy()
        index = t.Index(_schema(), path=str(folder)) if folder is not None else t.Index(_schema())
        index.register_tokenizer(_ANALYZER, _analyzer())
        writer = index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        for chunk_id, text in chunks:
            writer.add_document(_doc(chunk_id, text, cut))
        writer.add_document(_stamp(generation, index_id, cut))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return cls(index, generation, folder, index_id, cut)

    @classmethod
    def rebuild_on_disk(cls, index_dir: Path, generation: int, chunks: Iterable[tuple[int, str]],
                        index_id: str = "", cut: str = DEFAULT_CUT) -> LexicalIndex:
        """Build a new folder under ``index_dir/lexical/`` and point ``lexical.json`` at it.

        Raises:
            StorageError: The folder cannot be written (the old index stays in use).
        """
        root = index_dir / FOLDER
        name = f"g{generation}-{uuid.uuid4().hex[:8]}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / name).mkdir()
            built = cls.build(generation, chunks, root / name, index_id, cut)
            _write_pointer(index_dir, name)
        except (OSError, ValueError) as exc:
            shutil.rmtree(root / name, ignore_errors=True)
            raise StorageError(f"cannot write the lexical index in {root}: {exc}") from exc
        _remove_other_builds(root, keep=name)
        return built

    @classmethod
    def load(cls, index_dir: Path) -> LexicalIndex:
        """Open the build ``lexical.json`` names.

        Raises:
            LexicalFileError: No pointer, no such build, or tantivy cannot read it.
        """
        folder = _current_folder(index_dir)
        t = _tantivy()
        try:
            index = t.Index.open(str(folder))
            index.register_tokenizer(_ANALYZER, _analyzer())
            view = cls(index, 0, folder)
        except (ValueError, OSError) as exc:
            raise LexicalFileError(f"unreadable ({exc})") from exc
        view.generation, view.index_id, view.cut = view._read_stamp()
        return view

    def _read_stamp(self) -> tuple[int, str, str]:
        t = _tantivy()
        hits = self._searcher.search(t.Query.term_query(self._schema, "chunk_id", _STAMP_ID), 1).hits
        if not hits:
            raise LexicalFileError("no generation stamp")
        stamp = self._searcher.doc(hits[0][1])
        fields = stamp.to_dict()
        index_id = stamp.get_first("index_id") if "index_id" in fields else None
        cut = stamp.get_first("cut") if "cut" in fields else None
        return int(stamp["generation"][0]), str(index_id or ""), str(cut or LEGACY_CUT)

    # -- reading -------------------------------------------------------------------------------

    def query_terms(self, query: str) -> list[str]:
        """The distinct analysed terms of ``query`` (at most 64), in order, stopwords left out
        (:func:`~bertsearch.indexer.terms.query_terms`)."""
        tokens = self._analyzer.analyze(" ".join(query_terms(query, self.cut)))
        return list(dict.fromkeys(tokens))[:_MAX_QUERY_TERMS]

    def search(self, query: str, k: int, *,
               subset: np.ndarray | SubsetTerms | None = None) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by BM25 as ``(chunk_id, score)``, optionally within
        ``subset``: chunk ids (a term set in tantivy), or their terms (:meth:`subset_terms`: scored
        here, the same scores without looking each id up)."""
        t = _tantivy()
        terms = self.query_terms(query)
        if not terms or k <= 0:
            return []
        if isinstance(subset, SubsetTerms):
            statistics = self._bm25_statistics(terms)
            if statistics is not None:
                doc_freqs = [int(self._searcher.doc_freq("text", term)) for term in terms]
                return top_within(subset, terms, doc_freqs, *statistics, k)
            subset = subset.ids  # no query term in the index, or an explanation not understood
        query_obj = t.Query.boolean_query(self._bm25(terms))
        if subset is not None:
            if subset.size == 0:
                return []
            query_obj = t.Query.boolean_query([
                (t.Occur.Must, query_obj),
                (t.Occur.Must, t.Query.const_score_query(  # a filter: adds nothing to the BM25 score
                    t.Query.term_set_query(self._schema, "chunk_id", [int(i) for i in subset]), 0.0)),
            ])
        return self._top(query_obj, k)

    def subset_terms(self, chunks: Iterable[tuple[int, str]]) -> SubsetTerms:
        """The terms of ``(chunk_id, text)`` pairs as this index holds them, for :meth:`search`
        within them (the chunks' texts as SQL keeps them)."""
        return SubsetTerms.build((chunk_id, self._analyzer.analyze(_indexed_text(text, self.cut)))
                                 for chunk_id, text in chunks)

    def _bm25_statistics(self, terms: list[str]) -> tuple[int, float] | None:
        """tantivy's ``N`` (documents, deleted ones too) and ``avgdl`` (a float32), which only its
        explanation of a score shows; read once per view, from the best hit of a query term."""
        if self._statistics is None:
            t = _tantivy()
            for term in terms:
                term_query = t.Query.term_query(self._schema, "text", term, index_option="freq")
                hits = self._searcher.search(term_query, 1, count=False).hits
                if hits:
                    self._statistics = _statistics(json.loads(term_query.explain(self._searcher, hits[0][1]).to_json()))
                    break
        return self._statistics

    def scores(self, query: str, ids: Iterable[int]) -> dict[int, float]:
        """The BM25 score of ``query`` for each chunk of ``ids``, by id rather than by search: 0.0
        for a chunk that holds none of the query's terms. A hybrid search scores the chunks FAISS
        found and BM25 did not this way.

        The chunks are named by one term query each, not by a term-set query: tantivy turns a term
        set into a bit set of the whole index, 0.74 ms a call at 100,000 chunks against 0.22 ms.
        """
        t = _tantivy()
        wanted = np.unique(np.fromiter(ids, dtype=np.int64)).tolist()
        terms = self.query_terms(query)
        if not wanted or not terms:
            return dict.fromkeys(wanted, 0.0)
        named = t.Query.boolean_query([(t.Occur.Should, t.Query.term_query(self._schema, "chunk_id", i))
                                       for i in wanted])
        # Required: one of the chunks (adds nothing to the score); optional: the query's terms (BM25).
        query_obj = t.Query.boolean_query([(t.Occur.Must, t.Query.const_score_query(named, 0.0)), *self._bm25(terms)])
        scores = dict.fromkeys(wanted, 0.0)
        scores.update(self._top(query_obj, len(wanted)))
        return scores

    def _bm25(self, terms: list[str]) -> list:
        """One optional clause per analysed term: the query's BM25 score, the same in every search."""
        t = _tantivy()
        return [(t.Occur.Should, t.Query.term_query(self._schema, "text", term, index_option="freq")) for term in terms]

    def _top(self, query_obj, k: int) -> list[tuple[int, float]]:
        """The ``k`` best ``(chunk_id, score)`` of ``query_obj``."""
        hits = self._searcher.search(query_obj, k, count=False).hits
        # The ids from the fast-field column: no stored document is read.
        ids = self._searcher.fast_field_values("chunk_id", [address for _, address in hits])
        return [(int(i), float(score)) for (score, _), i in zip(hits, ids)]


class LexicalWriter:
    """Applies one writer's commits to the on-disk lexical index, incrementally."""

    def __init__(self, view: LexicalIndex) -> None:
        if view.path is None:
            raise ValueError("an in-memory lexical index has no writer")
        self._index = view._index
        self._writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        self.path = view.path
        self.index_id = view.index_id
        self.cut = view.cut

    def apply(self, generation: int, removed: Iterable[int], added: Iterable[tuple[int, str]]) -> LexicalIndex:
        """Remove and add chunks, restamp with ``generation``, commit; returns the view of the result.

        Raises:
            StorageError: tantivy cannot write (disk full): the previous commit stays.
        """
        t = _tantivy()
        try:
            gone = [_STAMP_ID, *(int(i) for i in removed)]
            for lo in range(0, len(gone), 1024):
                self._writer.delete_documents_by_query(
                    t.Query.term_set_query(self._index.schema, "chunk_id", gone[lo:lo + 1024]))
            for chunk_id, text in added:
                self._writer.add_document(_doc(chunk_id, text, self.cut))
            self._writer.add_document(_stamp(generation, self.index_id, self.cut))
            self._writer.commit()
        except (OSError, ValueError) as exc:
            self._writer.rollback()
            raise StorageError(f"cannot write the lexical index in {self.path}: {exc}") from exc
        self._index.reload()
        return LexicalIndex(self._index, generation, self.path, self.index_id, self.cut)

    def close(self) -> None:
        """Let merges finish and release tantivy's writer lock."""
        try:
            self._writer.wait_merging_threads()
        except (OSError, ValueError):
            pass


def _doc(chunk_id: int, text: str, cut: str):
    doc = _tantivy().Document()
    doc.add_unsigned("chunk_id", int(chunk_id))
    doc.add_text("text", _indexed_text(text, cut))
    return doc


def _indexed_text(text: str, cut: str) -> str:
    """What the field ``text`` is given for a chunk (tantivy's analyzer then cuts it at spaces)."""
    return " ".join(lexical_terms(text, cut))


def _statistics(explanation: dict) -> tuple[int, float] | None:
    """``N`` and ``avgdl`` from a term's BM25 explanation (``None``: not found in it)."""
    found: dict[str, float] = {}
    pending = [explanation]
    while pending:
        part = pending.pop()
        found[str(part.get("description", "")).split(",")[0]] = part.get("value")
        pending.extend(part.get("details", []))
    if not isinstance(found.get("N"), (int, float)) or not isinstance(found.get("avgdl"), (int, float)):
        return None
    return int(found["N"]), float(found["avgdl"])


def _stamp(generation: int, index_id: str, cut: str):
    doc = _tantivy().Document()
    doc.add_unsigned("chunk_id", _STAMP_ID)
    doc.add_unsigned("generation", int(generation))
    doc.add_text("index_id", index_id)
    if cut != LEGACY_CUT:  # a build from before the cut was stamped has no field for it
        doc.add_text("cut", cut)
    return doc


def _current_folder(index_dir: Path) -> Path:
    try:
        pointer = json.loads((index_dir / POINTER_FILE).read_text(encoding="utf-8"))
        name = str(pointer["build"])
    except FileNotFoundError as exc:
        raise LexicalFileError("missing") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LexicalFileError(f"unreadable pointer ({exc})") from exc
    folder = index_dir / FOLDER / name
    if "/" in name or not (folder / "meta.json").is_file():
        raise LexicalFileError(f"build {name!r} missing")
    return folder


def _write_pointer(index_dir: Path, name: str) -> None:
    with atomic_write(index_dir / POINTER_FILE, "w", encoding="utf-8") as fh:
        json.dump({"build": name}, fh)


def _remove_other_builds(root: Path, keep: str) -> None:
    # A reader that opened an older build keeps its files open (memory-mapped) after they go.
    for child in root.iterdir():
        if child.name != keep:
            shutil.rmtree(child, ignore_errors=True)
