"""What `bertsearch index` refuses to read (links out of the folder, files over the size limit)
and the modes of the files it writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from click.testing import CliRunner

from bertsearch.cli.main import cli


def _index(tmp_path: Path, docs: Path, tiny_bert_path: str, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["index", str(docs), "--index", str(tmp_path / "idx"), "--model",
                                      tiny_bert_path, "--quiet", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[-1])


def test_links_out_of_the_folder_are_not_followed(tmp_path: Path, tiny_bert_path: str) -> None:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "shadow.txt").write_text("root:the secret hash of the outside file\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A plain document about log rotation.\n")
    (docs / "b.txt").write_text("Another document about backups.\n")
    (docs / "inner.txt").symlink_to(docs / "a.txt")  # a link inside the folder is fine
    (docs / "leak.txt").symlink_to(secret / "shadow.txt")
    (docs / "leakdir").symlink_to(secret, target_is_directory=True)
    summary = _index(tmp_path, docs, tiny_bert_path)
    assert summary["added"] == 3 and summary["failed"] == 1
    assert summary["failures"][0]["path"] == "leak.txt" and "--follow-symlinks" in summary["failures"][0]["reason"]
    found = CliRunner().invoke(cli, ["search", "secret hash", "--index", str(tmp_path / "idx"), "--json"])
    assert "shadow" not in found.output and "leakdir" not in found.output

    followed = _index(tmp_path, docs, tiny_bert_path, "--follow-symlinks")
    assert followed["failed"] == 0 and followed["added"] == 2  # leak.txt and leakdir/shadow.txt


def test_a_link_loop_ends(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "a.txt").write_text("A document.\n")
    (docs / "sub" / "loop").symlink_to(docs, target_is_directory=True)
    assert _index(tmp_path, docs, tiny_bert_path, "--follow-symlinks")["added"] == 1


def test_files_over_the_size_limit_are_skipped_and_counted(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "small.txt").write_text("small " * 10)
    (docs / "big.txt").write_text("big " * 1000)
    summary = _index(tmp_path, docs, tiny_bert_path, "--max-file-size", "1000")
    assert summary["added"] == 1 and summary["failed"] == 1
    assert summary["failures"][0]["path"] == "big.txt" and "--max-file-size" in summary["failures"][0]["reason"]


def test_index_files_follow_the_umask(tmp_path: Path, tiny_bert_path: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A document about the file modes of an index.\n")
    before = os.umask(0o022)
    try:
        _index(tmp_path, docs, tiny_bert_path)
    finally:
        os.umask(before)
    for name in ("vectors.faiss", "lexical.json", "meta.db"):
        mode = stat.S_IMODE((tmp_path / "idx" / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))
