"""Answers read from definition lists: the option lists of man pages and ``--help`` texts, their
ENVIRONMENT sections and their exit-status tables.

An extractive reader trained on prose (SQuAD) reads an option list as one run-on sentence and
picks a neighbouring option, or a few words of a description, when asked "which option keeps the
input files?". In such a list the answer to that question is the *term* of the entry whose
*description* says what the question asks, so this module parses the entries of a passage and
:func:`definition_answers` ranks their descriptions against the question with the sentence
encoder (cosine of the normalised vectors).

Only questions that ask for a term get such answers (:func:`asks_for`): an option ("which
option...", "how do I ... with ls?"), an environment variable, an exit status, a function ("which
function removes common leading whitespace?", in API references), or a default value
("what is the default suffix length of split?"; a question asking for a quantity, "how many..."
or "...level", only gets values with a digit). A question that names an option already ("what does
-p do?") is not asking for an option.

Formats read (indentation is what tells a term from its description):

- a term alone on its line and its description on the next lines, indented further
  (``   -k --keep`` / ``          Keep (don't delete) input files``);
- a term, two or more spaces, its description, continued on lines indented further
  (``   -b     like --backup but does not accept an argument``, ``   125    if the command is
  killed by a signal``);
- exit statuses in prose: "the exit status is 0 if a line is selected, 1 if no lines were
  selected, and 2 if an error occurred";
- environment variables in prose: "The LS_COLORS environment variable can change the settings"
  (the sentence is the description);
- functions of API references: a signature alone on its line, its description indented under it
  (pydoc's ``    dedent(text)`` / ``        Remove any common leading whitespace...``; an HTML
  ``<dt>Function: void *ffi_closure_alloc (size_t size)</dt>``); the term is the function's name;
- Markdown lists and tables: a bullet whose term is a code span or bold, then ``:``, a dash or
  ``--`` and its description (``- `--keep`: keep the input files``), and a table row whose first
  cell is the term (``| `--keep` | keep the input files |``); of several code spans in the term,
  the longest is the term (``--keep`` of ``-k``, ``--keep``). HTML definition lists arrive as
  indented text (the HTML reader indents ``<dd>``), so they parse as above;
- default values, in an entry or in prose: "(default 2)", "(default: 10)", "the default size is
  1000 lines", "defaults to 'x'". The value is the term; its description is the entry it belongs
  to (term and description) or else the sentence around it.

Every pattern is bounded (a term is at most 60 characters, a signature 300, a sentence 400) and
none nests an unbounded repetition, so a hostile document costs linear time (a test holds it).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from bertsearch.search.entries import line_spans
from bertsearch.search.words import STOPWORDS, content_words

KINDS = ("option", "variable", "status", "default", "function")

_OPTION_TOKEN = r"(?:(?:--?|\+)[\w?#][\w\-#?]*(?:\[?=?[\w\-.,:/<>\[\]|{}]*\]?)?|\[?[A-Z][A-Z0-9_\-]*\]?|\[[^\]\s]{1,20}\]|\.?[a-z]{1,8})"
_OPTION_TERM = re.compile(rf"(?:--?|\+)[\w?#]\S*(?:,? {_OPTION_TOKEN})*")
_VARIABLE_TERM = re.compile(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+|[A-Z]{3,}[0-9]*")
_STATUS_TERM = re.compile(r"\d{1,3}")
# A signature: an optional label and return type, the name, its parameters (one level of nested
# brackets), an optional return annotation.
_FUNCTION_TERM = re.compile(
    r"(?:(?:Function|Macro|Method|def)\b:?[ \t]+)?(?:[\w*]+[ \t]+\**){0,4}?\**([A-Za-z_][\w.]{0,60})[ \t]*"
    r"\((?:[^()\n]|\([^()\n]{0,40}\))*\)(?:[ \t]*->[ \t]*[^\s]{1,40})?:?")
_MAX_SIGNATURE = 300
_ABOUT_STATUS = re.compile(r"\b(?:exit|exits|status|return|returns)\b", re.IGNORECASE)
_GAP = re.compile(r"[ \t]{2,}|\t")
_MAX_TERM = 60
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
        r"\b(?:options?|flags?|switch(?:es)?|arguments?)\b"
        r"|^\W*how\s+(?:do|can|could|should|would)\b|^\W*how\s+to\b",
        re.IGNORECASE),
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
# Markdown: "- `--keep`: description", "* **-k, --keep** - description", "| `--keep` | description |".
_MD_BULLET = re.compile(
    r"^[ \t]{0,12}[-*+][ \t]+((?:`[^`\n]{1,60}`|\*\*[^*\n]{1,60}\*\*)(?:[ \t]*,[ \t]*`[^`\n]{1,60}`){0,3})"
    r"[ \t]*(?::|\u2014|\u2013|--?(?=[ \t]))[ \t]*(\S[^\n]{0,400})$", re.MULTILINE)
_MD_ROW = re.compile(r"^[ \t]{0,12}\|[ \t]*([^|\n]{1,80}?)[ \t]*\|([^\n]{1,400})$", re.MULTILINE)
_MD_CODE = re.compile(r"`([^`\n]{1,60})`|\*\*([^*\n]{1,60})\*\*")
# A default value: "(default 2)", "(default: 10)", "(default is 'x')"; "the default [up to six words]
# is/are [set to] VALUE"; "defaults to VALUE". The value ends at white space, a comma, a semicolon, a
# closing bracket or a full stop.
# "This is the default when there is more than one file" states no value: no clause between.
_NOT_CLAUSE = r"(?!(?:when|if|unless|there|it|this|that|which|behaviou?r)\b)"
_VALUE_END = r"(?=[\s,;)]|\.(?:\s|$)|$)"
_DEFAULT_VALUE = re.compile(
    r"\(defaults?(?::|\s+is|\s+to|\s*=)?\s*([^()\s][^()\n]{0,39}?)\)"
    rf"|\bdefault(?:[ \t\n]+{_NOT_CLAUSE}[^\s.;:,()]{{1,30}}){{0,6}}?\s+(?:is|are|=)\s+(?:set\s+to\s+)?([^\s,;()]{{1,40}}?){_VALUE_END}"
    rf"|\bdefaults\s+to\s+([^\s,;()]{{1,40}}?){_VALUE_END}",
    re.IGNORECASE)
_NOT_VALUES = STOPWORDS | {"not", "no", "given", "specified"}
# A sentence about exit statuses: up to its full stop or a blank line, within 400 characters.
_STATUS_SENTENCE = re.compile(r"\b(?:exit|return)\s+(?:status|code|value)\b[^.]{0,400}?(?:\.(?=\s|$)|\n[ \t]*\n)",
                              re.IGNORECASE)
_STATUS_CLAUSE = re.compile(
    r"\b(\d{1,3})\s+(?:if|when)\s+(.+?)(?=,?\s*(?:and\s+|or\s+)?\b\d{1,3}\s+(?:if|when)\b|[.;]|$)", re.DOTALL)


@dataclass(frozen=True)
class Entry:
    """One entry of a definition list.

    Attributes:
        kind: ``option``, ``variable`` or ``status`` (see :data:`KINDS`).
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
    """The definition-list entries of ``text``, in order (see the module docstring)."""
    lines = line_spans(text)
    found: list[Entry] = []
    for i in range(len(lines)):  # entries may nest (a list inside a description)
        entry = _entry_at(text, lines, i)
        if entry is not None:
            found.append(entry)
    found.extend(_markdown_entries(text))
    found.extend(_prose_statuses(text))
    found.extend(_prose_variables(text))
    found.extend(_defaults(text, found))
    return found


