"""Finding documents in a folder and reading them as text, chosen by file type.

Readers: plain text (``.txt``, ``.text``, no suffix), Markdown, reStructuredText (both kept as
written; the title comes from the first heading), HTML (visible text only, title from
``<title>``) and PDF (the text layer of every page, via pypdf).

Each reader also gives what the file declares of itself (:mod:`~bertsearch.indexer.metadata`):
Markdown's YAML front matter (read with ``yaml.safe_load``, at most 64 KiB, and left out of the
text; a front matter that is not YAML is logged and kept as text: the document still reads),
HTML's ``<meta name content>`` and ``<html lang>``, a PDF's title and author.

Text encodings: a byte-order mark wins (UTF-8, UTF-16, UTF-32); otherwise UTF-8, then
Windows-1252, then Latin-1. Strict UTF-8 rarely accepts text that is not UTF-8, Windows-1252 is
what most legacy Western text files are, and Latin-1 accepts any byte, so a text file is never
refused for its encoding. No statistical charset detection: its guesses on short files vary
between versions, and a document must read the same everywhere. Newlines become ``\\n``.

A file that cannot be read (binary, corrupt or encrypted PDF, permission denied) raises
:class:`~bertsearch.indexer.common.errors.UnsupportedDocument` naming the file and the reason.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bertsearch.indexer.common.errors import ConfigError, InvalidGlob, UnsupportedDocument
from bertsearch.indexer.metadata import declared

log = logging.getLogger(__name__)

__all__ = ["SUPPORTED_SUFFIXES", "LoadedDocument", "discover", "read_bytes", "read_document"]


@dataclass(frozen=True)
class LoadedDocument:
    """The text of a document and its title (the file name when it has none); ``kind``, the reader
    (``text``, ``markdown``, ``rst``, ``html``, ``pdf``), and ``metadata``, what the file declares."""

    text: str
    title: str
    kind: str = "text"
    metadata: dict[str, Any] = field(default_factory=dict)


def discover(
    root: Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skip: Sequence[Path] = (),
    follow_symlinks: bool = False,
) -> list[Path]:
    """Find the documents under a folder, recursively, in sorted order.

    Hidden files and folders (a name starting with ``.``) and anything under a path in
    ``skip`` (the index folder) are left out. Glob patterns are matched against the path
    relative to ``root`` with ``/`` separators: ``*`` and ``?`` stay inside one folder name,
    ``**`` spans folders (``docs/**/*.md``). A pattern without ``/`` matches the file name or
    any folder name on the way (``*.md``, ``drafts``); a pattern matching a folder matches
    everything under it.

    Only files with a suffix in :data:`SUPPORTED_SUFFIXES` are found, and those an include
    pattern names by suffix (``--include '*.log'`` reads log files as plain text).

    Args:
        root: The folder to search.
        include: If given, a file must match at least one of these patterns.
        exclude: A file matching any of these patterns is left out.
        skip: Paths (files or folders) to leave out, e.g. the index folder; a file is also left
            out when it is one of them through a symbolic link or another spelling of its path.
        follow_symlinks: Descend into symbolic links to folders (each real folder once, so a
            link loop ends); without it they are left out. Links to files are always listed:
            the caller decides whether to follow them.

    Returns:
        The files, as ``root / relative path``, sorted.

    Raises:
        ConfigError: ``root`` is not an existing folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"not a folder: {root}")
    includes = [compile_glob(p) for p in include]
    excludes = [compile_glob(p) for p in exclude]
    suffixes = document_suffixes(include)
    skipped = {Path(os.path.abspath(p)) for p in skip}
    skipped_real = {os.path.realpath(p) for p in skip}
    skipped_names = {Path(p).name for p in skip}
    root_abs = Path(os.path.abspath(root))

    found: list[Path] = []
    visited = {os.path.realpath(root)}
    for folder, dirnames, filenames in os.walk(root, followlinks=follow_symlinks):
        rel_folder = PurePosixPath(Path(folder).relative_to(root).as_posix())
        dirnames[:] = [
            d for d in dirnames
            if not d.startswith(".")
            and root_abs / rel_folder / d not in skipped
            and not matches_any(excludes, rel_folder / d)
            and _first_visit(Path(folder) / d, visited)
        ]
        for name in filenames:
            rel = rel_folder / name
            if name.startswith(".") or root_abs / rel in skipped:
                continue
            if ((name in skipped_names or os.path.islink(Path(folder) / name))
                    and os.path.realpath(Path(folder) / name) in skipped_real):
                continue
            suffix = PurePosixPath(name).suffix.lower()
            if suffix not in suffixes:
                continue
            if includes and not matches_any(includes, rel):
                continue
            if matches_any(excludes, rel):
                continue
            found.append(root / rel)
    return sorted(found)


