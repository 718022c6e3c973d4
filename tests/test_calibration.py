"""The confidence fit's parts (search/training/calibrate.py) and the reliability measures
(search/training/reliability.py), on data whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bertsearch.search.confidence import probability
from bertsearch.search.training.calibrate import FEATURES, fit_confidence, ranked_first, technical_questions
from bertsearch.search.training.reliability import at_threshold, calibration_error, coverage_curve


def test_calibration_error_is_zero_when_each_bin_is_right_as_often_as_it_says():
    pairs = [(0.25, i < 1) for i in range(4)] + [(0.75, i < 3) for i in range(4)]
    result = calibration_error(pairs)
    assert result["ece"] == 0.0
    assert [(b["n"], b["confidence"], b["accuracy"]) for b in result["bins"]] == [(4, 0.25, 0.25), (4, 0.75, 0.75)]


def test_calibration_error_weighs_each_bins_gap_by_its_size():
    # 10 answers at 0.95 of which 5 right (gap 0.45), 30 at 0.05 of which none right (gap 0.05)
    pairs = [(0.95, i < 5) for i in range(10)] + [(0.05, False)] * 30
    assert calibration_error(pairs)["ece"] == pytest.approx((10 * 0.45 + 30 * 0.05) / 40, abs=1e-4)


def test_confidence_one_falls_in_the_last_bin():
    assert calibration_error([(1.0, True)])["bins"][0]["low"] == 0.9


@pytest.mark.parametrize("pairs", [[], [(1.5, True)], [(-0.1, False)]])
def test_calibration_error_refuses_what_it_cannot_measure(pairs):
    with pytest.raises(ValueError):
        calibration_error(pairs)


def test_coverage_curve_answers_the_most_confident_first():
    pairs = [(0.9, True), (0.8, True), (0.3, False), (0.2, True)]
    curve = coverage_curve(pairs, points=4)
    assert [p["coverage"] for p in curve] == [0.25, 0.5, 0.75, 1.0]
    assert [p["accuracy"] for p in curve] == [1.0, 1.0, 0.6667, 0.75]
    assert [p["threshold"] for p in curve] == [0.9, 0.8, 0.3, 0.2]


def test_at_threshold_counts_the_right_answers_kept():
    pairs = [(0.9, True), (0.5, False), (0.4, True), (0.1, True)]
    assert at_threshold(pairs, 0.4) == {"threshold": 0.4, "coverage": 0.75, "accuracy": 0.6667, "right_kept": 0.6667}


def _rows(n: int, seed: int) -> list[dict]:
    """Questions whose top answers are right with the probability a known logistic model gives."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        answers = []
        for _ in range(3):
            f = {k: float(rng.normal()) for k in FEATURES}
            p = 1.0 / (1.0 + np.exp(-(2.0 * f["span_logit"] - 1.0)))
            answers.append({"features": f, "f1": 1.0 if rng.random() < p else 0.0})
        rows.append({"answerable": i % 4 != 0, "technical": i % 2 == 0, "answers": answers})
    return rows


def test_fit_confidence_keeps_the_asked_share_of_right_top_answers_and_is_calibrated_in_sample():
    rows = _rows(3000, 0)
    fit = fit_confidence(rows, keep=0.95)
    for technical in (False, True):
        tops = [ranked_first(r, fit["intercept"], fit["coefficients"]) for r in rows
                if r["answerable"] and r["technical"] == technical]
        conf = [probability(fit["intercept"], fit["coefficients"], a["features"]) for a in tops if a["f1"] >= 0.5]
        kept = sum(c >= fit["threshold"] for c in conf) / len(conf)
        assert 0.95 <= kept <= 0.97  # the kinds are alike here: the lower threshold keeps a little more of one
    assert fit["coefficients"]["span_logit"] == pytest.approx(2.0, abs=0.3)
    assert set(fit["top_answer_ece_in_sample"]) == {"squad", "technical"}
    assert all(e < 0.05 for e in fit["top_answer_ece_in_sample"].values())


