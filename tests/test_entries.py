"""search/entries.py: definition-list entries of every format, whole terms without markup, linear time."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertsearch.indexer.documents import read_document
from _hang import without_hanging
from bertsearch.search.entries import parse_entries

TUNE = Path(__file__).parent / "fixtures" / "techdocs_tune"
_MARKUP = ("::", "##", "`", "**", "- ", "* ", "|")


def _terms(text: str) -> dict[str, tuple[str, str, str]]:
    """term -> (kind, head as written, description) of each entry."""
    out = {}
    for e in parse_entries(text):
        assert text[e.start:e.end] == e.term
        assert e.full_start <= e.start < e.end <= e.full_end
        out.setdefault(e.term, (e.kind, text[e.full_start:e.full_end], e.description))
    return out


def _assert_clean(text: str) -> None:
    """Every term is whole (no identifier character on either side) and carries no markup."""
    for e in parse_entries(text):
        assert not any(m in e.term for m in _MARKUP), e
        assert e.term == e.term.strip()
        before = text[e.start - 1] if e.start else " "
        after = text[e.end] if e.end < len(text) else " "
        if e.kind != "default":
            assert not (before.isalnum() or before == "_"), (e.term, text[e.start - 10:e.end + 10])
            assert not (after.isalnum() or after == "_"), (e.term, text[e.start - 10:e.end + 10])


def test_man_page_options_defaults_and_statuses() -> None:
    text = read_document(TUNE / "man" / "split.txt").text
    terms = _terms(text)
    assert terms["--suffix-length"][:2] == ("option", "-a, --suffix-length=N")
    assert terms["-d"][2].startswith("use numeric suffixes")
    assert terms["--numeric-suffixes"][1] == "--numeric-suffixes[=FROM]"
    assert terms["2"][0] == "default"
    defaults = {e.term: e.subject for e in parse_entries(text) if e.kind == "default"}
    assert defaults["2"] == "--suffix-length" and defaults["1000"] == "size"
    _assert_clean(text)
    ls = read_document(TUNE / "man" / "ls.txt").text
    statuses = {e.term: e.description for e in parse_entries(ls) if e.kind == "status"}
    assert statuses["2"].startswith("if serious trouble")
    _assert_clean(ls)


def test_every_tuning_document_parses_to_whole_terms() -> None:
    for path in sorted(TUNE.rglob("*.txt")):
        text = read_document(path).text
        assert parse_entries(text), path
        _assert_clean(text)


def test_pydoc_signatures() -> None:
    text = read_document(TUNE / "python" / "textwrap.txt").text
    terms = _terms(text)
    assert terms["dedent"][:2] == ("function", "dedent(text)")
    assert terms["fill"][1] == "fill(text, width=70, **kwargs)"
    assert "FUNCTIONS" not in terms  # a heading, not a variable


@pytest.mark.parametrize("text, term, kind, full", [
    ("OPTIONS\n-------\n`--keep`::\n  Keep the input files.\n", "--keep", "option", "--keep"),
    ("*-v*:: Print more output.\n", "-v", "option", "-v"),
    ("LogLevel::\nSets the level of logging.\n", "LogLevel", "setting", "LogLevel"),
    ("## Options\n\n- `--keep`: keep the input files\n", "--keep", "option", "--keep"),
    ("- `-f`, `--force`: overwrite existing files\n", "--force", "option", "--force"),
    ("* **--quiet** - print nothing\n", "--quiet", "option", "--quiet"),
    ("| Option | Meaning |\n|---|---|\n| `--width` | wrap lines at this width |\n", "--width", "option", "--width"),
    (":param width: the largest line length\n", "width", "parameter", "width"),
    ("-a, --all     show all entries\n--color=WHEN  colour the output\n", "--all", "option", "-a, --all"),
    ("    dedent(text)\n        Remove any common leading whitespace.\n", "dedent", "function", "dedent(text)"),
    ("ENVIRONMENT\n       LC_ALL This variable overrides the locale\n".replace("LC_ALL ", "LC_ALL\n              "), "LC_ALL", "variable", "LC_ALL"),
    ("ERRORS\n       EACCES Search permission is denied.\n".replace("EACCES ", "EACCES  "), "EACCES", "error", "EACCES"),
    ("FILES\n       ~/.ssh/config\n              This is the per-user configuration file.\n",
     "~/.ssh/config", "path", "~/.ssh/config"),
    ("EXIT STATUS\n       125    if the command itself fails\n", "125", "status", "125"),
    ("       PTRACE_O_EXITKILL (since Linux 3.8)\n              Send a SIGKILL signal to the tracee.\n",
     "PTRACE_O_EXITKILL", "constant", "PTRACE_O_EXITKILL"),
    ("The exit status is 0 if a line is selected, 1 if no lines were selected.\n", "1", "status", "1"),
    ("       -s     print sizes (default: 1024)\n", "1024", "default", "1024"),
])
def test_formats(text: str, term: str, kind: str, full: str) -> None:
    found = [e for e in parse_entries(text) if e.term == term]
    assert found, [e.term for e in parse_entries(text)]
    e = found[0]
    assert (e.kind, text[e.full_start:e.full_end]) == (kind, full)
    assert text[e.start:e.end] == term
    _assert_clean(text)


def test_html_definition_list(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body><dl><dt>LS_COLORS</dt><dd>Colours for each file type; an environment variable.</dd>"
                    "<dt>--keep</dt><dd>Keep input files.</dd></dl></body></html>")
    terms = _terms(read_document(page).text)
    assert terms["LS_COLORS"][0] == "variable"
    assert terms["--keep"] == ("option", "--keep", "Keep input files.")


def test_prose_is_no_entry() -> None:
    text = ("       Output pieces of FILE to PREFIXaa, PREFIXab, ...; default size is 1000\n"
            "       lines.  Units are K,M,G.\n   CHUNKS may be:\n       see below\n")
    assert {e.kind for e in parse_entries(text)} <= {"default"}


@pytest.mark.parametrize("hostile", [
    "-" * 200_000,
    " " * 200_000,
    "-" * 100_000 + "\n" + " " * 100_000 + "x\n",
    ("   -a" + " " * 3) * 30_000,
    "\n".join(" " * i + "-x" for i in range(2_000)),
    "default " * 30_000,
    "(default " + "y" * 100_000,
    "exit status " + "0 if a, " * 20_000,
    "- `" + "-a`, `" * 20_000 + "\n",
    "| `--a` " * 20_000 + "\n",
    "  f(" + "(a)" * 20_000 + ")\n     d\n",
    ":" * 200_000,
    "x::\n" * 50_000,
])
def test_hostile_input_parses_in_bounded_time(hostile: str) -> None:
    without_hanging(parse_entries, hostile)  # linear patterns take well under a second