def definition_answers(
    question: str, passages: Sequence[str], encode: Callable[[list[str]], Any],
) -> list[DefinitionAnswer]:
    """The entries of ``passages`` whose kind ``question`` asks for, best match first.

    ``encode`` turns texts into normalised vectors (the index's encoder); it is called once, with
    the question and the entries (term and description), and only when there are entries to rank.
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
    vectors = np.asarray(encode([question] + texts), dtype=np.float32)
    sims = [float(s) for s in vectors[1:] @ vectors[0]]
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


def term_end(terms: Sequence[tuple[int, int]], start: int, end: int) -> int:
    """Where an answer span ``[start, end)`` should end, given the (start, end) of the terms of
    its passage's entries: at the end of a term it begins in, when it runs on into the
    description ("--si print sizes in powers of 1000" is "--si")."""
    for lo, hi in terms:
        if lo <= start < hi < end:
            return hi
    return end


def _entry_at(text: str, lines: list[tuple[int, int, int]], i: int) -> Entry | None:
    start, end, indent = lines[i]
    if indent < 0:
        return None
    content_start = start + (len(text[start:end]) - len(text[start:end].lstrip(" \t")))
    content = text[content_start:end].rstrip()
    gap = _GAP.search(content)
    head = content[: gap.start()] if gap else content
    kind = _term_kind(head)
    if kind is None or head in _HEADINGS:
        return None
    if kind == "status" and not _ABOUT_STATUS.search(text, max(0, start - 300), start):
        return None  # a numbered list about something else
    if kind == "function" and gap:
        return None  # a signature stands alone on its line
    lo, hi = _term_bounds(kind, head)
    parts = [content[gap.end():]] if gap else []
    j = i + 1
    if not gap and (j >= len(lines) or lines[j][2] <= indent):
        return None  # a term alone on its line needs its description right under it
    # The description: the lines after the term indented further, across blank lines inside it.
    while j < len(lines):
        s, e, ind = lines[j]
        if ind < 0:
            nxt = next((line for line in lines[j + 1:] if line[2] >= 0), None)
            if nxt is None or nxt[2] <= indent:
                break
        elif ind <= indent:
            break
        else:
            parts.append(text[s:e])
        j += 1
    description = " ".join(" ".join(parts).split())[:_MAX_DESCRIPTION]
    if not description:
        return None
    return Entry(kind, content_start + lo, content_start + hi, description, lines[j - 1][1])


def _term_bounds(kind: str, head: str) -> tuple[int, int]:
    """Where the answer lies in a term of ``kind``: all of it, or a signature's name."""
    if kind == "function":
        name = _FUNCTION_TERM.fullmatch(head)
        assert name is not None  # _term_kind said so
        return name.span(1)
    return 0, len(head)


