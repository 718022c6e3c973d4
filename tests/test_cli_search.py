"""``bertsearch search``, ``ask`` and ``serve`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bertsearch.cli.main import cli
from bertsearch.indexer.index import Index
from bertsearch.indexer.common.settings import Settings
from bertsearch.search import AskResult, SearchResult, Searcher

LOW = "0"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _without_time(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "took_ms"}


@pytest.mark.parametrize("command", ["search", "ask", "serve"])
def test_commands_have_help(command: str) -> None:
    code, output = _run(command, "--help")
    assert code == 0, output
    assert "--index" in output and "--db" in output


def test_search_json_matches_the_embedded_mode(sample_index: Settings) -> None:
    code, output = _run("search", "How long are rotated logs kept?", "--index", str(sample_index.index_dir),
                        "-k", "3", "--json")
    assert code == 0, output
    result = SearchResult.from_dict(json.loads(output.splitlines()[-1]))
    with Searcher.open(sample_index) as searcher:
        expected = searcher.search("How long are rotated logs kept?", top_k=3)
    assert _without_time(result.to_dict()) == _without_time(expected.to_dict())


def test_search_human_output(sample_index: Settings) -> None:
    code, output = _run("search", "backups", "--index", str(sample_index.index_dir), "--path", "*.txt")
    assert code == 0, output
    assert output.startswith("1. ")
    assert "backups.txt" in output and "A full backup of the database" in output
    assert "2. " not in output


def test_search_nothing_found(sample_index: Settings) -> None:
    code, output = _run("search", "backups", "--index", str(sample_index.index_dir), "--path", "none/*")
    assert code == 0, output
    assert output.strip() == "No passages found."


def test_ask_json_matches_the_embedded_mode(sample_index: Settings, tiny_qa_path: str) -> None:
    code, output = _run("ask", "How long are rotated logs kept?", "--index", str(sample_index.index_dir),
                        "--qa-model", tiny_qa_path, "-k", "2", "--threshold", LOW, "--json")
    assert code == 0, output
    result = AskResult.from_dict(json.loads(output.splitlines()[-1]))
    assert result.answers
    settings = sample_index.model_copy(update={"qa_model_path": tiny_qa_path})
    with Searcher.open(settings) as searcher:
        expected = searcher.ask("How long are rotated logs kept?", top_k=2, threshold=float(LOW))
    assert _without_time(result.to_dict()) == _without_time(expected.to_dict())


def test_ask_with_a_large_reader_matches_the_embedded_pair(sample_index: Settings, tiny_qa_path: str,
                                                          tiny_bert_qa_copy: str) -> None:
    code, output = _run("ask", "How long are rotated logs kept?", "--index", str(sample_index.index_dir),
                        "--qa-model", tiny_qa_path, "--large-reader", tiny_bert_qa_copy, "-k", "2",
                        "--threshold", LOW, "--json")
    assert code == 0, output
    result = AskResult.from_dict(json.loads(output.splitlines()[-1]))
    settings = sample_index.model_copy(update={"qa_model_path": tiny_qa_path, "large_reader": tiny_bert_qa_copy})
    with Searcher.open(settings) as searcher:
        expected = searcher.ask("How long are rotated logs kept?", top_k=2, threshold=float(LOW))
    with Searcher.open(sample_index.model_copy(update={"qa_model_path": tiny_qa_path})) as alone:
        single = alone.ask("How long are rotated logs kept?", top_k=2, threshold=float(LOW))
    assert result.answers and _without_time(result.to_dict()) == _without_time(expected.to_dict())
    assert [a.confidence for a in result.answers] != [a.confidence for a in single.answers]  # the pair read


def test_ask_large_reader_must_exist(sample_index: Settings, tmp_path: Path) -> None:
    code, output = _run("ask", "logs?", "--index", str(sample_index.index_dir), "--large-reader", str(tmp_path / "no"))
    assert code == 2 and "--large-reader" in output


def test_ask_large_reader_that_is_no_model_is_an_error(sample_index: Settings, tiny_qa_path: str, tmp_path: Path) -> None:
    code, output = _run("ask", "logs?", "--index", str(sample_index.index_dir), "--qa-model", tiny_qa_path,
                        "--large-reader", str(tmp_path))
    assert code == 1 and output.startswith("Error: ") and "Traceback" not in output


@pytest.fixture
def tiny_bert_qa_copy(tiny_qa_path: str, tmp_path: Path) -> str:
    """Another tiny random QA head: ``tiny_qa_path``'s weights, its QA layer re-drawn."""
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering

    model = BertForQuestionAnswering.from_pretrained(tiny_qa_path)
    torch.manual_seed(7)
    torch.nn.init.normal_(model.qa_outputs.weight, std=0.5)
    model.save_pretrained(tmp_path / "large")
    AutoTokenizer.from_pretrained(tiny_qa_path).save_pretrained(tmp_path / "large")
    return str(tmp_path / "large")