def _first_visit(folder: Path, visited: set[str]) -> bool:
    real = os.path.realpath(folder)
    if real in visited:
        return False
    visited.add(real)
    return True


def read_document(path: Path) -> LoadedDocument:
    """Read a file as text, with a reader chosen by its suffix (plain text for unknown ones).

    Args:
        path: The file.

    Returns:
        Its text (newlines normalised to ``\\n``) and title.

    Raises:
        UnsupportedDocument: The file cannot be read: binary, corrupt or encrypted PDF,
            permission denied, vanished.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except PermissionError:
        raise UnsupportedDocument(f"{path}: permission denied") from None
    except FileNotFoundError:
        raise UnsupportedDocument(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UnsupportedDocument(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise UnsupportedDocument(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return read_bytes(path, data)


def read_bytes(name: str | Path, data: bytes) -> LoadedDocument:
    """Read the bytes of a file named ``name`` (an upload) with the reader :func:`read_document`
    would choose for that name.

    Raises:
        UnsupportedDocument: The bytes cannot be read as that kind of file (corrupt or encrypted PDF).
    """
    path = Path(name)
    reader = _READERS.get(path.suffix.lower(), _read_plain)
    return reader(path, data)


def _read_plain(path: Path, data: bytes) -> LoadedDocument:
    return LoadedDocument(text=_decode(path, data), title=path.name)


def _read_markdown(path: Path, data: bytes) -> LoadedDocument:
    text, front = _front_matter(path, _decode(path, data))
    title = front.get("title") if isinstance(front.get("title"), str) else ""
    return LoadedDocument(text=text, title=title.strip() or _markdown_title(text) or path.name, kind="markdown",
                          metadata=front)


_FRONT_MATTER_MAX = 65_536  # characters of YAML front matter read; a longer one is left as text
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)


def _front_matter(path: Path, text: str) -> tuple[str, dict[str, Any]]:
    """The text without its YAML front matter (``---`` lines around it, at the very start), and the
    fields it declares; a block that is not a YAML mapping is left in the text."""
    import yaml

    if not text.startswith("---\n"):
        return text, {}
    end = _FRONT_MATTER_END.search(text, 4, _FRONT_MATTER_MAX + 4)
    if end is None:
        return text, {}
    try:
        fields = yaml.safe_load(text[4:end.start()])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        log.warning("%s: the front matter is not valid YAML%s; it is read as text, with no metadata of its own",
                    path, where)
        return text, {}
    if not isinstance(fields, dict):  # a --- rule and a heading, not front matter
        return text, {}
    return text[end.end():].lstrip("\n"), declared(fields)


def _read_rst(path: Path, data: bytes) -> LoadedDocument:
    text = _decode(path, data)
    return LoadedDocument(text=text, title=_rst_title(text) or path.name, kind="rst")


# Elements whose end also ends a line of text; inline ones (<b>, <a>, <span>) do not.
_HTML_BLOCKS = (
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
)
_BLOCK_END = "\ue000"  # a private-use character, marks where a block ends
_INDENT = "\ue001"  # marks the start of a block inside a definition (<dd>), around its depth
_DEPTH_MARK = re.compile("\ue001([0-9]+)\ue001")
_MAX_INDENT_LEVELS = 8  # deeper definitions are indented as the eighth level
_HTML_INVISIBLE = ("script", "style", "noscript", "template", "head", "iframe", "object", "svg")


def _read_html(path: Path, data: bytes) -> LoadedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(path, data), "html.parser")
    found = _html_metadata(soup)
    title_tag = soup.find("title")
    title = _squash(title_tag.get_text()) if title_tag else ""
    if not title:
        heading = soup.find("h1")
        title = _squash(heading.get_text()) if heading else ""
    for tag in soup.find_all(_HTML_INVISIBLE):
        tag.decompose()
    # Each block inside a <dd> starts with a mark of how many <dd> hold it: one pass in document
    # order, where a parent comes before its children (deep nesting costs linear time).
    depth: dict[int, int] = {}
    for tag in soup.find_all(True):
        inside = depth.get(id(tag.parent), 0) + (tag.name == "dd")
        depth[id(tag)] = inside
        if inside and tag.name in _HTML_BLOCKS:
            tag.insert(0, f"{_INDENT}{inside}{_INDENT}")
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.append(_BLOCK_END)
    # One line per block, the source's line breaks and indentation squashed as a browser does;
    # a definition's lines indented under its term, as a man page has them.
    lines = (_indented(_squash(line)) for line in soup.get_text().split(_BLOCK_END))
    text = "\n".join(line for line in lines if line.strip())
    return LoadedDocument(text=text, title=title or path.name, kind="html", metadata=found)


def _html_metadata(soup: Any) -> dict[str, Any]:
    """``<meta name=... content=...>`` by name (lower case), and ``<html lang>`` as ``language``."""
    raw: dict[str, Any] = {}
    for tag in soup.find_all("meta"):
        name, content = tag.get("name"), tag.get("content")
        if isinstance(name, str) and isinstance(content, str) and name.strip():
            raw.setdefault(name.strip().lower(), _squash(content))
    html = soup.find("html")
    lang = html.get("lang") if html is not None else None
    if isinstance(lang, str) and lang.strip():
        raw["language"] = lang.strip().split("-")[0].lower()
    return declared(raw)


def _indented(line: str) -> str:
    """A line with its :data:`_INDENT` marks (the number of ``<dd>`` around a block) as four
    spaces a level."""
    depths = _DEPTH_MARK.findall(line)
    if not depths:
        return line
    level = min(max(int(d) for d in depths), _MAX_INDENT_LEVELS)
    return "    " * level + _squash(_DEPTH_MARK.sub(" ", line))


def _read_pdf(path: Path, data: bytes) -> LoadedDocument:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedDocument(f"{path}: encrypted PDF (needs a password)")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        meta_title = info.title if info else None
        author = info.author if info else None
    except UnsupportedDocument:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files; all mean "unreadable"
        raise UnsupportedDocument(f"{path}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    text = _normalise_newlines("\n\n".join(p.strip("\n") for p in pages)).strip("\n")
    title = meta_title.strip() if isinstance(meta_title, str) else ""
    found = declared({"title": title, "author": author if isinstance(author, str) else None})
    return LoadedDocument(text=text, title=title or path.name, kind="pdf", metadata=found)


_READERS: dict[str, Callable[[Path, bytes], LoadedDocument]] = {
    "": _read_plain,
    ".txt": _read_plain,
    ".text": _read_plain,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".rst": _read_rst,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
}

#: File suffixes :func:`discover` finds and :func:`read_document` has a reader for
#: (``""``: files without a suffix, read as plain text).
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_READERS)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(path: Path, data: bytes) -> str:
    """Bytes to text: BOM, else UTF-8, else Windows-1252, else Latin-1; NUL bytes mean binary."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _normalise_newlines(data.decode(encoding))
            except UnicodeDecodeError:
                raise UnsupportedDocument(f"{path}: invalid {encoding.upper()} text") from None
    if b"\x00" in data:
        raise UnsupportedDocument(f"{path}: binary file (contains NUL bytes)")
    for encoding in ("utf-8", "cp1252"):
        try:
            return _normalise_newlines(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    return _normalise_newlines(data.decode("latin-1"))


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _squash(text: str) -> str:
    """Runs of whitespace become one space; the ends are stripped."""
    return " ".join(text.split())


_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _markdown_title(text: str) -> str:
    """The first heading: ``# Title`` or a line underlined with ``===``/``---``."""
    lines = text.split("\n")
    in_fence = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = _ATX_HEADING.match(line)
        if match:
            return match.group(1).strip()
        if line.strip() and i + 1 < len(lines) and _SETEXT_UNDERLINE.match(lines[i + 1]):
            return line.strip()
    return ""


_RST_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+\s*$")


def _rst_title(text: str) -> str:
    """The first section title: a line underlined (and maybe overlined) with punctuation."""
    lines = text.split("\n")
    for i in range(len(lines) - 1):
        line, under = lines[i].strip(), lines[i + 1].rstrip()
        if line and not _RST_ADORNMENT.match(line) and _RST_ADORNMENT.match(under) and len(under) >= len(line):
            return line
    return ""


def document_suffixes(include: Sequence[str] = ()) -> set[str]:
    """The suffixes of the files :func:`discover` lists: :data:`SUPPORTED_SUFFIXES` and those the
    include patterns name."""
    return set(SUPPORTED_SUFFIXES) | ({_glob_suffix(p) for p in include} - {""})


def _glob_suffix(pattern: str) -> str:
    """The suffix an include pattern names literally (``*.log`` -> ``.log``), else ``""``."""
    match = re.search(r"(\.[A-Za-z0-9_~-]+)$", pattern)
    return match.group(1).lower() if match else ""


def _normalise_glob(pattern: str) -> tuple[str, bool]:
    """The pattern with ``/`` separators and no leading ``./`` or outer slashes, and whether it is
    name-only (no ``/`` inside: it matches a file or folder name at any depth)."""
    pattern = pattern.replace("\\", "/").strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.strip("/"), "/" not in pattern.rstrip("/")


def compile_glob(pattern: str) -> tuple[Any, bool]:
    """A glob as an RE2 regex over ``/``-separated relative paths, and whether it is name-only.

    RE2 matches in time linear in the path, whatever the pattern: no backtracking engine is
    involved (``*?*?*?*?*?*?*?*?*?*?#`` pinned a core for over a minute as a backtracking regex).
    ``**/`` is zero or more whole folders, ``**`` any characters, ``*`` any inside one name, ``?``
    one character of a name, ``[...]``/``[!...]`` a class.

    Raises:
        InvalidGlob: The pattern is not a valid glob (a bad character range such as ``[z-a]``).
    """
    import re2

    pattern, name_only = _normalise_glob(pattern)
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            close = pattern.index("]", i + 2)
            body = pattern[i + 1 : close]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    try:
        return re2.compile("(?s)\\A" + "".join(out) + "\\z", _re2_options()), name_only
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidGlob(f"invalid glob {pattern!r}: {reason}") from None


def _re2_options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # the error is raised to the caller; RE2 would also print it
    return options


def glob_prefix(pattern: str) -> str:
    """The literal start every path matching ``pattern`` has (``docs/api/*.md`` -> ``docs/api/``),
    ``""`` for a name-only pattern, which matches at any depth. A pre-filter for SQL ``LIKE``."""
    pattern, name_only = _normalise_glob(pattern)
    return "" if name_only else re.split(r"[*?\[]", pattern, maxsplit=1)[0]


def matches_any(globs: Iterable[tuple[Any, bool]], rel: PurePosixPath) -> bool:
    """Whether a relative path, or a folder on its way, matches one of the globs."""
    parts = rel.parts
    for regex, name_only in globs:
        if name_only:
            if any(regex.match(part) for part in parts):
                return True
        elif any(regex.match("/".join(parts[: n + 1])) for n in range(len(parts))):
            return True
    return False
