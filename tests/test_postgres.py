"""PostgreSQL as the metadata store: every command against a real server, and its errors.

These tests need ``--pg-url`` (or ``BERTSEARCH_TEST_PG_URL``); without it they are skipped with
the reason shown by ``pytest -ra``. ``.ci/run`` starts a real server and sets the URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from bertsearch.cli.main import cli

pytestmark = pytest.mark.postgres
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "docs"


def _invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.output


def test_every_command_runs_on_postgres(tmp_path: Path, pg_url: str, tiny_bert_path: str, tiny_qa_path: str):
    docs = tmp_path / "docs"
    docs.mkdir()
    for sample in SAMPLES.iterdir():
        (docs / sample.name).write_bytes(sample.read_bytes())
    where = ["--index", str(tmp_path / "idx"), "--db", pg_url]

    code, out = _invoke("index", str(docs), *where, "--model", tiny_bert_path, "--quiet", "--json")
    assert code == 0, out
    first = json.loads(out.splitlines()[-1])
    assert first["added"] == len(list(SAMPLES.iterdir())) and first["failed"] == 0

    (docs / "history.md").unlink()
    (docs / "backups.txt").write_text("Backups are taken every hour and kept for a week.\n")
    code, out = _invoke("index", str(docs), *where, "--quiet", "--json")
    assert code == 0, out
    second = json.loads(out.splitlines()[-1])
    assert (second["updated"], second["removed"], second["added"]) == (1, 1, 0)

    code, out = _invoke("info", *where, "--json")
    assert code == 0, out
    info = json.loads(out.splitlines()[-1])
    assert info["documents"] == len(list(docs.iterdir()))
    assert info["chunks"] == info["faiss_vectors"] > 0
    assert "***" in info["db_url"] and "bertsearch:bertsearch@" not in info["db_url"]

    code, out = _invoke("search", "how often are backups taken", *where, "-k", "2", "--json")
    assert code == 0, out
    hits = json.loads(out.splitlines()[-1])["hits"]
    assert 1 <= len(hits) <= 2 and all(h["path"] != "history.md" for h in hits)

    code, out = _invoke("ask", "how often are backups taken", *where, "--qa-model", tiny_qa_path, "--json")
    assert code == 0, out
    assert "answers" in json.loads(out.splitlines()[-1])

    # Documents by key beside the folder's: a key equal to a file's path, metadata as JSON, a folder run after.
    code, out = _invoke("put", "backups.txt", *where, "--metadata", '{"tags": ["ops"], "n": 1}', input="Tapes rotate.")
    assert code == 0, out
    assert json.loads(out.splitlines()[-1])["results"][0]["status"] == "created"
    code, out = _invoke("index", str(docs), *where, "--quiet", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["removed"] == 0, out
    code, out = _invoke("search", "tapes", *where, "--mode", "lexical", "--json")
    assert code == 0, out
    assert [(h["path"], h["text"]) for h in json.loads(out.splitlines()[-1])["hits"]] == [("backups.txt", "Tapes rotate.")]
    # A where filter on PostgreSQL: the caller's list field, and the source every document has.
    code, out = _invoke("search", "tapes rotate backups", *where, "--mode", "lexical", "--json",
                        "--where", '{"tags": {"$contains": "ops"}, "source": "api"}')
    assert code == 0, out
    assert [h["path"] for h in json.loads(out.splitlines()[-1])["hits"]] == ["backups.txt"]
    code, out = _invoke("search", "tapes rotate backups", *where, "--mode", "lexical", "--json",
                        "--where", '{"source": "folder", "type": {"$in": ["text", "markdown"]}}')
    assert code == 0, out
    assert {h["path"] for h in json.loads(out.splitlines()[-1])["hits"]} <= {p.name for p in docs.iterdir()}
    code, out = _invoke("delete", "backups.txt", *where)
    assert code == 0, out
    code, out = _invoke("info", *where, "--json")
    assert json.loads(out.splitlines()[-1])["documents"] == len(list(docs.iterdir()))


@pytest.mark.parametrize("change", ["password", "database"])
def test_bad_credentials_and_missing_database_are_clear_errors(tmp_path: Path, pg_url: str, change: str):
    url = make_url(pg_url)
    url = url.set(password="not-the-password") if change == "password" else url.set(database="no_such_db")
    rendered = url.render_as_string(hide_password=False)
    for command in (["info"], ["search", "anything"]):
        code, out = _invoke(*command, "--index", str(tmp_path / "idx"), "--db", rendered)
        assert code != 0
        assert out.startswith("Error: ") and "Traceback" not in out
        assert "not-the-password" not in out and "***" in out
        assert ("password authentication failed" in out) if change == "password" else ("no_such_db" in out)
