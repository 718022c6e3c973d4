"""The report sets are what they claim: every question names a document of its set, and one of
its answers is a span of the text bertsearch reads from that document (so a miss is the system's,
never the set's). The sets themselves are never tuned on (see their SOURCE files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bertsearch.indexer.documents import read_document

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# name, at least this many questions, over at least this many documents, of at least these formats
SETS = [("heldout", 100, 60, {".txt", ".html", ".rst", ".pdf"}), ("zh_report", 60, 20, {".html"}),
        ("techdocs_dev", 200, 40, {".txt", ".html"})]


def _folded(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("name,questions,documents,formats", SETS)
def test_every_answer_is_in_the_text_bertsearch_reads(name: str, questions: int, documents: int,
                                                      formats: set[str]) -> None:
    data = json.loads((FIXTURES / f"{name}_questions.json").read_text(encoding="utf-8"))["questions"]
    assert len(data) >= questions
    paths = {q["path"] for q in data}
    assert len(paths) >= documents and formats <= {Path(p).suffix for p in paths}
    assert (FIXTURES / f"{name}_SOURCE.md").is_file()
    texts = {p: _folded(read_document(FIXTURES / name / p).text) for p in paths}
    for q in data:
        assert q["q"].strip() and q["answers"], q
        assert any(_folded(a) in texts[q["path"]] for a in q["answers"]), q


def test_the_dev_set_asks_only_about_documents_reserved_from_training() -> None:
    from bertsearch.search.training.reserved import is_reserved

    data = json.loads((FIXTURES / "techdocs_dev_questions.json").read_text(encoding="utf-8"))["questions"]
    folder = FIXTURES / "techdocs_dev"
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    assert files and all(is_reserved(f) for f in files)
    assert all(is_reserved(q["path"]) for q in data)
