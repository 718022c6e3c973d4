"""The fit of the definition answers' confidence (bertsearch.search.training.fit_definitions) on
labelled rows: what a term counts as, the fit itself, its scale on the top answers, and the
refit from kept rows. The rows here are synthetic; collecting them from a real index is
covered by the definition path's own tests and the fit's runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bertsearch.search.confidence import probability
from bertsearch.search.training.fit_definitions import FEATURES, fit, is_right, main
from bertsearch.search.training.reliability import calibration_error


def test_a_term_is_right_when_a_gold_answer_is_it_or_one_of_its_forms():
    assert is_right("-k, --keep", ["--keep"])
    assert is_right("-k, --keep", ["-k"])
    assert is_right("--bwlimit=RATE", ["--bwlimit=RATE"])
    assert not is_right("--keep-going", ["--keep"])


def _rows(questions: int, seed: int) -> list[dict]:
    """Each question: one definition answer and four reader answers; one of them at most is right,
    and the right one tends to score higher (similarity for entries, reader_logit for spans)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(questions):
        right_at = int(rng.integers(0, 6))  # 5: none of the answers is right
        answers = [{"text": "-x", "definition": 1.0, "similarity": float(rng.normal(1.2 if right_at == 0 else 0.0, 1.0)),
                    "margin": float(rng.normal(0.1, 0.1)), "overlap": float(rng.uniform()), "log_weight": -1.0}]
        for j in range(1, 5):
            answers.append({"text": f"span {j}", "reader_logit": float(rng.normal(1.5 if right_at == j else -1.0, 1.0))})
        for j, a in enumerate(answers):
            a["right"] = j == right_at
        rows.append({"q": f"question {i}", "answers": answers})
    return rows


def _top_confidences(rows: list[dict], fitted: dict) -> list[tuple[int, float, bool]]:
    out = []
    for r in rows:
        conf = [probability(fitted["intercept"], fitted["coefficients"], {k: a.get(k, 0.0) for k in FEATURES})
                for a in r["answers"]]
        top = int(np.argmax(conf))
        out.append((top, conf[top], r["answers"][top]["right"]))
    return out


def test_the_fit_ranks_by_its_features_and_counts_its_right_top_answers():
    rows = _rows(600, 1)
    fitted = fit(rows)
    assert fitted["coefficients"]["similarity"] > 0 and fitted["coefficients"]["reader_logit"] > 0
    assert fitted["questions"] == 600 and fitted["answers_fitted"] == 3000
    tops = _top_confidences(rows, fitted)
    assert fitted["best_right"] == sum(right for _, _, right in tops)
    # the first reader answer (the baseline): right when it is the right one
    assert fitted["best_right_before"] == sum(r["answers"][1]["right"] for r in rows)
    assert fitted["best_right"] > fitted["best_right_before"]


def test_scaling_on_the_top_answers_keeps_them_and_makes_their_confidence_mean_what_it_says():
    rows = _rows(3000, 2)
    plain, scaled = fit(rows), fit(rows, scale_top=True)
    # fitted on every answer, the confidence of the top answers is off (one right answer at most
    # per question: being the top one says more than the features alone)
    assert plain["top_answer_ece_in_sample"] > 0.05
    assert scaled["scaled_on_top"]["top_answer_ece_in_sample_before"] == plain["top_answer_ece_in_sample"]
    assert scaled["top_answer_ece_in_sample"] < 0.03
    a, c = scaled["scaled_on_top"]["a"], scaled["scaled_on_top"]["c"]
    assert a > 0 and scaled["scaled_on_top"]["answers"] == 3000
    assert all(scaled["coefficients"][k] == pytest.approx(a * plain["coefficients"][k], abs=1e-5) for k in FEATURES)
    assert scaled["intercept"] == pytest.approx(a * plain["intercept"] + c, abs=1e-5)
    # monotone: every question's top answer is the same one
    assert [t for t, _, _ in _top_confidences(rows, plain)] == [t for t, _, _ in _top_confidences(rows, scaled)]
    assert scaled["best_right"] == plain["best_right"]
    measured = calibration_error([(conf, right) for _, conf, right in _top_confidences(rows, scaled)])["ece"]
    assert measured == pytest.approx(scaled["top_answer_ece_in_sample"], abs=0.002)


def test_the_scale_can_be_fitted_on_one_set_of_questions_alone():
    # Two sets read by one fit: on "techqa" the top answers are right less often than the features
    # say (a quarter of them are relabelled wrong); the scale fitted on that set alone means what
    # it says there, the scale fitted on every top answer does not.
    rows = [{**r, "set": "tune"} for r in _rows(1500, 3)]
    hard = [{**r, "set": "techqa"} for r in _rows(1500, 4)]
    for i, r in enumerate(hard):
        if i % 4 == 0:
            for a in r["answers"]:
                a["right"] = False
    both = fit(rows + hard, scale_top=True)
    on_hard = fit(rows + hard, scale_top=True, scale_set="techqa")
    assert on_hard["scaled_on_top"]["answers"] == 1500 and on_hard["scaled_on_top"]["set"] == "techqa"
    assert [t for t, _, _ in _top_confidences(rows + hard, both)] == [t for t, _, _ in _top_confidences(rows + hard, on_hard)]

    def ece(fitted: dict) -> float:
        return calibration_error([(conf, right) for _, conf, right in _top_confidences(hard, fitted)])["ece"]

    assert ece(on_hard) < 0.04 and ece(both) > 2 * ece(on_hard)
    with pytest.raises(ValueError, match="no top answers of the set"):
        fit(rows, scale_top=True, scale_set="techqa")