def test_the_threshold_keeps_the_share_of_right_answers_of_the_kind_answered_less_surely():
    rows = _rows(3000, 2)
    for r in rows:
        if r["technical"]:  # technical right answers come at lower scores
            for a in r["answers"]:
                a["features"]["span_logit"] -= 0.8 * a["f1"]
    fit = fit_confidence(rows, keep=0.95)
    assert fit["threshold"] == min(fit["threshold_by_kind"].values()) == fit["threshold_by_kind"]["technical"]
    assert fit["threshold_by_kind"]["technical"] < fit["threshold_by_kind"]["squad"]
    tops = [ranked_first(r, fit["intercept"], fit["coefficients"]) for r in rows if r["answerable"] and r["technical"]]
    conf = [probability(fit["intercept"], fit["coefficients"], a["features"]) for a in tops if a["f1"] >= 0.5]
    assert 0.95 <= sum(c >= fit["threshold"] for c in conf) / len(conf) <= 0.96


def test_a_higher_keep_never_raises_the_threshold():
    rows = _rows(2000, 1)
    assert fit_confidence(rows, keep=0.99)["threshold"] <= fit_confidence(rows, keep=0.9)["threshold"]


def test_scaling_on_the_answerable_questions_calibrates_them_and_passes_the_same_answers():
    rows = _rows(4000, 3)
    for r in rows:
        if not r["answerable"]:  # where the documents hold no answer, no answer is right
            for a in r["answers"]:
                a["f1"] = 0.0
    rows.append({"answerable": True, "technical": False, "answers": []})  # no answer: nothing to scale on
    plain = fit_confidence(rows, keep=0.95)
    scaled = fit_confidence(rows, keep=0.95, scale_on_answerable=True)
    # a fit on every question is under-confident on the answerable ones; the scale mends that
    assert all(plain["top_answer_ece_in_sample_answerable"][k] > 0.05 for k in ("squad", "technical"))
    assert all(scaled["top_answer_ece_in_sample_answerable"][k] < 0.04 for k in ("squad", "technical"))
    a, c = scaled["scaled_on_answerable"]["a"], scaled["scaled_on_answerable"]["c"]
    assert 0 < a and scaled["scaled_on_answerable"]["answers"] == sum(r["answerable"] and bool(r["answers"]) for r in rows)
    assert all(scaled["coefficients"][k] == pytest.approx(a * plain["coefficients"][k], abs=1e-5) for k in FEATURES)
    assert scaled["intercept"] == pytest.approx(a * plain["intercept"] + c, abs=1e-5)
    assert scaled["threshold"] > plain["threshold"]

    def confidences(fit):
        tops = [ranked_first(r, fit["intercept"], fit["coefficients"]) for r in rows if r["answers"]]
        return [probability(fit["intercept"], fit["coefficients"], a["features"]) for a in tops]

    before, after = confidences(plain), confidences(scaled)
    differ = [b for b, c in zip(before, after) if (b >= plain["threshold"]) != (c >= scaled["threshold"])]
    # the order is kept: only answers at the threshold, within its rounding to 0.001, can pass one and not the other
    assert len(differ) < 0.005 * len(rows) and all(abs(b - plain["threshold"]) < 0.002 for b in differ)
    assert scaled["train_answered_at_threshold"] == pytest.approx(plain["train_answered_at_threshold"], abs=0.005)


def test_the_cross_check_measures_each_fit_on_rows_it_did_not_see():
    from bertsearch.search.training.calibrate import cross_checked

    rows = _rows(3000, 5)
    for r in rows:
        if not r["answerable"]:
            for a in r["answers"]:
                a["f1"] = 0.0
    checked = cross_checked(rows, keep=0.95)
    assert set(checked) == {"plain", "scaled", "right_top"}
    assert all(set(v) == {"squad", "technical"} for v in checked.values())
    # as in sample (the test above), the scale mends the under-confidence on answerable questions
    assert all(checked["scaled"][k] < checked["plain"][k] for k in ("squad", "technical"))
    assert all(checked["plain"][k] > 0.05 for k in ("squad", "technical"))
    clean = cross_checked(_rows(3000, 6), keep=0.95)  # the unanswerable rows right as often as the others: nothing to mend
    assert all(v < 0.06 for v in clean["plain"].values())


