"""Finding documents and reading every supported format, encodings and unreadable files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bertsearch.indexer.documents import SUPPORTED_SUFFIXES, LoadedDocument, discover, read_document
from bertsearch.indexer.common.errors import ConfigError, UnsupportedDocument

from _hang import exit_code_in_child, without_hanging


def _write(root: Path, rel: str, content: str | bytes = "text") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _rels(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def _pdf_with_text(lines: list[str], title: str | None = None) -> bytes:
    """A minimal valid one-page PDF whose content stream draws ``lines`` in Helvetica."""
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops += [f"({line}) Tj", "T*"]
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    info = b" /Info 6 0 R" if title is not None else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref)
    return bytes(out)


# --- discover -----------------------------------------------------------------------------

def test_discover_finds_supported_files_recursively_sorted(tmp_path: Path) -> None:
    for rel in ["b.md", "a.txt", "sub/c.html", "sub/deeper/d.pdf", "e.rst", "README", "img.png", "data.csv"]:
        _write(tmp_path, rel)
    found = discover(tmp_path)
    assert _rels(tmp_path, found) == ["README", "a.txt", "b.md", "e.rst", "sub/c.html", "sub/deeper/d.pdf"]
    assert found == sorted(found)
    assert all(p.is_file() for p in found)


def test_discover_skips_hidden_files_and_folders(tmp_path: Path) -> None:
    for rel in ["visible.md", ".hidden.md", ".git/config.txt", "sub/.secret/notes.txt", "sub/ok.txt"]:
        _write(tmp_path, rel)
    assert _rels(tmp_path, discover(tmp_path)) == ["sub/ok.txt", "visible.md"]


def test_discover_skips_the_index_folder(tmp_path: Path) -> None:
    _write(tmp_path, "doc.txt")
    _write(tmp_path, "idx/meta.txt")
    _write(tmp_path, "other/idx.txt")
    assert _rels(tmp_path, discover(tmp_path, skip=[tmp_path / "idx"])) == ["doc.txt", "other/idx.txt"]
    # A relative skip path works as well as an absolute one.
    os.chdir(tmp_path)
    assert _rels(tmp_path, discover(tmp_path, skip=[Path("idx")])) == ["doc.txt", "other/idx.txt"]


def test_discover_include_and_exclude_globs(tmp_path: Path) -> None:
    for rel in ["a.md", "a.txt", "docs/b.md", "docs/drafts/c.md", "docs/api/d.md", "notes/e.txt"]:
        _write(tmp_path, rel)
    assert _rels(tmp_path, discover(tmp_path, include=["*.md"])) == [
        "a.md", "docs/api/d.md", "docs/b.md", "docs/drafts/c.md",
    ]
    assert _rels(tmp_path, discover(tmp_path, include=["docs/**/*.md"])) == [
        "docs/api/d.md", "docs/b.md", "docs/drafts/c.md",
    ]
    assert _rels(tmp_path, discover(tmp_path, include=["docs/*.md"])) == ["docs/b.md"]
    assert _rels(tmp_path, discover(tmp_path, include=["docs/**"], exclude=["drafts"])) == [
        "docs/api/d.md", "docs/b.md",
    ]
    assert _rels(tmp_path, discover(tmp_path, exclude=["docs/**", "*.txt"])) == ["a.md"]
    assert _rels(tmp_path, discover(tmp_path, exclude=["docs/api"])) == [
        "a.md", "a.txt", "docs/b.md", "docs/drafts/c.md", "notes/e.txt",
    ]
    assert _rels(tmp_path, discover(tmp_path, include=["?.txt", "notes/[a-e].txt"])) == ["a.txt", "notes/e.txt"]


def test_discover_include_naming_another_suffix_finds_it(tmp_path: Path) -> None:
    _write(tmp_path, "app.log", "started")
    _write(tmp_path, "a.txt")
    assert _rels(tmp_path, discover(tmp_path)) == ["a.txt"]
    assert _rels(tmp_path, discover(tmp_path, include=["*.log"])) == ["app.log"]
    assert read_document(tmp_path / "app.log").text == "started"


def test_discover_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        discover(tmp_path / "nope")
    with pytest.raises(ConfigError):
        discover(_write(tmp_path, "file.txt"))


def test_supported_suffixes() -> None:
    assert {".txt", ".text", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ""} <= SUPPORTED_SUFFIXES


# --- formats --------------------------------------------------------------------------------

def test_plain_text_is_read_as_is_with_newlines_normalised(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.txt", "line one\r\nline two\rline three\n".encode())
    assert read_document(path) == LoadedDocument(text="line one\nline two\nline three\n", title="notes.txt")
    assert read_document(_write(tmp_path, "LICENSE", "MIT")).text == "MIT"
    assert read_document(_write(tmp_path, "x.text", "t")).title == "x.text"


def test_markdown_keeps_text_and_takes_the_first_heading_as_title(tmp_path: Path) -> None:
    text = "Some intro.\n\n```\n# not a heading\n```\n\n## Log rotation ##\n\nLogs are kept **30 days**.\n"
    doc = read_document(_write(tmp_path, "a.md", text))
    assert doc.text == text
    assert doc.title == "Log rotation"
    setext = read_document(_write(tmp_path, "b.markdown", "Backups\n=======\n\nNightly.\n"))
    assert setext.title == "Backups"
    assert read_document(_write(tmp_path, "c.md", "no heading here")).title == "c.md"


def test_rst_title_from_the_first_section(tmp_path: Path) -> None:
    text = ".. comment\n\n============\nInstallation\n============\n\nRun ``pip install``.\n\nUsage\n-----\n"
    doc = read_document(_write(tmp_path, "install.rst", text))
    assert doc.text == text
    assert doc.title == "Installation"


def test_html_text_only_without_scripts_and_styles(tmp_path: Path) -> None:
    html = """<!doctype html><html><head><title> Security
      and passwords </title><style>body { color: red; }</style>
    <script>var secret = "not text";</script></head>
    <body><h1>Passwords</h1><p>Hashed with
       <b>Argon2id</b>.</p><p>Sessions&nbsp;expire.</p>
    <!-- a comment --><noscript>enable js</noscript><ul><li>one</li><li>two</li></ul></body></html>"""
    doc = read_document(_write(tmp_path, "s.html", html))
    assert doc.title == "Security and passwords"
    assert doc.text == "Passwords\nHashed with Argon2id.\nSessions expire.\none\ntwo"
    for absent in ("secret", "color", "comment", "enable js", "Security"):
        assert absent not in doc.text
    no_title = read_document(_write(tmp_path, "t.htm", "<h1>Heading</h1><p>x</p>"))
    assert no_title.title == "Heading"


def test_pdf_text_of_all_pages_and_title(tmp_path: Path) -> None:
    path = _write(tmp_path, "report.pdf", _pdf_with_text(["Backups run nightly.", "They are kept 30 days."]))
    doc = read_document(path)
    assert "Backups run nightly." in doc.text
    assert "They are kept 30 days." in doc.text
    assert doc.title == "report.pdf"
    titled = read_document(_write(tmp_path, "t.pdf", _pdf_with_text(["Hello"], title="Annual report")))
    assert titled.title == "Annual report"
    assert titled.text.strip() == "Hello"


def test_corrupt_pdf_is_unsupported(tmp_path: Path) -> None:
    good = _pdf_with_text(["Some text"])
    for name, data in {"garbage.pdf": b"%PDF-1.4\nthis is not a pdf at all", "cut.pdf": good[: len(good) // 3]}.items():
        with pytest.raises(UnsupportedDocument, match="PDF") as info:
            read_document(_write(tmp_path, name, data))
        assert name in str(info.value)


# --- encodings and unreadable files -------------------------------------------------------------

def test_utf8_with_bom_and_utf16(tmp_path: Path) -> None:
    assert read_document(_write(tmp_path, "bom.txt", "\ufeffcafé".encode("utf-8"))).text == "café"
    assert read_document(_write(tmp_path, "u16.txt", "naïve\r\n".encode("utf-16"))).text == "naïve\n"


def test_latin1_and_cp1252_fall_back(tmp_path: Path) -> None:
    assert read_document(_write(tmp_path, "l1.txt", "Café crème à la française".encode("latin-1"))).text == (
        "Café crème à la française"
    )
    assert read_document(_write(tmp_path, "w.md", "“quoted” – dash €5".encode("cp1252"))).text == "“quoted” – dash €5"
    # Bytes undefined in Windows-1252 still read (as Latin-1).
    assert read_document(_write(tmp_path, "odd.txt", b"a\x81b")).text == "a\x81b"


def test_binary_file_is_unsupported(tmp_path: Path) -> None:
    path = _write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(UnsupportedDocument, match="binary"):
        read_document(path)


def test_missing_file_and_folder_are_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDocument, match="not found"):
        read_document(tmp_path / "gone.txt")
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(UnsupportedDocument):
        read_document(tmp_path / "dir.txt")


def test_permission_denied_is_unsupported() -> None:
    """Read by a user the file's mode shuts out: this one, or ``nobody`` when the tests run as root
    (root reads files whatever their mode)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bertsearch-mode-"))  # outside pytest's 0700 folders
    try:
        folder.chmod(0o755)
        path = _write(folder, "secret.txt", "x")
        path.chmod(0)
        if os.geteuid() != 0:
            with pytest.raises(UnsupportedDocument, match="permission denied"):
                read_document(path)
            return
        # A child that has given up root, reading with the code already loaded (nobody may not
        # reach this interpreter's files to start a new one).
        def read_as_nobody() -> int:
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            except OSError:
                return 3
            try:
                read_document(path)
            except UnsupportedDocument as exc:
                return 0 if "permission denied" in str(exc) else 2
            return 1

        code = exit_code_in_child(read_as_nobody)
        assert code == 0, "as nobody: 1 read the file, 2 another error, 3 no setuid"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_other_os_errors_are_unsupported(tmp_path: Path) -> None:
    """Any OSError on reading (here ENOTDIR; EACCES under root cannot be provoked) is reported, not raised raw."""
    _write(tmp_path, "file.txt", "x")
    with pytest.raises(UnsupportedDocument, match="cannot be read"):
        read_document(tmp_path / "file.txt" / "child.txt")


