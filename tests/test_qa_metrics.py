"""Official SQuAD metrics and `eval-qa --score` on handmade data with hand-computed numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bertsearch.cli.main import cli
from bertsearch.search.training.metrics import exact_match, f1_score, normalize_answer, ranking_scores, squad_scores


def test_normalize_answer_follows_the_official_script() -> None:
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("Theory of the U.S.") == "theory of us"
    assert normalize_answer("") == ""


def test_exact_and_f1() -> None:
    assert exact_match("the Eiffel Tower.", "Eiffel tower") == 1
    assert exact_match("Eiffel", "Eiffel Tower") == 0
    assert f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("", "") == 1.0
    assert f1_score("something", "") == 0.0


def _write_v2(path: Path) -> None:
    context = "The Eiffel Tower in Paris, France was finished in 1889 by Gustave Eiffel's company."
    qas = [
        {"id": "q1", "question": "What?", "answers": [{"text": "The Eiffel Tower", "answer_start": 0},
                                                     {"text": "Eiffel Tower", "answer_start": 4}]},
        {"id": "q2", "question": "Where?", "answers": [{"text": "Paris, France", "answer_start": 20}]},
        {"id": "q3", "question": "When?", "answers": [{"text": "1889", "answer_start": 50}]},
        {"id": "q4", "question": "Who painted it?", "answers": [], "is_impossible": True},
        {"id": "q5", "question": "Who owns it?", "answers": [], "is_impossible": True},
    ]
    data = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data), encoding="utf-8")


# q1 exact; q2 F1 1/2 ("in paris" vs "paris france"); q3 missing = abstained; q4 abstained
# correctly; q5 answered but unanswerable.
PREDICTIONS = {"q1": "eiffel tower!", "q2": "in Paris", "q4": "", "q5": "Gustave Eiffel"}
EXPECTED = {
    "exact": 40.0, "f1": 50.0, "total": 5,
    "HasAns_exact": 33.3333, "HasAns_f1": 50.0, "HasAns_total": 3,
    "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
    "abstain_rate": 40.0, "NoAns_abstain_rate": 50.0, "HasAns_abstain_rate": 33.3333,
}


def test_squad_scores_hand_computed() -> None:
    gold = {"q1": ["The Eiffel Tower", "Eiffel Tower"], "q2": ["Paris, France"], "q3": ["1889"], "q4": [], "q5": []}
    assert squad_scores(gold, PREDICTIONS) == EXPECTED


def test_eval_qa_scores_a_predictions_file(tmp_path: Path) -> None:
    data = tmp_path / "dev.json"
    _write_v2(data)
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(PREDICTIONS), encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval-qa", "--data", str(data), "--score", str(preds), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == EXPECTED


def test_eval_qa_bad_predictions_file_is_a_clean_error(tmp_path: Path) -> None:
    data = tmp_path / "dev.json"
    _write_v2(data)
    preds = tmp_path / "preds.json"
    preds.write_text("[1, 2]", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval-qa", "--data", str(data), "--score", str(preds)])
    assert result.exit_code == 1
    assert "Error:" in result.output


def test_ranking_scores_count_each_target_once_at_its_first_place() -> None:
    runs = [
        ("a", ["a", "b"]),  # first
        ("b", ["a", "a", "a", "b"]),  # a's repeats count once: b is second
        ("c", [str(i) for i in range(10)] + ["c"]),  # 11th: outside MRR@10 and the top 5
        ("d", iter(["x", "y", "z", "w", "d"])),  # fifth, from a one-pass iterator
    ]
    scores = ranking_scores(runs)
    assert scores == {"mrr@10": round((1 + 1 / 2 + 0 + 1 / 5) / 4, 4), "top1": 0.25, "top5": 0.75}
    assert ranking_scores([]) == {"mrr@10": 0.0, "top1": 0.0, "top5": 0.0}