def test_a_scale_that_would_reverse_the_order_is_refused():
    from bertsearch.search.training.calibrate import rescaled

    rows = _rows(400, 4)
    w, b = np.zeros(len(FEATURES)), 0.0
    w[FEATURES.index("span_logit")] = 2.0
    for r in rows:  # here the answers the fit trusts least are the right ones
        for a in r["answers"]:
            a["f1"] = 1.0 if a["features"]["span_logit"] < 0 else 0.0
    with pytest.raises(ValueError, match="does not rise"):
        rescaled(w, b, FEATURES, rows)


def test_technical_questions_ask_indexed_documents_and_take_unanswerable_ones_from_the_others(tmp_path):
    sources = tmp_path / "sources"
    data = []
    for d in range(6):
        title = f"man/pkg/doc{d}.1.txt"
        (sources / title).parent.mkdir(parents=True, exist_ok=True)
        (sources / title).write_text(f"document {d}\n", encoding="utf-8")
        qas = [{"id": f"{d}-{i}", "question": f"Which option {i} of doc{d}?",
                "answers": [{"text": f"--opt{i}", "answer_start": 0}]} for i in range(5)]
        qas.append({"id": f"{d}-neg", "question": f"Nothing in doc{d}?", "answers": [], "is_impossible": True})
        data.append({"title": title, "paragraphs": [{"context": "--opt0 --opt1 --opt2 --opt3 --opt4", "qas": qas}]})
    # a SQuAD article mixed in (no slash in its title) is never a technical question
    data.append({"title": "Normans", "paragraphs": [{"context": "In France.", "qas": [
        {"id": "s", "question": "Where?", "answers": [{"text": "France", "answer_start": 3}]}]}]})
    path = tmp_path / "techqa.json"
    path.write_text(json.dumps({"version": "t", "data": data}), encoding="utf-8")

    asked, others = technical_questions(path, sources, documents=2, questions=8, seed=3, folder=tmp_path / "docs")
    copied = sorted(p.relative_to(tmp_path / "docs").as_posix() for p in (tmp_path / "docs").rglob("*.txt"))
    assert len(copied) == 2
    indexed = {c.split("/")[-1].split(".")[0] for c in copied}
    assert len(asked) == 8 and all(golds for _, golds in asked)
    assert all(q.split()[-1].rstrip("?") in indexed for q, _ in asked)
    assert len(others) == 8
    # the unanswerable ones name an indexed document instead of their own (it does not answer them:
    # naming an indexed page is no sign of an answer by itself)
    named = [q.split()[-1].rstrip("?") for q in others]
    assert all(n in indexed for n in named)
    assert all(q.startswith("Which option ") for q in others)
    assert not any(q.startswith("Nothing") or q == "Where?" for q in [q for q, _ in asked] + others)
    # the same seed draws the same documents (a rerun rewrites the folder)
    again, _ = technical_questions(path, sources, documents=2, questions=8, seed=3, folder=tmp_path / "docs")
    assert again == asked and len(list((tmp_path / "docs").rglob("*.txt"))) == 2


