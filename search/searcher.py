"""The embedded mode: search and ask an index from Python, without a server.

>>> with Searcher.open("./idx") as searcher:
...     result = searcher.ask("How long are rotated logs kept?")
...     print(result.answers[0].text)

The HTTP API wraps one :class:`Searcher`; the client returns the same result types.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertsearch.indexer.common.errors import ConfigError, StorageError
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.filters import Where, parse_where
from bertsearch.indexer.records import DocumentRecord
from bertsearch.search.answers import assemble, why_none
from bertsearch.search.confidence import PAIR_MODEL_FILE, AnswerModel, answer_model_of, pair_answer_model_of
from bertsearch.search.qa_head import default_qa_model_path, qa_model_for
from bertsearch.search.limits import (
    InputType,
    check_count,
    check_ef_search,
    check_input_type,
    check_query,
    check_texts,
    check_threshold,
)
from bertsearch.search.retrieval import DEFAULT_MODE, check_mode, retrieve_hits
from bertsearch.search.types import Answer, AskResult, Embeddings, Hit, SearchResult

if TYPE_CHECKING:
    from bertsearch.indexer.index import Index
    from bertsearch.search.reader import Reader
    from bertsearch.search.reader_pair import ReaderPair

log = logging.getLogger(__name__)

# Passages read per question: on 400 SQuAD *train* questions held out of the confidence fit (hybrid,
# top answer, no threshold) F1 was 79.9 / 80.8 / 81.9 / 82.8 reading 3 / 5 / 8 / 10 passages, at
# 0.08 / 0.13 / 0.22 / 0.27 s a question on 2 cores; 10 it is (it was 5).
DEFAULT_PASSAGES = 10
# Vectors of definition-list entries kept between questions (384 floats each: 6 MB).
ENTRY_VECTORS_KEPT = 4096


class Searcher:
    """Search passages and extract answers from one index.

    Thread-safe for concurrent readers: the HTTP API shares one instance between requests.

    Args:
        index: An open index.
        reader: The QA reader; by default one is loaded from ``qa_model_path`` on the first
            :meth:`ask` (never before, so :meth:`search` needs no QA model). A reader given
            brings its own folder's answer model (see ``answer_model``).
        qa_model_path: Folder of the QA model; ``None`` means the shipped head for the index's
            encoder (:func:`bertsearch.search.qa_head.qa_model_for`: the multilingual head for an
            index of multilingual-e5-small).
        precision: Precision of the QA model (``auto``, ``bf16``, ``fp32`` or ``int8``).
        cache_dir: Where an int8 QA model is cached (default: the index's settings, ``Settings.cache_dir``).
        threshold: Default minimum confidence of an answer (see :meth:`ask`); ``None`` means the
            answer model's.
        answer_model: The fitted answer model: the hybrid fusion weight, the answers' confidence
            and the default threshold (:mod:`bertsearch.search.confidence`); ``None`` means the
            fit shipped for the QA head that reads (:func:`bertsearch.search.confidence.answer_model_of`;
            with ``large_reader``, the pair's fit in that folder, ``pair_answer_model.json``, or the QA
            head's with a warning when it has none), read now.
        large_reader: Folder of a second, larger QA head that rereads the ``rereads`` most
            promising passages of a question (:class:`bertsearch.search.reader_pair.ReaderPair`);
            ``None``: the QA head reads alone. Ignored when ``reader`` is given.
        rereads: Passages of a question the large head rereads.
    """

    def __init__(
        self,
        index: Index,
        reader: Reader | ReaderPair | None = None,
        *,
        qa_model_path: str | None = None,
        precision: str = "auto",
        threshold: float | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        answer_model: AnswerModel | None = None,
        large_reader: str | None = None,
        rereads: int = 3,
    ) -> None:
        self._index = index
        self._cache_dir = cache_dir if cache_dir is not None else index.settings.cache_dir
        if qa_model_path is None and reader is None:
            own = qa_model_for(index.params.model_id)
            qa_model_path = str(own) if own is not None else None
        large_reader = large_reader if reader is None else None
        if rereads < 1:
            raise ConfigError("rereads (BERTSEARCH_LARGE_READER_REREADS) must be at least 1")
        fitted_for = reader.model_path if reader is not None and reader.model_path is not None else qa_model_path
        second = getattr(reader, "second", None)  # a pair handed in brings its large head's folder
        pair_folder = large_reader if reader is None else second.model_path if second is not None else None
        if answer_model is None and pair_folder is not None:
            answer_model = pair_answer_model_of(pair_folder)
            if answer_model is None:
                log.warning("the large reader's folder holds no confidence fit for the pair (%s): the QA head's "
                            "is used, fitted to that head's scores alone", PAIR_MODEL_FILE)
            elif fitted_for is not None and Path(fitted_for).resolve() != default_qa_model_path().resolve():
                log.warning("the large reader's confidence fit was made with the shipped QA head reading first, "
                            "not the one given")
        self.answer_model = answer_model_of(fitted_for) if answer_model is None else answer_model
        self.threshold = self.answer_model.threshold if threshold is None else threshold
        self._reader = reader
        self._qa_model_path = qa_model_path
        self._large_reader = large_reader
        self._rereads = rereads
        self._precision = precision
        self._model_lock = threading.Lock()
        # One forward pass per model at a time: a fast tokenizer used from two threads at once
        # fails ("Already borrowed"), and torch already spreads one pass over every core.
        self._encode_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._last_refresh = time.monotonic()
        self._entry_vectors: OrderedDict[str, Any] = OrderedDict()  # under _encode_lock
        self._entry_vectors_model: str | None = None  # the encoder they came from
        self._last_query: tuple[str, str, Any] | None = None  # (model id, text, vector), under _encode_lock

    @classmethod
    def open(
        cls, settings: Settings | str | os.PathLike[str] | None = None, *, reader: Reader | ReaderPair | None = None,
        answer_model: AnswerModel | None = None,
    ) -> Searcher:
        """Open the index described by ``settings`` (or found in an index folder) for searching.

        Args:
            settings: Runtime settings, or the path of an index folder; ``None`` reads the environment.
            reader: A QA reader to use instead of loading one from ``settings.qa_model_path``.
            answer_model: The answer model to use instead of the shipped fit (see :class:`Searcher`).

        Raises:
            IndexNotFound: No index exists there.
            ModelMismatch: The index was built with other build parameters.
        """
        from bertsearch.indexer.index import Index

        if settings is None:
            settings = Settings()
        elif not isinstance(settings, Settings):
            settings = Settings(index_dir=Path(settings))
        index = Index.open(settings)
        return cls(index, reader, qa_model_path=settings.qa_model_path, precision=settings.precision,
                   cache_dir=settings.cache_dir, answer_model=answer_model, large_reader=settings.large_reader,
                   rereads=settings.large_reader_rereads)

    @property
    def index(self) -> Index:
        """The open index."""
        return self._index

    @property
    def generation(self) -> int:
        """The generation of the index being served."""
        return self._index.generation

    def check_ready(self) -> str | None:
        """Why this searcher cannot serve now (the database does not answer, no index loaded), or ``None``."""
        try:
            self._index.ping()
        except StorageError as exc:
            log.warning("not ready: %s", exc)
            return "the database does not answer"
        if self._index.generation < 1:
            return "no index is loaded"
        return None

    @property
    def qa_model_path(self) -> str | None:
        """The folder of the QA head this searcher reads with (``None``: the shipped default head,
        or the reader it was given); with a large reader, the head that reads every passage."""
        return self._qa_model_path

    @property
    def reader_loaded(self) -> bool:
        """Whether the QA reader is loaded."""
        return self._reader is not None

    @property
    def reader(self) -> Reader | ReaderPair:
        """The QA reader (with ``large_reader``, the pair), loaded on first use and only once."""
        if self._reader is None:
            with self._model_lock:
                if self._reader is None:
                    from bertsearch.search.reader import Reader

                    reader = Reader(self._qa_model_path, precision=self._precision, cache_dir=self._cache_dir)
                    if self._large_reader is not None:
                        from bertsearch.search.reader_pair import ReaderPair

                        second = Reader(self._large_reader, precision=self._precision, cache_dir=self._cache_dir)
                        reader = ReaderPair(reader, second, rereads=self._rereads)
                    self._reader = reader
        return self._reader

    def load_models(self, *, reader: bool = True) -> None:
        """Load the encoder (and the QA reader) now rather than on first use.

        Raises:
            ModelLoadError: A model cannot be loaded.
            ModelMismatch: The encoder is not the one the index was built with.
        """
        self._index.encoder
        if reader:
            self.reader  # noqa: B018 (loads it)

    def search(self, query: str, top_k: int = 5, path_glob: str | None = None, mode: str = DEFAULT_MODE,
               ef_search: int | None = None, where: dict[str, Any] | None = None) -> SearchResult:
        """The ``top_k`` passages that best match ``query``, best first.

        Args:
            query: What to look for (1 to 1000 characters).
            top_k: How many passages to return (1 to 100).
            path_glob: Only passages of documents whose path matches this glob (e.g. ``docs/*.md``).
            mode: ``hybrid`` (meaning and words, fused), ``dense`` (meaning) or ``lexical`` (BM25 on words).
            ef_search: On an HNSW index, candidates explored per query (1 to 1,024; default: the
                setting): more finds more of the exact top k, and costs more.
            where: Only passages of documents whose metadata this filter lets through, e.g.
                ``{"language": "zh"}`` or ``{"$or": [{"year": {"$gte": 2020}}, {"tags": {"$contains": "ops"}}]}``
                (see :mod:`bertsearch.indexer.filters`).

        Raises:
            InvalidQuery: The query is empty or too long, ``top_k`` or ``ef_search`` is out of range, or
                ``where`` is not a filter (the message names its bad part).
        """
        began = time.perf_counter()
        query = check_query(query, "query")
        check_count(top_k, "top_k")
        check_ef_search(ef_search)
        parsed = parse_where(where)
        hits = self._retrieve(query, top_k, path_glob, check_mode(mode), ef_search, parsed)
        return SearchResult(query=query, hits=hits, took_ms=_ms_since(began))

    def ask(
        self,
        question: str,
        top_k: int = 5,
        passages: int = DEFAULT_PASSAGES,
        path_glob: str | None = None,
        threshold: float | None = None,
        mode: str = DEFAULT_MODE,
        where: dict[str, Any] | None = None,
    ) -> AskResult:
        """Answers to ``question`` read from the best ``passages`` passages, best first.

        The reader reads every passage in one batched call. Answers are ranked by ``confidence``
        (see :func:`bertsearch.search.confidence.confidence`), each once from its best place
        (:func:`bertsearch.search.answers.merge`); when none reaches
        the threshold, the best one comes alone, flagged ``below_threshold``, with a ``reason``.

        Args:
            question: The question (1 to 1000 characters).
            top_k: How many answers to return at most (1 to 100).
            passages: How many passages to retrieve and read (1 to 100).
            path_glob: Only read passages of documents whose path matches this glob.
            threshold: Minimum ``confidence`` of an answer, from 0 to 1 (default: :attr:`threshold`).
            mode: How passages are retrieved (see :meth:`search`).
            where: Only read passages of documents this metadata filter lets through (see :meth:`search`).

        Raises:
            InvalidQuery: The question is empty or too long, a count is out of range, or ``where``
                is not a filter.
            ModelLoadError: The QA model cannot be loaded.
        """
        began = time.perf_counter()
        question = check_query(question, "question")
        check_count(top_k, "top_k")
        check_count(passages, "passages")
        threshold = self.threshold if threshold is None else threshold
        check_threshold(threshold)
        parsed = parse_where(where)
        hits = self._retrieve(question, passages, path_glob, check_mode(mode), where=parsed)
        if not hits:
            reason = ("no passage matches the where filter" if parsed is not None
                      else "no passage matches the path filter" if path_glob else "the index holds no documents")
            return AskResult(question=question, answers=[], took_ms=_ms_since(began), reason=reason)
        answers = [a for a, _ in self.read_answers(question, hits, mode, top_n=max(4 * top_k, 20))]
        kept = [a for a in answers if a.confidence >= threshold][:top_k]
        reason = None if kept else why_none(answers, len(hits), threshold)
        if not kept and answers:
            kept = [replace(answers[0], below_threshold=True)]
        return AskResult(question=question, answers=kept, took_ms=_ms_since(began), reason=reason)

    def read_answers(self, question: str, hits: list[Hit], mode: str = DEFAULT_MODE,
                     top_n: int = 20) -> list[tuple[Answer, dict[str, float]]]:
        """Every distinct answer the reader finds in ``hits``, best first, with the features its
        confidence was computed from (what ``ask`` ranks; the confidence fit reads the features)."""
        reader = self.reader
        with self._read_lock:
            # Ask for more spans than answers: some are the same answer read from two chunks.
            spans = reader.read(question, [hit.text for hit in hits], top_n=top_n, threshold=0.0)
        return assemble(question, hits, spans, mode, self.answer_model, self._encode_entries)

    def retrieve(self, query: str, k: int, path_glob: str | None = None, mode: str = DEFAULT_MODE,
                 where: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` best passages for ``query`` (what :meth:`search` returns, without the checks)."""
        return self._retrieve(query, k, path_glob, check_mode(mode), where=parse_where(where))

    def refresh(self, min_interval: float = 0.0, *, background: bool = False) -> bool:
        """Serve the newest committed generation of the index.

        Cheap to call on every request: it checks at most once per ``min_interval`` seconds, and
        a call made while another thread is refreshing returns at once. The new generation
        replaces the old one in one assignment, so a search runs entirely on one or the other.

        Args:
            min_interval: Do nothing if the last check began less than this many seconds ago.
            background: Check and load in a background thread and return at once, so no caller
                waits for a reload (a failed check is logged, and the current generation stays).

        Returns:
            True when a newer generation was loaded (always False with ``background``).
        """
        if time.monotonic() - self._last_refresh < min_interval:
            return False
        if not self._refresh_lock.acquire(blocking=False):
            return False
        self._last_refresh = time.monotonic()
        if not background:
            try:
                return bool(self._index.refresh())
            finally:
                self._refresh_lock.release()
        threading.Thread(target=self._refresh_in_background, name="bertsearch-refresh", daemon=True).start()
        return False

    def _refresh_in_background(self) -> None:
        try:
            if self._index.refresh():
                self._index.encoder  # a rebuild with another model needs it: load it here, not in a request
                log.info("serving generation %s of the index", self.generation)
        except Exception:  # noqa: BLE001 (keep serving the current generation; the next check retries)
            log.exception("checking for a new generation of the index failed")
        finally:
            self._refresh_lock.release()

    def embed(self, texts: Sequence[str], *, normalize: bool = True, input_type: InputType = "passage") -> Embeddings:
        """Vectors of ``texts`` from the index's own encoder, as its chunks and queries are encoded.

        Args:
            texts: 1 to 256 texts of 1 to 20,000 characters (blank ones are texts too).
            normalize: L2-normalise each vector (then a dot product is the cosine).
            input_type: ``"passage"`` (as chunks are encoded) or ``"query"`` (as searches encode
                queries: with the model's query prefix, E5's ``query: ``; the same for the MiniLM).

        Raises:
            InvalidQuery: No text, too many, an empty one or one too long; another ``input_type``.
        """
        check_texts(texts)
        check_input_type(input_type)
        query = input_type == "query"
        encoder = self._index.encoder
        with self._encode_lock:
            vectors = encoder.encode(list(texts), normalize=normalize, query=query)
            tokens = encoder.count_tokens(list(texts), query=query)
        return Embeddings(model=encoder.model_id, vectors=vectors, tokens=tokens, precision=encoder.precision)

    def stats(self) -> dict[str, Any]:
        """What the index holds and how it was built (see ``Index.info``, which refreshes first),
        and ``reader_precision``: what the QA reader reads in (before it is loaded, what it will try)."""
        from bertsearch.indexer.common.precision import resolve

        with self._refresh_lock:  # one refresh at a time
            info = self._index.info()
        reader = self._reader
        info["reader_precision"] = reader.precision if reader is not None else resolve(self._precision)
        return info

    def document(self, document_id: int) -> DocumentRecord:
        """The document with id ``document_id``.

        Raises:
            DocumentNotFound: No such document.
        """
        return self._index.get_document(document_id)

    def close(self) -> None:
        """Close the index (after a refresh in progress has finished)."""
        with self._refresh_lock:
            self._index.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _retrieve(self, query: str, k: int, path_glob: str | None, mode: str,
                  ef_search: int | None = None, where: Where | None = None) -> list[Hit]:
        def encode(text: str) -> Any:
            return self._encode_texts([text], query=True)[0]

        return retrieve_hits(self._index, encode, query, k, path_glob, mode, catch_up=self._catch_up,
                             ef_search=ef_search, fit=self.answer_model, where=where)

    def _encode_texts(self, texts: list[str], *, query: bool = False) -> Any:
        """``texts`` encoded as passages, or as queries (the model's query prefix, E5's ``query: ``)."""
        encoder = self._index.encoder  # loaded once, under the index's lock
        with self._encode_lock:
            if not query or len(texts) != 1:
                return encoder.encode(texts, query=query)
            # ask encodes its question twice: to retrieve, then to rank definition entries
            last = self._last_query
            if last is not None and last[:2] == (encoder.model_id, texts[0]):
                return last[2][None, :].copy()  # a copy: a caller may change what it gets
            vectors = encoder.encode(texts, query=True)
            self._last_query = (encoder.model_id, texts[0], vectors[0].copy())
            return vectors

    def _encode_entries(self, texts: list[str], *, query: bool = False) -> Any:
        """``texts`` encoded, each entry of a definition list once: the same passages come back for
        question after question, so their entries' vectors are kept (the last
        :data:`ENTRY_VECTORS_KEPT`, by text). A reload that serves another model empties them.
        Questions (``query=True``) are encoded as queries and not kept with them."""
        import numpy as np

        if query:
            return self._encode_texts(texts, query=True)

        encoder = self._index.encoder
        with self._encode_lock:
            if self._entry_vectors_model != encoder.model_id:
                self._entry_vectors.clear()
                self._entry_vectors_model = encoder.model_id
            cache = self._entry_vectors
            missing = list(dict.fromkeys(t for t in texts if t not in cache))
            if missing:
                for text, vector in zip(missing, encoder.encode(missing)):
                    cache[text] = vector
            vectors = np.stack([cache[t] for t in texts])
            for text in texts:
                cache.move_to_end(text)
            while len(cache) > ENTRY_VECTORS_KEPT:
                cache.popitem(last=False)
            return vectors

    def _catch_up(self) -> None:
        # A writer is ahead of the served snapshot: load the newest generation now (after a
        # refresh in progress, if there is one) rather than answer without the chunks it changed.
        with self._refresh_lock:
            self._index.refresh()
            self._last_refresh = time.monotonic()



def _ms_since(began: float) -> float:
    return round((time.perf_counter() - began) * 1000.0, 3)
