"""Answers from what the reader and the definition lists found: placed in their documents, each
with its confidence, each answer once from its best place, best first (what ``Searcher.ask`` ranks)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bertsearch.search.confidence import (
    AnswerModel,
    confidence,
    confidence_features,
    definition_confidence,
    definition_features,
    reader_features,
)
from bertsearch.search.definitions import DefinitionAnswer, definition_answers
from bertsearch.search.naming import named_documents
from bertsearch.search.types import Answer, Hit

__all__ = ["MAX_DEFINITION_ANSWERS", "PASSAGE_TEMPERATURE", "answer_key", "assemble", "merge", "passage_weights",
           "why_none"]

# An answer's passage weight is a softmax of its passage's retrieval scores (normalised to [0, 1]
# in the lexical mode) at this temperature. On 80 SQuAD v1.1 dev questions asked of all 2,067
# dev paragraphs (5 passages, an early checkpoint of the shipped head, dense retrieval) the
# best answer's F1 went from 0.42 (reader score alone) to 0.50 (0.44 with the plain product).
PASSAGE_TEMPERATURE = 0.05
# Definition-list answers considered per question (the best matches of its kind; see definitions.py).
MAX_DEFINITION_ANSWERS = 5
# Dropped from the edges of an answer's key (answer_key): quotes, brackets and sentence punctuation,
# ASCII and CJK; never the dash an option starts with or the slash of a path, nor a leading dot.
_LEADING = "\"'`([{<“‘（「『《【〈"
_TRAILING = "\"'`)]}>”’）」』》】〉.,;:!?。，；：！？、"
# An option (a dash or two and a name starting with a letter) and the value its "=" gives it.
_OPTION = re.compile(r"(--?[A-Za-z][\w.-]*)(?:=([^\s,]+))?")
# An option's argument that names what it takes rather than giving a value: RATE, NUM, <num>.
_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*|<[^>]*>?|\[[^]]*\]?")
# A lowercase word naming an option's argument at the end of its head: port, destination, identity_file.
_ARGUMENT_NAME = re.compile(r"[a-z][a-z0-9_]*")


def assemble(question: str, hits: list[Hit], spans: list[Any], mode: str, model: AnswerModel,
             encode: Callable[..., Any]) -> list[tuple[Answer, dict[str, float]]]:
    """Every distinct answer to ``question`` in ``hits``, best first, with the features its
    confidence was computed from.

    Args:
        question: The question.
        hits: The passages read, as retrieved in ``mode``.
        spans: The reader's spans in them (``passage_index`` into ``hits``).
        mode: The retrieval mode (how the passages' scores are weighed).
        model: The answer model: the confidences, and whether definition answers are given.
        encode: Texts -> normalised vectors, for the definition-list entries (``query=True``: as
            queries, for the question).
    """
    passages = [hit.text for hit in hits]
    weights = passage_weights([hit.score for hit in hits], mode)
    named = named_documents(question, hits)
    scored = [_to_answer(span, hits[span.passage_index], weights, model, named[span.passage_index]) for span in spans]
    if model.definitions:
        found = definition_answers(question, passages, encode)[:MAX_DEFINITION_ANSWERS]
        if found:
            # A question asking for a term of a definition list: SQuAD, on which the reader's
            # confidence was fitted, has few; its confidence is refitted for them, beside the
            # entries' (see definition_confidence).
            scored = [(replace(a, confidence=round(definition_confidence(reader_features(f, model), model), 6)), f)
                      for a, f in scored]
            scored += [_definition_answer(d, hits[d.passage_index], weights, model) for d in found]
            entries = [a for a, _ in scored if a.source == "definition"]
            scored = [(_as_entry(a, entries), f) for a, f in scored]
    features = {id(a): f for a, f in scored}
    return [(a, features[id(a)]) for a in merge([a for a, _ in scored])]  # merge ranks them


def passage_weights(scores: list[float], mode: str = "dense") -> list[float]:
    """How likely each passage is to be the one holding the answer: a softmax of retrieval scores."""
    if mode == "lexical":  # BM25 has no fixed scale
        top = max(scores) or 1.0
        scores = [s / top for s in scores]
    logits = [s / PASSAGE_TEMPERATURE for s in scores]
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def merge(answers: list[Answer]) -> list[Answer]:
    """Best first: each answer once (:func:`answer_key`), from its best place.

    Each place of a document gives its best answer: an answer that overlaps a better one in the
    same document is dropped, so the same span read from two overlapping chunks is reported once,
    with its better score, and so are the variants of one answer the reader proposes around it
    ("14 days", "for 14 days"). An answer that says what a better one says is dropped too ("14
    days" in another document; "--max-redirs <num>" in another entry of the page whose own entry
    gave "--max-redirs"), and leaves its place to another answer there ("within 14 days" is
    another answer). An option is the same answer only within one document (``-v`` of grep's page
    is not ``-v`` of curl's).
    """
    kept: list[Answer] = []
    said: set[tuple[int | None, str]] = set()
    for answer in sorted(answers, key=lambda a: (a.confidence, a.score), reverse=True):
        key = answer_key(answer.text)
        said_as = (answer.document_id if _OPTION.match(key) else None, key)
        if said_as in said or any(
            k.document_id == answer.document_id and k.start < answer.end and answer.start < k.end for k in kept
        ):
            continue
        kept.append(answer)
        if key:
            said.add(said_as)
    return kept


def answer_key(text: str) -> str:
    """What two answers share when they say the same: the text in NFKC, case-folded, its
    whitespace collapsed, without quotes, brackets or sentence punctuation at its edges (a leading
    dot stays: ``.git`` is not ``git``) or a leading English article (``"The 14 Days."`` says
    ``14 days``). An option keeps its case and loses its argument unless the argument is a value
    (``--max-redirs <num>``, ``--bwlimit=RATE``, ``-v, --verbose`` and ``` `-v` ``` say
    ``--max-redirs``, ``--bwlimit``, ``-v`` and ``-v``; ``--color=never`` says itself; ``-T``
    is not ``-t``, nor ``-v`` ``v``). Empty for an answer of punctuation alone."""
    core = " ".join(unicodedata.normalize("NFKC", text).split()).lstrip(_LEADING).rstrip(_TRAILING)
    option = _OPTION.match(core)
    if option:  # an option keeps its case
        if not _names_only(core[option.end():]):
            return core
        flag, value = option.group(1), option.group(2)
        return flag if value is None or _PLACEHOLDER.fullmatch(value) else f"{flag}={value}"
    words = core.casefold().split()
    if len(words) > 1 and words[0] in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words).lstrip(_LEADING).rstrip(_TRAILING)


def _names_only(rest: str) -> bool:
    """Whether what follows an option's flag in an answer only names it again or its argument
    (``, --verbose``, `` <num>``, `` port``), so that the flag says the answer."""
    tokens = [t for t in re.split(r"[\s,]+", rest) if t]
    last = len(tokens) - 1
    return all(_OPTION.fullmatch(t) or _PLACEHOLDER.fullmatch(t) or (i == last and _ARGUMENT_NAME.fullmatch(t))
               for i, t in enumerate(tokens))


def why_none(answers: list[Answer], passages: int, threshold: float) -> str:
    """Why no answer is given: none found in the ``passages`` passages read, or none sure enough."""
    if not answers:
        return f"the reader found no answer span in the {passages} best passages"
    return (f"no answer in the {passages} best passages reaches the threshold ({threshold:g}); "
            f"the best one has confidence {answers[0].confidence:.3f}")


def _as_entry(answer: Answer, entries: list[Answer]) -> Answer:
    """A reader's answer inside a definition entry's wider answer, placed as that entry gives it
    (the whole term: the reader's ``--print-type`` of a chunk that starts inside
    ``-T, --print-type`` is the entry's ``-T, --print-type`` of the chunk before); still the
    reader's answer, with its scores."""
    if answer.source != "reader":
        return answer
    for entry in entries:
        if (entry.document_id == answer.document_id and entry.start <= answer.start and answer.end <= entry.end
                and entry.end - entry.start > answer.end - answer.start):
            return replace(answer, text=entry.text, start=entry.start, end=entry.end, chunk_id=entry.chunk_id,
                           context=entry.context, context_start=entry.context_start,
                           passage_score=entry.passage_score)
    return answer


def _to_answer(span: Any, hit: Hit, weights: list[float], model: AnswerModel,
               named: tuple[float, float]) -> tuple[Answer, dict[str, float]]:
    # Chunk text is document[hit.start:hit.end], so passage offsets shift by the chunk's start.
    weight = weights[span.passage_index]
    features = confidence_features(float(span.score), float(span.null_score), weight, hit, float(span.logit), named)
    return _answer_in(hit, span.start, span.end, score=float(span.score) * weight,
                      reader_score=float(span.score), confidence=confidence(features, model)), features


def _definition_answer(found: DefinitionAnswer, hit: Hit, weights: list[float],
                       model: AnswerModel) -> tuple[Answer, dict[str, float]]:
    entry = found.entry
    weight = weights[found.passage_index]
    features = definition_features(found, weights)
    sure = definition_confidence(features, model)
    return _answer_in(hit, entry.start, entry.end, score=sure * weight, reader_score=round(found.similarity, 6),
                      confidence=sure, source="definition"), features


def _answer_in(hit: Hit, start: int, end: int, *, score: float, reader_score: float, confidence: float,
               source: str = "reader") -> Answer:
    """The answer ``hit.text[start:end]``, placed in its document."""
    return Answer(
        text=hit.text[start:end], score=score, reader_score=reader_score, path=hit.path, title=hit.title,
        document_id=hit.document_id, chunk_id=hit.chunk_id, start=hit.start + start, end=hit.start + end,
        context=hit.text, passage_score=hit.score, context_start=hit.start,
        confidence=round(confidence, 6), source=source,  # type: ignore[arg-type]
    )