def test_a_refit_from_kept_rows_reads_nothing_again_and_keeps_the_fusion(tmp_path):
    from bertsearch.search.training.calibrate import main

    kept = tmp_path / "rows.json"
    kept.write_text(json.dumps({"fusion": {"dense_weight": 0.35, "questions": 3, "table": {}}, "data": "synthetic",
                                "rows": _rows(500, 2)}), encoding="utf-8")
    out = tmp_path / "answer_model.json"
    result = main(["--train", str(tmp_path / "absent.json.gz"), "--out", str(out), "--rows", str(kept), "--keep", "0.9"])
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == result and written["dense_weight"] == 0.35 and written["fitted"]["data"] == "synthetic"
    assert written["fitted"]["fit_answers"] == 1 and set(written["coefficients"]) == set(FEATURES)
    assert "definitions" in written  # fitted apart, carried over
    # rows kept before a feature existed refit without it (--leave-out); the fit says what it read
    before = json.loads(kept.read_text(encoding="utf-8"))
    for row in before["rows"]:
        for answer in row["answers"]:
            del answer["features"]["names_other"]
    old = tmp_path / "old_rows.json"
    old.write_text(json.dumps(before), encoding="utf-8")
    with pytest.raises(ValueError, match="--leave-out names_other"):
        main(["--out", str(out), "--rows", str(old)])
    refit = main(["--out", str(out), "--rows", str(old), "--leave-out", "names_other"])
    assert set(refit["coefficients"]) == set(FEATURES) - {"names_other"}
    assert refit["fitted"]["features"] == [k for k in FEATURES if k != "names_other"]
    # --fit-on answerable: the unanswerable questions' answers are left out of the fit
    rows = json.loads(kept.read_text(encoding="utf-8"))["rows"]
    mine = main(["--out", str(out), "--rows", str(kept), "--fit-on", "answerable"])
    assert mine["fitted"]["fit_on"] == "answerable" and written["fitted"]["fit_on"] == "all"
    assert mine["fitted"]["confidence"]["answers_fitted"] == sum(r["answerable"] for r in rows)
    assert written["fitted"]["confidence"]["answers_fitted"] == len(rows)
    # --scale-on answerable: the fit is rescaled, and says so
    scaled = main(["--out", str(out), "--rows", str(kept), "--scale-on", "answerable"])
    assert scaled["fitted"]["scale_on"] == "answerable" and written["fitted"]["scale_on"] == "none"
    assert scaled["fitted"]["confidence"]["scaled_on_answerable"]["answers"] == sum(r["answerable"] for r in rows)
    assert set(scaled["fitted"]["cross_checked_answerable_ece"]) == {"plain", "scaled"}
    assert all(0.0 <= share <= 1.0 for share in scaled["fitted"]["cross_checked_right_top"].values())
    # without kept rows the SQuAD train file is needed, and saying so is the whole answer
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "none.json")])
    assert not (tmp_path / "none.json").exists()


