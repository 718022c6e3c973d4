"""Answers read from definition lists: the option lists of man pages and ``--help`` texts, their
ENVIRONMENT sections and their exit-status tables.

An extractive reader trained on prose (SQuAD) reads an option list as one run-on sentence and
picks a neighbouring option, or a few words of a description, when asked "which option keeps the
input files?". In such a list the answer to that question is the *term* of the entry whose
*description* says what the question asks, so this module parses the entries of a passage and
:func:`definition_answers` ranks their descriptions against the question with the sentence
encoder (cosine of the normalised vectors).

Only questions that ask for a term get such answers (:func:`asks_for`): an option ("which
option..."), an environment variable, an exit status, a function ("which
function removes common leading whitespace?", in API references), or a default value
("what is the default suffix length of split?"; a question asking for a quantity, "how many..."
or "...level", only gets values with a digit). A question that names an option already ("what does
-p do?") is not asking for an option.

The entries come from :func:`bertsearch.search.entries.parse_entries`, the one parser of definition
lists of every format the indexer reads (man pages, pydoc, HTML ``<dl>``, asciidoc ``term::``,
Markdown, reST field and option lists, tables, defaults and exit statuses in prose), the same
that makes the generated training questions. Of its kinds, the five a question can ask for are
kept; the answer is the head as written (``-k, --keep``), a function's name, or a default value.
This module adds only environment variables named in prose ("The LS_COLORS environment variable
can change the settings": the sentence is the description).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from bertsearch.search.entries import answer_span, parse_entries
from bertsearch.search.words import content_words

KINDS = ("option", "variable", "status", "default", "function")

# Section headings of man pages and READMEs: capitals alone on a line, like a variable.
_HEADINGS = frozenset(
    "NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES EXAMPLES EXAMPLE NOTES BUGS AUTHOR AUTHORS COPYRIGHT "
    "DIAGNOSTICS CAVEATS HISTORY STANDARDS USAGE COMMANDS ARGUMENTS OVERVIEW INSTALLATION LICENSE WARNING "
    "WARNINGS SECURITY RETURN VALUE ERRORS FUNCTIONS CLASSES METHODS DATA FILE VERSION MODULE PACKAGE CONTENTS".split())
_MAX_DESCRIPTION = 400
_OVERLAP_WORDS = 12
_ASKS = {
    "default": re.compile(r"\bdefaults?\b", re.IGNORECASE),
    "option": re.compile(
        r"\b(?:options?|flags?|switch(?:es)?|arguments?)\b", re.IGNORECASE),
    "variable": re.compile(r"\b(?:environment\s+variables?|env(?:ironment)?\s+vars?|variables?)\b", re.IGNORECASE),
    "status": re.compile(r"\b(?:exit|return)\s+(?:status|code|value)s?\b|\bstatus\s+codes?\b", re.IGNORECASE),
    "function": re.compile(r"\b(?:functions?|methods?|macros?|routines?)\b", re.IGNORECASE),
}
# A question asking for a quantity: its default value holds a digit ("10", "1.0", "-6").
_ASKS_NUMBER = re.compile(
    r"\bhow\s+(?:many|much|long|often|large|big|wide|far|deep)\b"
    r"|\b(?:level|size|length|width|number|count|limit|timeout|interval|depth|ratio)\b", re.IGNORECASE)
_NAMES_AN_OPTION = re.compile(r"(?:^|\s)--?[A-Za-z0-9]")
_ENVIRONMENT_VARIABLE = re.compile(r"\benvironment\s+variables?\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n[ \t]*\n")
# A name with an underscore anywhere in the sentence, or capitals right before or after "environment variable(s)".
_PROSE_VARIABLE = re.compile(
    r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])\b"
    r"|\b([A-Z]{3,}[0-9]*)\b(?=\s+environment\s+variable)|(?<=environment variable )([A-Z]{3,}[0-9]*)\b")


@dataclass(frozen=True)
class Entry:
    """One entry of a definition list.

    Attributes:
        kind: One of :data:`KINDS`.
        start: First character of the term in the passage.
        end: One past its last character.
        description: What the entry says of its term (white space folded).
    """

    kind: str
    start: int
    end: int
    description: str
    stop: int = 0
    """One past the end of the entry's description in the passage (0 when not known)."""
    head: tuple[int, int] = (0, 0)
    """The entry's head as written (``-T, --print-type``; ``dedent(text)``), or the term alone."""
    name: tuple[int, int] = (0, 0)
    """The name the parser found in the head (``--print-type``; ``dedent``), or the term alone."""


@dataclass(frozen=True)
class DefinitionAnswer:
    """An entry's term as an answer: ``similarity`` of the question to the entry (its term and
    description), ``margin`` over the best other entry of the question's passages (negative when
    another is better), and ``overlap``, the share of the entry's first words that the question
    holds (the encoder hardly tells "a line is selected" from "no lines were selected")."""

    passage_index: int
    entry: Entry
    similarity: float
    margin: float
    overlap: float


def asks_for(question: str) -> str | None:
    """The kind of term ``question`` asks for, or ``None`` (see the module docstring)."""
    for kind in ("default", "status", "variable", "function", "option"):
        if _ASKS[kind].search(question):
            if kind == "option" and _NAMES_AN_OPTION.search(question):
                return None
            return kind
    return None