def test_the_scale_can_be_fitted_on_rows_that_rank_nothing(tmp_path, capsys):
    # The ranking is learnt from one run's rows, the scale from another's (harder) questions: the
    # order of every answer is the plain fit's, and the confidence means what it says on the others.
    rows = _rows(1500, 5)
    harder = _rows(1500, 6)
    for r in harder[::3]:
        for a in r["answers"]:
            a["right"] = False
    plain = fit(rows)
    scaled = fit(rows, scale_top=True, scale_rows=harder)
    assert scaled["scaled_on_top"]["answers"] == 1500 and scaled["scaled_on_top"]["rows"] == "another run's"
    assert [t for t, _, _ in _top_confidences(rows + harder, plain)] == [t for t, _, _ in _top_confidences(rows + harder, scaled)]
    assert scaled["best_right"] == plain["best_right"] and scaled["answers_fitted"] == plain["answers_fitted"]
    measured = calibration_error([(conf, right) for _, conf, right in _top_confidences(harder, scaled)])["ece"]
    assert measured == pytest.approx(scaled["scaled_on_top"]["scaled_answers_ece"], abs=0.002) and measured < 0.05
    assert scaled["scaled_on_top"]["scaled_answers_ece_before"] > 2 * measured

    kept, other, out = tmp_path / "rows.json", tmp_path / "other.json", tmp_path / "answer_model.json"
    kept.write_text(json.dumps({"data": "generated", "rows": rows}), encoding="utf-8")
    other.write_text(json.dumps({"data": "written", "rows": harder}), encoding="utf-8")
    out.write_text(json.dumps({"threshold": 0.3}), encoding="utf-8")
    result = main(["--rows", str(kept), "--scale-rows", str(other), "--scale-on", "top", "--out", str(out)])
    written = json.loads(out.read_text(encoding="utf-8"))["definitions"]
    assert written == result["definitions"] and written["intercept"] == scaled["intercept"]
    assert written["fitted"]["data"] == "generated; scaled on the top answers of another run's rows: written"
    with pytest.raises(SystemExit):
        main(["--rows", str(kept), "--scale-rows", str(other), "--out", str(out)])
    assert "--scale-rows fits a scale" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--rows", str(kept), "--scale-rows", str(other), "--scale-on", "top-techqa", "--out", str(out)])
    assert "no top answers of the set 'techqa'" in capsys.readouterr().err
    assert json.loads(out.read_text(encoding="utf-8"))["definitions"] == written  # nothing written by the refused runs


def test_a_scale_that_would_reverse_the_order_is_refused():
    # Over every answer a higher similarity is right more often (1.0 right, -2.0 wrong), but among
    # the top answers (2.0 to 3.0) the higher ones are the wrong ones: no monotone scale fits that.
    rows = []
    for i in range(200):
        top = 2.0 + i / 200
        answers = [{"text": "top", "definition": 1.0, "similarity": top, "right": top < 2.5},
                   {"text": "mid", "definition": 1.0, "similarity": 1.0, "right": True}]
        answers += [{"text": "low", "definition": 1.0, "similarity": -2.0, "right": False} for _ in range(3)]
        rows.append({"q": f"q{i}", "answers": answers})
    assert fit(rows)["coefficients"]["similarity"] > 0
    with pytest.raises(ValueError, match="does not rise"):
        fit(rows, scale_top=True)


def test_no_answers_to_fit_on_is_an_error():
    with pytest.raises(ValueError, match="no definition answers"):
        fit([{"q": "q", "answers": []}])


def test_a_refit_from_kept_rows_updates_only_the_definition_fit(tmp_path, capsys):
    model = {"dense_weight": 0.6, "depth": 50, "coefficients": {"log_reader": 0.2}, "intercept": -0.9, "threshold": 0.367,
             "fitted": {"keep": 0.95}, "definitions": {"coefficients": {"definition": 9.0}, "intercept": 0.0}}
    out = tmp_path / "answer_model.json"
    out.write_text(json.dumps(model), encoding="utf-8")
    kept = tmp_path / "rows.json"
    kept.write_text(json.dumps({"data": "synthetic rows", "rows": _rows(400, 4)}), encoding="utf-8")
    result = main(["--rows", str(kept), "--out", str(out), "--scale-on", "top"])
    written = json.loads(out.read_text(encoding="utf-8"))
    assert {k: v for k, v in written.items() if k != "definitions"} == {k: v for k, v in model.items() if k != "definitions"}
    fitted = written["definitions"]["fitted"]
    assert fitted["data"] == "synthetic rows" and fitted["scale_on"] == "top" and "scaled_on_top" in fitted
    assert written["definitions"]["coefficients"] == result["definitions"]["coefficients"]
    assert written["definitions"]["coefficients"]["similarity"] > 0


@pytest.mark.parametrize("content", ["not json", json.dumps({"rows": []}), json.dumps([1, 2])])
def test_a_rows_file_this_command_did_not_keep_is_a_clear_error(tmp_path, capsys, content):
    out = tmp_path / "answer_model.json"
    out.write_text(json.dumps({"threshold": 0.3}), encoding="utf-8")
    bad = tmp_path / "rows.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["--rows", str(bad), "--out", str(out)])
    assert exit_info.value.code == 2
    assert "not a rows file this command kept" in capsys.readouterr().err
    assert json.loads(out.read_text(encoding="utf-8")) == {"threshold": 0.3}  # nothing written


def test_rows_and_techqa_do_not_go_together(tmp_path, capsys):
    out = tmp_path / "answer_model.json"
    out.write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["--rows", str(tmp_path / "rows.json"), "--out", str(out), "--techqa", "t.json", "--tech-sources", "s"])
    assert "reads no --techqa" in capsys.readouterr().err