def test_encrypted_pdf_is_unsupported_unless_the_password_is_empty(tmp_path: Path) -> None:
    import io

    from pypdf import PdfReader, PdfWriter

    def encrypted(password: str) -> bytes:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf_with_text(["Locked text"]))))
        writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()

    with pytest.raises(UnsupportedDocument, match="encrypted"):
        read_document(_write(tmp_path, "locked.pdf", encrypted("secret")))
    assert "Locked text" in read_document(_write(tmp_path, "open.pdf", encrypted(""))).text


def test_glob_prefix_is_the_literal_start_of_every_match() -> None:
    from bertsearch.indexer.documents import glob_prefix

    assert glob_prefix("docs/api/*.md") == "docs/api/"
    assert glob_prefix("./guides/**") == "guides/"
    assert glob_prefix("guides/intro.md") == "guides/intro.md"
    assert glob_prefix("docs/[ab]*/x") == "docs/"
    assert glob_prefix("*.md") == glob_prefix("guides") == glob_prefix("**/x.md") == ""



@pytest.mark.parametrize("pattern", ["*?*?*?*?*?*?*?*?*?*?#", "*a" * 40 + "#", "**/" * 30 + "#", "*" + "?*" * 200 + "#"])
def test_a_glob_never_takes_exponential_time(pattern: str) -> None:
    from pathlib import PurePosixPath

    from bertsearch.indexer.documents import compile_glob, matches_any

    # It took over a minute with nested [^/]* before.
    assert not without_hanging(matches_any, [compile_glob(pattern)], PurePosixPath("/".join(["a" * 50] * 20)))


def test_an_invalid_glob_is_a_clear_error() -> None:
    from bertsearch.indexer.documents import compile_glob
    from bertsearch.indexer.common.errors import ConfigError

    with pytest.raises(ConfigError, match=r"invalid glob '\[z-a\]'"):
        compile_glob("[z-a]")
