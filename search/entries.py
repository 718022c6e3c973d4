"""Definition-list entries of a document's text: a term, what the document says of it, where each lies.

One mechanism reads the lists of every format the indexer turns into text, because they all come
down to a *head* (the term, maybe wrapped in markup) and a *body* (its description):

- indentation: a head alone on its line with the body indented under it (man pages' ``-k, --keep``,
  pydoc's ``    dedent(text)``, the HTML reader's ``<dt>``/``<dd>``, reST option lists), or a head,
  two or more spaces and the body on the same line (``-b     like --backup``, ``125  if ...``),
  continued on lines indented further;
- markup around the head: asciidoc ``term::`` (body on the line or the lines under it), Markdown
  bullets (``- `--keep`: keep input files``, ``* **-k** - ...``), reST field lists
  (``:param width: ...``), and table rows (``| `--keep` | keep input files |``);
- in prose: default values ("(default: 2)", "the default size is 1000 lines") and exit statuses
  ("the exit status is 0 if ..., 1 if ...").

The kind of an entry comes from its term's shape (``-x``: option, ``NAME(args)``: function,
``/etc/x``: path, ``LS_COLORS``: variable) and from its section (ENVIRONMENT, EXIT STATUS, ERRORS,
FILES, COMMANDS). A term is the whole head without its markup, never cut inside an identifier:
``term`` is the answer (an option's long name, a function's name), ``full_start:full_end`` the head
as written (``-k, --keep``, ``dedent(text)``).

Every regular expression runs on one line cut to :data:`_MAX_HEAD` characters, or is bounded and
free of nested unbounded repetition, and a body is read for at most :data:`_MAX_BODY_LINES` lines,
so a hostile document costs linear time. Pure Python; the runtime may import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Entry", "KINDS", "answer_span", "line_spans", "parse_entries"]

KINDS = ("option", "function", "variable", "constant", "status", "error", "path", "command", "setting",
         "parameter", "default", "row")

_MAX_HEAD = 90
_MAX_BODY_LINES = 40
_MAX_DESCRIPTION = 600
_GAP = re.compile(r"[ \t]{2,}|\t")
_OPTION = re.compile(r"(?:--?|\+)[A-Za-z0-9?#][\w.#?+-]{0,40}")
# An option's argument: ``=NUM``, ``[=WHEN]``, ``<file>``, ``identity_file``, or a word of the page's
# language (a translated page's ``--mode=模式``).
_ARG = re.compile(r"(?:\[?=|[ =])?(?:\[[^\]\s]{1,30}\]|<[^>\s]{1,30}>|\.?[^\W\d][\w.:/|{}-]{0,30})\]?")
_SIGNATURE = re.compile(
    r"(?:(?:Function|Macro|Method|def|class)\b:?[ \t]+)?(?:[\w*]{1,30}[ \t]+\**){0,4}?\**"
    r"([A-Za-z_][\w.]{0,60})[ \t]?\([^()\n]{0,200}(?:\([^()\n]{0,40}\)[^()\n]{0,100}){0,3}\)"
    r"(?:[ \t]*->[ \t]*\S{1,40})?:?")
_VARIABLE = re.compile(r"\$?[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|\$?[A-Z]{3,}[0-9]*")
_PATH = re.compile(r"(?:~|\$\w{1,20}|\.{1,2})?/[\w.@%+~:/*-]{1,100}|[a-z][\w.-]{1,40}/[\w.-]{2,40}(?:/[\w.@%+~*-]{1,40}){0,6}")
_STATUS = re.compile(r"\d{1,3}")
_ERRNO = re.compile(r"E[A-Z0-9]{2,15}")
_NOTE = re.compile(r"([^()]{1,60}?)[ \t]+\((?:since|[Ll]inux|glibc|deprecated|obsolete|not\b|only|until|removed|added|"
                   r"POSIX|BSD|XSI|GNU|optional|default|\d{1,4}\)|[A-Z][A-Z_]{1,30}\))[^()]{0,60}\)?")
_WORD_TERM = re.compile(r"[A-Za-z_][\w.:+-]{0,50}(?: [A-Za-z_][\w.:+-]{0,30}){0,3}")
_HEADING = re.compile(r"(?:[A-Z][A-Z0-9/-]*)(?: [A-Z][A-Z0-9/-]*){0,4}")
_MD_HEADING = re.compile(r"#{1,6}[ \t]+(\S.{0,80})")
_RST_UNDERLINE = re.compile(r"([=\-~^\"'`#*+])\1{2,}[ \t]*")
_BULLET = re.compile(r"(?:[-*+\u2022]|\d{1,3}[.)])[ \t]+")
_MD_HEAD = re.compile(r"((?:`[^`\n]{1,60}`|\*\*[^*\n]{1,60}\*\*)(?:[ \t]*,[ \t]*`[^`\n]{1,60}`){0,3})[ \t]*(?::|\u2014|\u2013|--?(?=[ \t]))[ \t]*")
_CODE = re.compile(r"`([^`\n]{1,60})`|\*\*([^*\n]{1,60})\*\*")
_ADOC = re.compile(r"(.{1,80}?)(?:::|;;)(?:[ \t]+|$)")
_FIELD = re.compile(r":(?:(param|parameter|arg|argument|key|keyword|var|ivar|cvar|envvar)[ \t]+(?:[\w.\[\], ]{1,40}[ \t]+)?)?([\w.*-]{1,40}):(?:[ \t]+|$)")
_TABLE_SEP = re.compile(r"\|?[ \t]*:?-{3,}")
_SECTION_KINDS = (("ENVIRONMENT", "variable"), ("EXIT", "status"), ("RETURN", "status"), ("DIAGNOSTICS", "status"),
                  ("ERRORS", "error"), ("FILES", "path"), ("COMMAND", "command"), ("ACTION", "command"))
_DEFAULT = re.compile(
    r"\(defaults?(?::|[ \t]+is|[ \t]+to|[ \t]*=)?[ \t]*([^()\s]{1,30}?)\)"
    r"|\bdefaults?[ \t]+(?:is|to)[ \t]+(?!not\b|the\b|a\b|an\b|to\b|that\b|this\b)([\w'\"./:+-]{1,30}?)(?=[\s,;)]|\.(?:\s|$)|$)",
    re.IGNORECASE)
_PROSE_DEFAULT = re.compile(
    r"\b(?:[Tt]he[ \t]+)?default[ \t]+([A-Za-z][\w-]{1,20}(?:[ \t]+[a-z][\w-]{1,20}){0,2})[ \t\n]+(?:is|are)[ \t\n]+(?!not\b|the\b|a\b|an\b|to\b)"
    r"([\w'\"./:+-]{1,30}?)(?=[\s,;)]|\.(?:\s|$)|$)")
# "The WHEN argument defaults to 'always'": the words before "defaults to" are its subject.
_PROSE_DEFAULTS_TO = re.compile(
    r"\b([A-Za-z][\w-]{1,20}(?:[ \t]+[a-z][\w-]{1,20})?)[ \t\n]+defaults[ \t\n]+to[ \t\n]+(?!the\b|a\b|an\b)"
    r"([\w'\"./:+-]{1,30}?)(?=[\s,;)]|\.(?:\s|$)|$)")
_STATUS_SENTENCE = re.compile(r"\b(?:exit|return)[ \t\n]+(?:status|code|value)\b[^.]{0,400}?(?:\.(?=\s|$)|\n[ \t]*\n)", re.IGNORECASE)
_STATUS_CLAUSE = re.compile(r"\b(\d{1,3})[ \t\n]+(?:if|when)[ \t\n]+([^.;,]{3,200}?)(?=,?[ \t\n]*(?:and[ \t\n]+|or[ \t\n]+)?\b\d{1,3}[ \t\n]+(?:if|when)\b|[.;]|$)")
# One-word headings of man pages, pydoc text and READMEs (an all-capitals word alone may be a variable).
_HEADINGS = frozenset(
    "NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES EXAMPLES EXAMPLE NOTES BUGS AUTHOR AUTHORS COPYRIGHT "
    "DIAGNOSTICS CAVEATS HISTORY STANDARDS USAGE COMMANDS ARGUMENTS OVERVIEW INSTALLATION LICENSE WARNINGS "
    "SECURITY ERRORS FUNCTIONS CLASSES METHODS DATA VERSION MODULE PACKAGE CONTENTS ATTRIBUTES CONFORMING "
    "EXIT STATUS RETURN VALUE VERSIONS ACTIONS EXPRESSIONS OPERATORS TESTS SIGNALS COMMAND".split())
_DOC_FIELDS = frozenset("return returns rtype raise raises except type yield yields note notes example examples see "
                        "seealso deprecated version versionadded versionchanged todo warning".split())
_VALUE_WORDS = frozenset("yes no none true false on off auto always never all null empty unlimited".split())
_NOT_TERMS = frozenset("note notes example examples see also warning usage synopsis description options bugs "
                       "author authors copyright history name and or the a an if when".split())


@dataclass(frozen=True)
class Entry:
    """One definition-list entry.

    Attributes:
        kind: One of :data:`KINDS`.
        term: The answer: ``text[start:end]`` (an option's long name, a function's name, a value).
        start: First character of ``term`` in the text.
        end: One past its last character.
        full_start: Start of the whole head as written (``-k, --keep``; ``dedent(text)``).
        full_end: One past its end.
        description: What the entry says of the term, white space folded.
        desc_start: First character of the description in the text.
        desc_end: One past its last character (the entry's extent ends here).
        subject: For a ``default``, what the value is the default of (an option or a noun).
        section: The heading of the section that holds the entry.
    """

    kind: str
    term: str
    start: int
    end: int
    full_start: int
    full_end: int
    description: str
    desc_start: int
    desc_end: int
    subject: str = ""
    section: str = ""


def parse_entries(text: str) -> list[Entry]:
    """The definition-list entries of ``text``, in order of their terms (see the module docstring)."""
    lines = line_spans(text)
    found: list[Entry] = []
    section = ""
    table_header: list[str] = []
    for i, (start, end, indent) in enumerate(lines):
        if indent < 0:
            continue
        line = text[start:end]
        content = line[: _MAX_HEAD * 8].strip()
        at = start + len(line) - len(line.lstrip())
        entry = _marked(text, lines, i, at, content, section, table_header)
        if entry is None:
            heading = _heading(content, indent, lines, text, i)
            if heading:
                section = heading
                continue
            entry = _indented(text, lines, i, at, indent, content[:_MAX_HEAD + 1], section)
        if entry is not None:
            found.append(entry)
    found.extend(_defaults(text, found))
    found.extend(_prose_statuses(text))
    found.sort(key=lambda e: (e.start, e.kind))
    return found


def answer_span(entry: Entry) -> tuple[int, int]:
    """Where the answer an entry gives lies: a function's name or a default value alone, else the
    whole head as written (``-T, --print-type``)."""
    return (entry.start, entry.end) if entry.kind in ("function", "default") else (entry.full_start, entry.full_end)


def line_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, indent) of each line of ``text``; indent -1 for a blank one (tabs count to 8)."""
    out = []
    pos = 0
    for line in text.split("\n"):
        body = line.lstrip(" \t")
        indent = len(line[: len(line) - len(body)].expandtabs(8)) if body.strip() else -1
        out.append((pos, pos + len(line), indent))
        pos += len(line) + 1
    return out


def _heading(content: str, indent: int, lines: list, text: str, i: int) -> str:
    if indent <= 3 and len(content) <= 60 and _HEADING.fullmatch(content) and (" " in content or content in _HEADINGS):
        return content
    if indent <= 4 and len(content) <= 50 and content.endswith(":") and content[0].isupper() and "::" not in content:
        return content.upper()  # a man page's subsection ("   Exit status:")
    md = _MD_HEADING.fullmatch(content)
    if md:
        return md.group(1).strip(" #").upper()
    if i + 1 < len(lines) and lines[i + 1][2] >= 0:
        under = text[lines[i + 1][0]:lines[i + 1][1]][:200].strip()
        if _RST_UNDERLINE.fullmatch(under) and len(under) >= len(content) > 0:
            return content.upper()
    return ""


def _marked(text: str, lines: list, i: int, at: int, content: str, section: str, header: list[str]) -> Entry | None:
    """An entry whose head is marked up: a Markdown bullet or table row, a reST field, asciidoc ``::``."""
    head = content[: _MAX_HEAD * 2]
    if head.startswith("|"):
        return _table_row(text, lines, i, at, content, section, header)
    bullet = _BULLET.match(head)
    if bullet:
        md = _MD_HEAD.match(head, bullet.end())
        if not md:
            return None
        spans = [(c.start(c.lastindex or 1), c.end(c.lastindex or 1)) for c in _CODE.finditer(head, md.start(1), md.end(1))]
        lo, hi = max(spans, key=lambda s: s[1] - s[0])
        return _make(text, at + lo, at + hi, at + md.end(), lines[i][1], section)
    field = _FIELD.match(head)
    if field:
        if not field.group(1) and field.group(2).lower() in _DOC_FIELDS:
            return None  # ":returns: ..." describes no term
        kind = "parameter" if field.group(1) else ""
        return _make(text, at + field.start(2), at + field.end(2), at + field.end(), _body_end(lines, i, -1, True), section, kind)
    adoc = _ADOC.match(head)
    if adoc and not head.startswith(("..", ":")) and (adoc.end() < len(head) or _next_text(lines, i)):
        raw = adoc.group(1)
        inner = raw.strip("`*_+'\" ")
        if not inner or " " in inner.strip() and len(inner.split()) > 4:
            return None
        lo = raw.index(inner)
        same_line = adoc.end() < len(head)
        desc_at = at + adoc.end() if same_line else lines[i + 1][0]
        return _make(text, at + lo, at + lo + len(inner), desc_at, _body_end(lines, i, -1, True, not same_line), section)
    return None


def _next_text(lines: list, i: int) -> bool:
    return i + 1 < len(lines) and lines[i + 1][2] >= 0


def _table_row(text: str, lines: list, i: int, at: int, content: str, section: str, header: list[str]) -> Entry | None:
    cells = content.strip("|").split("|")
    if len(cells) < 2 or len(content) > 2000:
        return None
    if _TABLE_SEP.match(content):
        return None
    if i + 1 < len(lines) and _TABLE_SEP.match(text[lines[i + 1][0]:lines[i + 1][1]][:200].strip()):
        header[:] = [c.strip().lower() for c in cells]  # a header row: its first cell names the column
        return None
    first = cells[0]
    lo = content.index(first)
    inner = first.strip()
    code = _CODE.search(inner)
    if code:
        inner = code.group(code.lastindex or 1)
    inner = inner.strip("`* ")
    if not inner or len(inner) > 60:
        return None
    lo = content.index(inner, lo)
    desc_lo = content.index(cells[1], lo + len(inner))
    entry = _make(text, at + lo, at + lo + len(inner), at + desc_lo, lines[i][1], section, "", strict=False)
    if entry is not None and entry.kind == "row" and header:
        entry = _replace(entry, subject=header[0])
    return entry


def _indented(text: str, lines: list, i: int, at: int, indent: int, content: str, section: str) -> Entry | None:
    """A head alone with its body indented under it, or a head, a gap of spaces, and its body."""
    gap = _GAP.search(content, 0, _MAX_HEAD)
    head = content[: gap.start()] if gap else content
    if len(head) > _MAX_HEAD or not head:
        return None
    follows = i + 1 < len(lines) and lines[i + 1][2] > indent
    if gap:
        desc_at = at + gap.end()
    elif follows:
        desc_at = lines[i + 1][0] + (lines[i + 1][1] - lines[i + 1][0]) - len(text[lines[i + 1][0]:lines[i + 1][1]].lstrip())
    else:
        return None
    entry = _make(text, at, at + len(head), desc_at, _body_end(lines, i, indent, False), section, "", strict=True,
                  alone=not gap)
    if entry is not None and gap and entry.kind in ("setting", "row", "function"):
        return None  # a bare word or a signature followed by spaces: too often a line of prose or code
    return entry


def _body_end(lines: list, i: int, indent: int, loose: bool, below: bool = False) -> int:
    """End of the body begun on line ``i``: the lines indented deeper than ``indent`` (across blank
    lines inside it); for a marked head (``loose``), the lines up to a blank one or to one indented
    no deeper than the head (the first one may be, when the body starts ``below`` the head)."""
    end = lines[i][1]
    for j in range(i + 1, min(len(lines), i + 1 + _MAX_BODY_LINES)):
        s, e, ind = lines[j]
        if loose:
            if ind < 0 or (ind <= lines[i][2] and not (below and end == lines[i][1])):
                break
            end = e
            continue
        if ind < 0:
            nxt = next((ln for ln in lines[j + 1: j + 3] if ln[2] >= 0), None)
            if nxt is None or nxt[2] <= indent:
                break
        elif ind <= indent:
            break
        else:
            end = e
    return end


def _make(text: str, lo: int, hi: int, desc_at: int, desc_end: int, section: str, kind: str = "",
          strict: bool = False, alone: bool = False) -> Entry | None:
    """An entry of the head ``text[lo:hi]``, its kind and answer span, or ``None`` if it is no term."""
    head = text[lo:hi]
    if not head or head[0] in "#>" or head.lower().strip(":") in _NOT_TERMS:
        return None
    shaped = _shape(head, section)
    if shaped is None:
        return None
    shape_kind, a, b = shaped
    note = _NOTE.fullmatch(head)
    if note:
        hi = lo + note.end(1)  # the head as written, less its note
    kind = kind or shape_kind
    if strict and kind in ("setting", "row") and (alone is False or not _is_word_term(head)):
        return None
    if strict and kind in ("setting", "row") and " " in text[lo + a: lo + b]:
        return None  # several words over an indented block: a heading or a line of prose
    if strict and alone and kind in ("setting", "row") and not any(c.isupper() or c in "_-." for c in head):
        if not section.startswith(("COMMAND", "ACTION")):
            return None  # a lowercase word over an indented block is mostly prose over an example
    description = " ".join(text[desc_at:min(desc_end, desc_at + _MAX_DESCRIPTION * 2)].replace("|", " ").split())[:_MAX_DESCRIPTION]
    if len(description) < 3 or not any(c.isalpha() for c in description):
        return None
    if kind == "constant" and re.search(r"\b(?:environment|variable)\b", description[:200], re.IGNORECASE):
        kind = "variable"
    return Entry(kind, text[lo + a: lo + b], lo + a, lo + b, lo, hi, description, desc_at, max(desc_end, desc_at), "", section)


def _shape(head: str, section: str) -> tuple[str, int, int] | None:
    """(kind, answer start, answer end) within ``head``, or ``None`` when it is not a term."""
    note = _NOTE.fullmatch(head)
    if note:  # "PTRACE_O_EXITKILL (since Linux 3.8)": the term is before the note
        shaped = _shape(note.group(1), section)
        return shaped if shaped is None or shaped[0] != "function" else None
    if head.startswith(("-", "+")) and len(head) > 1 and head[1] not in " -" or head.startswith("--") and len(head) > 2:
        option = _option_name(head)
        if option is None:
            return None
        return "option", option[0], option[1]
    if "(" in head:
        sig = _SIGNATURE.fullmatch(head)
        return ("function", sig.start(1), sig.end(1)) if sig else None
    by_section = next((k for word, k in _SECTION_KINDS if word in section), "")
    if _STATUS.fullmatch(head):
        return ("status", 0, len(head)) if by_section == "status" else None
    if _PATH.fullmatch(head) and "/" in head:
        return "path", 0, len(head)
    if _ERRNO.fullmatch(head) and by_section in ("error", "status", ""):
        return "error", 0, len(head)
    if _VARIABLE.fullmatch(head):
        return (by_section if by_section in ("error", "variable", "command") else "constant"), 0, len(head)
    if _WORD_TERM.fullmatch(head) and head[-1] not in ".:," and not head[0].isdigit():
        if by_section == "command":  # "add filename": the command, not its argument
            return "command", 0, len(head.split()[0])
        return "setting", 0, len(head)
    return None


def _is_word_term(head: str) -> bool:
    return len(head.split()) <= 3


def _option_name(head: str) -> tuple[int, int] | None:
    """The principal option of a head of options and their arguments (``-k, --keep`` -> ``--keep``,
    ``-c, --bytes=[-]NUM`` -> ``--bytes``), or ``None`` when the head holds anything else."""
    pos, best, count = 0, None, 0
    while pos < len(head):
        m = _OPTION.match(head, pos)
        if m:
            name = (m.start(), m.end())
            if best is None or (name[1] - name[0] > best[1] - best[0] and head.startswith("--", m.start())):
                best = name
            pos = m.end()
        else:
            m = _ARG.match(head, pos)
            if m is None or m.end() == pos or best is None:
                return None
            pos = m.end()
        count += 1
        sep = re.compile(r"[ \t]*[,|][ \t]*|[ \t]+").match(head, pos)
        if sep:
            pos = sep.end()
        if count > 8:
            return None
    if best is None or head[best[1] - 1] in "-.":
        return None
    return best


def _defaults(text: str, listed: list[Entry]) -> list[Entry]:
    """Default values: those an entry's description states (its term is their subject), and
    "the default NOUN is VALUE" in prose."""
    found = []
    for e in listed:
        if e.kind == "default":
            continue
        for m in _DEFAULT.finditer(text, e.desc_start, e.desc_end):
            g = 1 if m.group(1) else 2
            value = m.group(g).rstrip(".")
            if _is_value(value):
                lo = m.start(g)
                found.append(Entry("default", value, lo, lo + len(value), lo, lo + len(value), e.description,
                                   e.desc_start, e.desc_end, e.term, e.section))
    covered = [(e.desc_start, e.desc_end) for e in listed]
    for m in (*_PROSE_DEFAULT.finditer(text), *_PROSE_DEFAULTS_TO.finditer(text)):
        if any(s <= m.start() < t for s, t in covered):
            continue
        value = m.group(2).rstrip(".")
        if not _is_value(value):
            continue
        lo = m.start(2)
        sentence = " ".join(text[max(0, m.start() - 0):m.end()].split())
        found.append(Entry("default", value, lo, lo + len(value), lo, lo + len(value), sentence, m.start(), m.end(),
                           m.group(1)))
    return found


def _is_value(value: str) -> bool:
    """Whether a word after "default" is a value ("2", "'x'", "~/.ssh", "TAB", "none"), not a verb
    or a noun of a sentence ("defaults to adding ...")."""
    bare = value.strip("'\"`")
    if not bare:
        return False
    return (any(c.isdigit() for c in bare) or bare != value or not bare.isalpha() or bare.isupper()
            or bare.lower() in _VALUE_WORDS)


def _prose_statuses(text: str) -> list[Entry]:
    found = []
    for sentence in _STATUS_SENTENCE.finditer(text):
        for m in _STATUS_CLAUSE.finditer(text, sentence.start(), sentence.end()):
            description = " ".join(m.group(2).split())
            found.append(Entry("status", m.group(1), m.start(1), m.end(1), m.start(1), m.end(1), description,
                               m.start(2), m.end(2)))
    return found


def _replace(entry: Entry, **changes: str) -> Entry:
    from dataclasses import replace

    return replace(entry, **changes)