def entries(text: str) -> list[Entry]:
    """The definition-list entries of ``text`` of the kinds a question asks for (see the module docstring)."""
    parsed = parse_entries(text)
    heads = {e.desc_start: text[e.full_start:e.full_end] for e in parsed if e.kind != "default"}
    found = []
    for e in parsed:
        if e.kind not in KINDS:
            continue
        start, end = answer_span(e)
        description = e.description
        if e.kind == "default":  # a value is described by its list entry, or else by its sentence
            head = heads.get(e.desc_start)
            if head is not None:
                description = f"{head} {e.description}"
            else:
                lo, hi = _sentence_around(text, e.desc_start, e.desc_end)
                description = " ".join(text[lo:hi].split())
        found.append(Entry(e.kind, start, end, description[:_MAX_DESCRIPTION], e.desc_end,
                           (e.full_start, e.full_end), (e.start, e.end)))
    found.extend(_prose_variables(text))
    return found


def definition_answers(
    question: str, passages: Sequence[str], encode: Callable[..., Any],
) -> list[DefinitionAnswer]:
    """The entries of ``passages`` whose kind ``question`` asks for, best match first.

    ``encode`` turns texts into normalised vectors (the index's encoder), as passages, or as
    queries with ``query=True`` (E5's ``query: `` prefix); it is called only when there are entries
    to rank: once for the question, once for the entries (term and description).
    """
    kind = asks_for(question)
    if kind is None:
        return []
    found = [(p, e) for p, text in enumerate(passages) for e in entries(text) if e.kind == kind]
    if kind == "default" and _ASKS_NUMBER.search(question):
        found = [(p, e) for p, e in found if any(ch.isdigit() for ch in passages[p][e.start:e.end])]
    found = _distinct(found, passages)
    if not found:
        return []
    texts = [f"{_term(passages, f)} {f[1].description}" for f in found]
    asked_vector = np.asarray(encode([question], query=True), dtype=np.float32)[0]
    sims = [float(s) for s in np.asarray(encode(texts), dtype=np.float32) @ asked_vector]
    order = sorted(range(len(found)), key=lambda j: -sims[j])
    best = sims[order[0]]
    term = _term(passages, found[order[0]])
    second = max((sims[j] for j in order if _term(passages, found[j]) != term), default=0.0)
    asked = set(content_words(question))
    answers = []
    for j in order:
        margin = best - second if j == order[0] else sims[j] - best
        words = content_words(texts[j])[:_OVERLAP_WORDS]
        overlap = sum(w in asked for w in words) / len(words) if words else 0.0
        answers.append(DefinitionAnswer(found[j][0], found[j][1], sims[j], margin, overlap))
    return answers


def entry_span(text: str, found: Sequence[Entry], start: int, end: int) -> tuple[int, int]:
    """The answer span ``text[start:end]`` as the entries ``found`` in ``text`` (:func:`entries`) give it.

    - A span that begins in an entry's term and runs on into its description ends with the term
      ("--si print sizes in powers of 1000" ends after "--si", then is "-H, --si" by the rule
      below; a default value is not cut).
    - A span inside an entry's head, on its name (or, in an option's head, on another of its
      names), is the entry's answer: the whole term as written (``--print-type`` or ``-T`` of
      ``-T, --print-type``), a function's name, as the definition answers and the written
      training pairs give them. A span on an option's argument (``NUM`` of ``--bytes=NUM``) or
      in a description is left alone.
    """
    for e in found:
        if e.kind != "default" and e.start <= start < e.end < end:
            end = e.end
            break
    for e in found:
        (head_start, head_end), (name_start, name_end) = e.head, e.name
        if not (head_start <= start and end <= head_end) or start >= end:
            continue
        if (start < name_end and name_start < end) or (e.kind == "option" and text[start] == "-"):
            return e.start, e.end
    return start, end


def _prose_variables(text: str) -> list[Entry]:
    """Variables a sentence about environment variables names ("The LS_COLORS environment
    variable can change the settings"): the sentence is their description."""
    found = []
    for mention in _ENVIRONMENT_VARIABLE.finditer(text):
        start, end = _sentence_around(text, mention.start(), mention.end())
        description = " ".join(text[start:end].split())
        for m in _PROSE_VARIABLE.finditer(text, start, end):
            name = next(g for g in m.groups() if g)
            at = m.start(m.lastindex or 1)
            if name not in _HEADINGS:
                term = (at, at + len(name))
                found.append(Entry("variable", *term, description, end, term, term))
    return found


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence holding ``text[start:end]``: from the end of the previous one (or a blank line)
    to its full stop (or a blank line), at most 200 characters either side."""
    lo = max(0, start - 200)
    stops = [m.end() for m in _SENTENCE_END.finditer(text, lo, start)]
    first = stops[-1] if stops else lo
    stop = _SENTENCE_END.search(text, end, min(len(text), end + 200))
    return first, stop.start() + 1 if stop else min(len(text), end + 200)


def _term(passages: Sequence[str], found: tuple[int, Entry]) -> str:
    p, e = found
    return passages[p][e.start:e.end]


def _distinct(found: list[tuple[int, Entry]], passages: Sequence[str]) -> list[tuple[int, Entry]]:
    """One of each entry: overlapping chunks hold the same entries (a description may be cut
    short at a chunk's end, so its start is what tells them apart)."""
    seen = set()
    out = []
    for p, e in found:
        key = (passages[p][e.start:e.end], e.description[:40])
        if key not in seen:
            seen.add(key)
            out.append((p, e))
    return out