def test_ask_human_output(sample_index: Settings, tiny_qa_path: str) -> None:
    code, output = _run("ask", "How long are rotated logs kept?", "--index", str(sample_index.index_dir),
                        "--qa-model", tiny_qa_path, "-k", "1", "--threshold", LOW)
    assert code == 0, output
    assert output.startswith("1. ")
    assert "confidence " in output


def test_ask_without_an_answer_says_why(sample_index: Settings, tiny_qa_path: str) -> None:
    code, output = _run("ask", "How long are rotated logs kept?", "--index", str(sample_index.index_dir),
                        "--qa-model", tiny_qa_path, "--threshold", "1")
    assert code == 0, output
    assert output.startswith("No sure answer: ") and "threshold" in output
    assert "(below the threshold)" in output and "confidence " in output


def test_ask_on_an_empty_index(tmp_path: Path, tiny_bert_path: str, tiny_qa_path: str) -> None:
    Index.open(Settings(index_dir=tmp_path, model_path=tiny_bert_path), create=True).close()
    code, output = _run("ask", "How long are logs kept?", "--index", str(tmp_path), "--qa-model", tiny_qa_path)
    assert code == 0, output
    assert output.strip() == "No answer: the index holds no documents."


def test_missing_index_is_an_error(tmp_path: Path) -> None:
    for command in ("search", "ask"):
        code, output = _run(command, "logs", "--index", str(tmp_path / "none"))
        assert code == 1
        assert output.startswith("Error: no index at ")
        assert "Traceback" not in output


def test_bad_queries_are_errors(sample_index: Settings) -> None:
    code, output = _run("search", "  ", "--index", str(sample_index.index_dir))
    assert code == 1 and output.strip() == "Error: the query is empty"
    code, output = _run("search", "x" * 1001, "--index", str(sample_index.index_dir))
    assert code == 1 and "too long" in output
    code, output = _run("search", "logs", "--index", str(sample_index.index_dir), "-k", "0")
    assert code == 2 and "-k" in output


def test_ask_qa_model_must_exist(sample_index: Settings, tmp_path: Path) -> None:
    code, output = _run("ask", "logs?", "--index", str(sample_index.index_dir), "--qa-model", str(tmp_path / "no"))
    assert code == 2 and "--qa-model" in output


def test_serve_missing_index_fails_before_binding(tmp_path: Path) -> None:
    code, output = _run("serve", "--index", str(tmp_path / "none"), "--port", "0")
    assert code == 1
    assert output.startswith("Error: no index at ")


def test_search_mode(sample_index: Settings) -> None:
    code, output = _run("search", "rotated logs", "--index", str(sample_index.index_dir), "--mode", "lexical", "--json")
    assert code == 0, output
    hits = json.loads(output.splitlines()[-1])["hits"]
    assert hits and all(set(h["ranks"]) == {"lexical"} for h in hits)
    code, output = _run("search", "rotated logs", "--index", str(sample_index.index_dir))
    assert code == 0 and ("dense #" in output or "lexical #" in output), output
    code, output = _run("search", "logs", "--index", str(sample_index.index_dir), "--mode", "fuzzy")
    assert code == 2 and "Error:" in output and "fuzzy" in output
