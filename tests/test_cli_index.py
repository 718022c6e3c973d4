"""``bertsearch index`` and ``bertsearch info`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bertsearch.cli.main import cli


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "backups.md").write_text("# Backups\n\nBackups run every night and are kept for 30 days.\n")
    (root / "logs.txt").write_text("Logs rotate weekly and are kept for a year.\n")
    (root / "bad.txt").write_bytes(b"\x00\x00binary")
    return root


@pytest.fixture
def run(tmp_path: Path, db_url: str, tiny_bert_path: str):
    def invoke(*args: str, model: bool = True):
        extra = ["--index", str(tmp_path / "idx"), "--db", db_url]
        if model and args[0] == "index":
            extra += ["--model", tiny_bert_path]
        return CliRunner().invoke(cli, [*args, *extra])

    return invoke


@pytest.mark.parametrize("command", ["index", "info"])
def test_every_command_has_help(command: str):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--index" in result.output and "--db" in result.output and "--json" in result.output


def test_index_then_info(run, docs: Path):
    result = run("index", str(docs), "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated, 0 unchanged, 0 removed, 1 failed" in result.output
    assert "chunks/s" in result.output
    assert "failed: bad.txt" in result.output

    result = run("info", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output.strip().splitlines()[-1])
    assert info["documents"] == 2 and info["chunks"] == info["faiss_vectors"] == 2
    assert info["dimension"] == 32 and info["pooling"] == "mean"

    result = run("info")
    assert result.exit_code == 0, result.output
    assert "faiss vectors" in result.output and "IndexFlatIP" in result.output


def test_index_json_summary_on_the_last_line(run, docs: Path):
    assert run("index", str(docs), "--quiet").exit_code == 0
    result = run("index", str(docs), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["added"], summary["unchanged"], summary["failed"], summary["chunks_written"]) == (0, 2, 1, 0)
    assert summary["failures"][0]["path"] == "bad.txt"
    assert {"seconds", "chunks_per_second", "documents", "chunks"} <= summary.keys()


def test_missing_folder_is_an_error(run, tmp_path: Path):
    result = run("index", str(tmp_path / "nope"))
    assert result.exit_code != 0
    assert "Error: not a folder" in result.output
    assert "Traceback" not in result.output


def test_info_without_an_index_is_an_error(run):
    result = run("info")
    assert result.exit_code == 1
    assert "Error: no index at" in result.output


def test_chunking_change_needs_rebuild(run, docs: Path):
    assert run("index", str(docs), "-q").exit_code == 0
    result = run("index", str(docs), "--chunk-tokens", "32", "--chunk-overlap", "4")
    assert result.exit_code == 1 and "--rebuild" in result.output
    result = run("index", str(docs), "--chunk-tokens", "32", "--chunk-overlap", "4", "--rebuild", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["added"] == 2
    info = json.loads(run("info", "--json").output.strip().splitlines()[-1])
    assert (info["chunk_tokens"], info["chunk_overlap"]) == (32, 4)


def test_chunk_header_is_stored_and_a_change_needs_rebuild(run, docs: Path):
    def header() -> str:
        return json.loads(run("info", "--json").output.strip().splitlines()[-1])["chunk_header"]

    assert run("index", str(docs), "-q").exit_code == 0
    assert header() == "title"  # the default of a new index
    result = run("index", str(docs), "--chunk-header", "none")
    assert result.exit_code == 1 and "--rebuild" in result.output and "Traceback" not in result.output
    result = run("index", str(docs), "--chunk-header", "none", "--rebuild", "--json")
    assert result.exit_code == 0, result.output
    assert header() == "none"
    (docs / "more.txt").write_text("Otters hold hands while they sleep.\n", encoding="utf-8")
    for args in ((), ("--rebuild",)):  # unset, the index keeps its own header, whatever the default
        result = run("index", str(docs), "-q", *args)
        assert result.exit_code == 0, result.output
        assert header() == "none"
    result = run("index", str(docs), "--chunk-header", "title")
    assert result.exit_code == 1 and "chunk header none, not title" in result.output
    result = run("index", str(docs), "--chunk-header", "path")
    assert result.exit_code == 2 and "'none', 'title'" in result.output


def test_an_unknown_chunk_header_setting_is_an_error(tmp_path: Path, docs: Path, tiny_bert_path: str):
    result = CliRunner().invoke(cli, ["index", str(docs), "--index", str(tmp_path / "i"), "--model", tiny_bert_path],
                                env={"BERTSEARCH_CHUNK_HEADER": "path"})
    assert result.exit_code == 1
    assert "Error: invalid setting" in result.output and "chunk_header" in result.output
    assert not (tmp_path / "i").exists()


def test_bad_database_url_is_an_error_with_the_password_masked(tmp_path: Path, docs: Path, tiny_bert_path: str):
    result = CliRunner().invoke(cli, ["index", str(docs), "--index", str(tmp_path / "i"), "--model", tiny_bert_path,
                                      "--db", "postgresql+psycopg://bob:s3cret@127.0.0.1:1/x"])
    assert result.exit_code == 1
    assert "Error: cannot open the database postgresql+psycopg://bob:***@127.0.0.1:1/x" in result.output
    assert "s3cret" not in result.output