def _term_kind(head: str) -> str | None:
    if "(" in head and len(head) <= _MAX_SIGNATURE and _FUNCTION_TERM.fullmatch(head):
        return "function"
    if len(head) > _MAX_TERM:
        return None
    if _OPTION_TERM.fullmatch(head):
        return "option"
    if _VARIABLE_TERM.fullmatch(head):
        return "variable"
    if _STATUS_TERM.fullmatch(head):
        return "status"
    return None


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
                found.append(Entry("variable", at, at + len(name), description))
    return found


def _markdown_entries(text: str) -> list[Entry]:
    """Entries of Markdown bullet lists and tables (see the module docstring)."""
    found = []
    for pattern in (_MD_BULLET, _MD_ROW):
        for m in pattern.finditer(text):
            spans = [(c.start(c.lastindex or 1), c.end(c.lastindex or 1)) for c in _MD_CODE.finditer(m.group(1))]
            if not spans:
                if pattern is _MD_BULLET:
                    continue
                spans = [(0, len(m.group(1)))]  # a table cell without a code span
            start, end = max(spans, key=lambda span: span[1] - span[0])
            term = m.group(1)[start:end].strip()
            kind = _term_kind(term)
            description = " ".join(m.group(2).replace("|", " ").split()) if pattern is _MD_ROW else " ".join(m.group(2).split())
            if kind is None or term in _HEADINGS or not description.strip("-: "):
                continue
            if kind == "status" and not _ABOUT_STATUS.search(text, max(0, m.start() - 300), m.start()):
                continue
            at = m.start(1) + m.group(1).index(term, start)
            lo, hi = _term_bounds(kind, term)
            found.append(Entry(kind, at + lo, at + hi, description[:_MAX_DESCRIPTION], m.end()))
    return found


def _defaults(text: str, listed: list[Entry]) -> list[Entry]:
    """The default values ``text`` states (see the module docstring): each as an entry whose term
    is the value and whose description is its list entry's ("-a, --suffix-length=N generate
    suffixes of length N (default 2)") or, in prose, its sentence."""
    # The list entries (prose ones have no extent: stop 0, and must not hide the entry around them).
    owners = sorted((e for e in listed if e.stop > e.start), key=lambda e: e.start)
    starts = [e.start for e in owners]
    found = []
    for m in _DEFAULT_VALUE.finditer(text):
        group = next(g for g in range(1, 4) if m.group(g))
        start, end = m.span(group)
        value = text[start:end].rstrip(".")
        end = start + len(value)
        if not value.strip("'\"`") or value.lower() in _NOT_VALUES:
            continue  # "the default ... is not specified"
        at = bisect.bisect_right(starts, m.start()) - 1  # the nearest entry before it, if it reaches it
        owner = owners[at] if at >= 0 and m.start() < owners[at].stop else None
        if owner is not None:
            description = f"{text[owner.start:owner.end]} {owner.description}"
        else:
            lo, hi = _sentence_around(text, m.start(), m.end())
            description = " ".join(text[lo:hi].split())
        found.append(Entry("default", start, end, description[:_MAX_DESCRIPTION], end))
    return found


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence holding ``text[start:end]``: from the end of the previous one (or a blank line)
    to its full stop (or a blank line), at most 200 characters either side."""
    lo = max(0, start - 200)
    stops = [m.end() for m in _SENTENCE_END.finditer(text, lo, start)]
    first = stops[-1] if stops else lo
    stop = _SENTENCE_END.search(text, end, min(len(text), end + 200))
    return first, stop.start() + 1 if stop else min(len(text), end + 200)


def _prose_statuses(text: str) -> list[Entry]:
    found = []
    for sentence in _STATUS_SENTENCE.finditer(text):
        for m in _STATUS_CLAUSE.finditer(text, sentence.start(), sentence.end()):
            description = " ".join(m.group(2).split())
            if description:
                found.append(Entry("status", m.start(1), m.end(1), description))
    return found


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
