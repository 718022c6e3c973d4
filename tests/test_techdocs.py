"""The project's technical-docs evaluation set, end to end with the packaged encoder and the shipped head.

The floors sit under what ``benchmarks/eval_docs.py`` measures (see benchmarks/README.md), so a
change that breaks retrieval or reading on real documentation fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertsearch.indexer import Index, Settings
from bertsearch.search.searcher import Searcher
from bertsearch.search.training.metrics import answer_matches

FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUESTIONS = json.loads((FIXTURES / "techdocs_questions.json").read_text(encoding="utf-8"))["questions"]


def test_the_evaluation_set_is_well_formed() -> None:
    assert len(QUESTIONS) >= 40
    for q in QUESTIONS:
        assert (FIXTURES / "techdocs" / q["path"]).is_file(), q
        assert q["answers"] and q["q"].endswith("?"), q


@pytest.fixture(scope="module")
def techdocs(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(index_dir=tmp_path_factory.mktemp("techdocs") / "idx")
    with Index.open(settings, create=True) as index:
        summary = index.update(FIXTURES / "techdocs")
    assert summary.failed == 0 and summary.added == 24
    return settings


@pytest.mark.slow
def test_hybrid_finds_the_right_document_and_reads_answers(techdocs: Settings) -> None:
    found = {"hybrid": 0, "dense": 0}
    right = below = 0
    with Searcher.open(techdocs) as searcher:
        for q in QUESTIONS:
            for mode in found:
                found[mode] += any(h.path == q["path"] for h in searcher.search(q["q"], top_k=5, mode=mode).hits)
            best = searcher.ask(q["q"]).answers[0]
            assert 0.0 <= best.confidence <= 1.0
            ok = answer_matches(best.text, q["answers"])
            right += ok and not best.below_threshold
            below += ok and best.below_threshold
    n = len(QUESTIONS)
    assert found["hybrid"] / n >= 0.95, found
    assert found["hybrid"] >= found["dense"], found
    assert (right + below) / n >= 0.75, (right, below)
    assert right / n >= 0.75, (right, below)  # measured 0.82 with definition-list answers (0.63 before)
