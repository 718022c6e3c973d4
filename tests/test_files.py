"""The one atomic replace of the files an index writes (FAISS file, lexical pointer, checkpoints)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bertsearch.indexer.files import atomic_write


def test_the_target_is_the_old_file_until_the_block_ends_then_the_new_one(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as fh:
        fh.write(b"new, ")
        fh.write(b"streamed")
        assert target.read_bytes() == b"old"  # a reader meanwhile sees the whole old file
    assert target.read_bytes() == b"new, streamed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_modes_follow_the_umask(tmp_path: Path) -> None:
    before = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "pointer.json", "w", encoding="utf-8") as fh:
            fh.write('{"build": "b1"}')
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "pointer.json").stat().st_mode) == 0o640  # not mkstemp's 0600
    assert (tmp_path / "pointer.json").read_text(encoding="utf-8") == '{"build": "b1"}'


def test_an_error_keeps_the_old_file_and_removes_the_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_write(target) as fh:
            fh.write(b"half a file")
            raise RuntimeError("half way")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_a_failed_rename_keeps_the_target_and_removes_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.mkdir()  # a folder in the way: the rename fails, as on a full or read-only disk
    (target / "kept").write_bytes(b"old")
    with pytest.raises(OSError):
        with atomic_write(target) as fh:
            fh.write(b"new")
    assert (target / "kept").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "missing" / "data.bin") as fh:
            fh.write(b"never")