def test_a_head_folder_reads_with_its_own_answer_model(tmp_path):
    import json

    from bertsearch.indexer.common.errors import ConfigError
    from bertsearch.search.confidence import MODEL_FILE, answer_model, answer_model_of

    assert answer_model_of(None) == answer_model()
    assert answer_model_of(tmp_path) == answer_model()  # a folder without one: the shipped fit
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    data["threshold"] = 0.5
    (tmp_path / "answer_model.json").write_text(json.dumps(data), encoding="utf-8")
    assert answer_model_of(tmp_path).threshold == 0.5
    (tmp_path / "answer_model.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="unreadable") as caught:
        answer_model_of(tmp_path)
    assert str(tmp_path) not in str(caught.value)


def test_a_reader_handed_to_the_searcher_brings_its_own_answer_model(tmp_path, tiny_qa_path, sample_index):
    import shutil

    from bertsearch.indexer.index import Index
    from bertsearch.search.confidence import MODEL_FILE, answer_model
    from bertsearch.search.reader import Reader
    from bertsearch.search.searcher import Searcher

    head = tmp_path / "head"
    shutil.copytree(tiny_qa_path, head)
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    data["threshold"] = 0.5
    (head / "answer_model.json").write_text(json.dumps(data), encoding="utf-8")
    reader = Reader(head, precision="fp32", max_seq_len=48, stride=12)
    assert reader.model_path == head
    with Searcher(Index.open(sample_index), reader) as searcher:
        assert searcher.threshold == 0.5 and searcher.reader is reader
    # the reader reads, so its fit wins over a qa_model_path set beside it (BERTSEARCH_QA_MODEL_PATH in Searcher.open)
    with Searcher(Index.open(sample_index), reader, qa_model_path=tiny_qa_path) as searcher:
        assert searcher.threshold == 0.5
    # a model handed in without a folder has no fit of its own: the shipped one
    bare = Reader(model=reader.model, tokenizer=reader.tokenizer, precision="fp32")
    assert bare.model_path is None
    with Searcher(Index.open(sample_index), bare) as searcher:
        assert searcher.answer_model == answer_model()


def test_a_wide_character_counts_two_columns_in_how_much_longer_an_answer_may_be():
    from bertsearch.search.training.metrics import answer_matches, columns

    assert columns("TERM信号。") == 10
    assert answer_matches("默认发送 TERM 信号", ["TERM"])
    assert answer_matches("x" * 40 + "TERM", ["TERM"])  # 40 columns more
    assert not answer_matches("x" * 41 + "TERM", ["TERM"])
    assert answer_matches("默" * 20 + "TERM", ["TERM"])  # 20 characters, 40 columns
    assert not answer_matches("默" * 21 + "TERM", ["TERM"])


def test_a_renamed_question_names_the_other_document_as_its_file_is_named():
    from bertsearch.search.training.calibrate import renamed

    assert renamed("How do I do a dry run of wipefs?", "man/util-linux/wipefs.8.txt", "a/lsblk.8.txt") == \
        "How do I do a dry run of lsblk?"
    assert renamed("Which ssh_config option sets it?", "x/ssh_config.5.txt", "y/ls.1.txt") == "Which ls option sets it?"
    assert renamed("Which option sets it?", "x/ssh_config.5.txt", "y/ls.1.txt") is None  # it names nothing
    assert renamed("What does time print?", "x/time.1.txt", "y/ls.1.txt") is None  # "time" names no page
    assert renamed("wipefs or wipefs?", "a/wipefs.8.txt", "b/lsblk.8.txt") == "lsblk or lsblk?"
    assert renamed("wipefs的选项", "a/wipefs.8.txt", "b/lsblk.8.txt") == "lsblk的选项"


def test_the_fusion_fitted_on_technical_questions_ranks_their_documents(sample_index):
    """``--fusion-on technical``: the weight is judged by the rank of each question's document
    (the tiny encoder's vectors are noise, so the lexical side alone finds them)."""
    from bertsearch.search import Searcher
    from bertsearch.search.training.calibrate import GRID, fit_fusion
    questions = [("Which S3 bucket holds the encrypted AES-256 backups?", "backups.txt"),
                 ("How many days are rotated logs kept before logrotate deletes the archive?", "logging.md")]
    with Searcher.open(sample_index) as searcher:
        fusion = fit_fusion(searcher, questions, str, depth=5)  # indexed paths are relative to the folder
    table = fusion["table"]
    assert fusion["questions"] == 2 and set(table) == {str(w) for w in GRID}
    assert table["0.0"] == {"mrr@10": 1.0, "recall@5": 1.0}  # BM25 alone puts each document first
    assert table[str(fusion["dense_weight"])]["mrr@10"] == max(v["mrr@10"] for v in table.values())
    # a target that is no indexed document is never found
    with Searcher.open(sample_index) as searcher:
        missed = fit_fusion(searcher, [(questions[0][0], "absent.txt")], str, 5)
    assert all(v["mrr@10"] == 0.0 for v in missed["table"].values())


def test_question_documents_leave_out_a_question_asked_of_two(tmp_path):
    from bertsearch.search.training.calibrate import question_documents

    data = [{"title": title, "paragraphs": [{"context": "-v is verbose", "qas": [
        {"id": f"{title}-{q}", "question": q, "answers": [{"text": "-v", "answer_start": 0}]}]}]}
        for title, q in (("man/a.1", "What does -v do?"), ("man/b.1", "What does -v do?"),
                         ("man/a.1", "Which option of a is verbose?"), ("Normans", "Where?"))]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"version": "t", "data": data}), encoding="utf-8")
    assert question_documents(path) == {"Which option of a is verbose?": "man/a.1"}


def test_the_fit_ranks_each_questions_answers_as_ask_does():
    from bertsearch.search.training.calibrate import cross_checked

    # Read in the order of an older confidence: the right answer (the higher span logit) came second.
    rng = np.random.default_rng(7)
    rows = []
    for i in range(2000):
        right, wrong = float(rng.normal(1.0, 0.5)), float(rng.normal(-1.0, 0.5))
        features = [{k: 0.0 for k in FEATURES} | {"span_logit": x} for x in (wrong, right)]
        rows.append({"answerable": True, "technical": i % 2 == 0,
                     "answers": [{"features": features[0], "f1": 0.0}, {"features": features[1], "f1": 1.0}]})
    fit = fit_confidence(rows, keep=0.95, answers=2)
    assert fit["coefficients"]["span_logit"] > 0
    assert all(ranked_first(r, fit["intercept"], fit["coefficients"]) is r["answers"][1] for r in rows[:50])
    assert ranked_first({"answers": []}, 0.0, {}) is None
    checked = cross_checked(rows, keep=0.95, answers=2)
    assert all(share > 0.95 for share in checked["right_top"].values())  # answers[0] is never right
