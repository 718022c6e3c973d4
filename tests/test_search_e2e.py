"""End to end on the sample corpus (samples/docs) with the real MiniLM encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertsearch.indexer.index import Index
from bertsearch.indexer.common.settings import Settings
from bertsearch.search import Searcher

SAMPLE_DOCS = Path(__file__).resolve().parent.parent / "samples" / "docs"

# (question, the document holding the answer, the answer's region in it: a right answer overlaps it)
QUESTIONS = [
    ("How long are rotated logs kept?", "logging.md", "14 days"),
    ("Which command rotates the logs by hand?", "logging.md", "acme-ctl logs rotate"),
    ("When is the full backup of the database taken?", "backups.txt", "every Sunday at 02:00"),
    ("How long does restoring a 10 GB database take?", "backups.txt", "about fifteen minutes"),
    ("How much disk space does the installation need?", "install.rst", "about 200 MB"),
    ("How do I upgrade to a new version?", "install.rst",
     "Stop the service, install the new version with\n``pip install --upgrade acme-server``"),
    ("How are passwords stored?", "security.html", "hashed with Argon2id"),
    ("When do sessions expire?", "security.html", "after 30 minutes of inactivity"),
    ("Who started Acme?", "history.md", "Maria Lopez and Tom Becker"),
]


@pytest.fixture(scope="module")
def minilm_index(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Settings:
    root = tmp_path_factory.mktemp("minilm-index")
    with Index.open(Settings(index_dir=root, model_path=minilm_path), create=True) as index:
        index.update(SAMPLE_DOCS)
    return Settings(index_dir=root)


@pytest.mark.slow
@pytest.mark.parametrize(("question", "path", "answer"), QUESTIONS)
def test_the_right_passage_ranks_first(minilm_index: Settings, question: str, path: str, answer: str) -> None:
    with Searcher.open(minilm_index) as searcher:
        hits = searcher.search(question, top_k=5).hits
    assert hits[0].path == path, [(h.path, round(h.score, 3)) for h in hits]
    assert answer in hits[0].text


@pytest.mark.slow
def test_ask_extracts_the_expected_span(minilm_index: Settings) -> None:
    with Searcher.open(minilm_index) as searcher:
        searcher.load_models()  # a head that does not load is a failure, not a skip
        for question, path, expected in QUESTIONS:
            result = searcher.ask(question, top_k=1)
            assert result.answers, (question, result.reason)
            best = result.answers[0]
            assert best.path == path, (question, best)
            text = searcher.document(best.document_id).text
            at = text.index(expected)
            assert best.start < at + len(expected) and at < best.end, (question, best.text, expected)


@pytest.mark.slow
def test_ask_says_so_when_the_corpus_holds_no_answer(minilm_index: Settings) -> None:
    with Searcher.open(minilm_index) as searcher:
        searcher.load_models()  # a head that does not load is a failure, not a skip
        for question in ["What is the capital of France?", "What colour is the sky on Mars?"]:
            result = searcher.ask(question)
            assert [a.below_threshold for a in result.answers] == [True], (question, result.answers)
            assert result.answers[0].confidence < searcher.threshold
            assert "threshold" in result.reason
