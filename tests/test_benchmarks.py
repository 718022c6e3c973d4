"""The benchmark scripts keep working: each runs ``--smoke`` on a tiny SQuAD file with the tiny BERT."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load_common():
    # By file, not by sys.path: benchmarks/ holds scripts named like common modules (index, search).
    spec = importlib.util.spec_from_file_location("bertsearch_benchmarks_common", BENCHMARKS / "_common.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_common = _load_common()

_FACTS = [
    ("Rivers", "The Nile is the longest river in Africa. It flows north into the Mediterranean Sea.",
     "Where does the Nile flow?", "into the Mediterranean Sea"),
    ("Rivers", "The Amazon carries more water than any other river. Its basin covers much of Brazil.",
     "Which river carries the most water?", "The Amazon"),
    ("Rivers", "The Danube passes through ten countries, more than any other river in the world.",
     "How many countries does the Danube pass through?", "ten"),
    ("Mountains", "Mount Everest is 8,849 metres high. It lies on the border of Nepal and China.",
     "How high is Mount Everest?", "8,849 metres"),
    ("Mountains", "K2 is the second highest mountain. Climbers call it the savage mountain.",
     "What do climbers call K2?", "the savage mountain"),
    ("Mountains", "Mont Blanc is the highest mountain of the Alps, at 4,806 metres.",
     "What is the highest mountain of the Alps?", "Mont Blanc"),
]


@pytest.fixture(scope="module")
def squad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SQuAD v1.1-format dev file (6 paragraphs, 12 questions) and a v2.0-format one with
    an unanswerable question for each paragraph."""
    folder = tmp_path_factory.mktemp("squad")
    articles: dict[str, list] = {}
    for n, (title, context, question, answer) in enumerate(_FACTS):
        qas = [
            {"id": f"q{n}a", "question": question,
             "answers": [{"text": answer, "answer_start": context.index(answer)}]},
            {"id": f"q{n}b", "question": f"{question.rstrip('?')}, according to the text?",
             "answers": [{"text": answer, "answer_start": context.index(answer)}]},
        ]
        articles.setdefault(title, []).append({"context": context, "qas": qas})
    data = {"version": "1.1", "data": [{"title": t, "paragraphs": p} for t, p in articles.items()]}
    with gzip.open(folder / "dev-v1.1.json.gz", "wt", encoding="utf-8") as f:
        json.dump(data, f)
    for n, paragraph in enumerate(p for ps in articles.values() for p in ps):
        paragraph["qas"].append({"id": f"u{n}", "question": "Who painted the ceiling of the train station?",
                                  "answers": [], "is_impossible": True})
    with gzip.open(folder / "dev-v2.0.json.gz", "wt", encoding="utf-8") as f:
        json.dump({"version": "v2.0", **data}, f)
    with gzip.open(folder / "train-v1.0-reconstructed.json.gz", "wt", encoding="utf-8") as f:
        json.dump(data, f)  # stands in for the train set where a benchmark needs one (ann.py)
    return folder


def _run(script: str, tmp_path: Path, *args: str) -> dict:
    output = tmp_path / f"{script}.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), "--smoke", "--work-dir", str(tmp_path / "work"),
         "--output", str(output), *args],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert printed == json.loads(output.read_text(encoding="utf-8"))
    assert printed["benchmark"] == script and printed["smoke"] is True
    assert printed["machine"]["load_average_at_start"] is not None
    return printed


@pytest.mark.slow
def test_index_benchmark(tmp_path: Path, squad_dir: Path, tiny_bert_path: str) -> None:
    result = _run("index", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path, "--ray",
                  "--writer-db", f"sqlite:///{tmp_path / 'writer.db'}")
    assert result["documents"] == 6
    assert result["ray"]["documents_encoded"] == 6 and result["ray"]["chunks_written"] == result["chunks"]
    assert result["ray_overhead"]["update_s_ratio"] > 0
    assert result["writer_commit_rate"]["chunks"] == result["chunks"] and result["writer_commit_rate"]["chunks_per_s"] > 0
    assert result["cold"]["documents_encoded"] == 6 and result["cold"]["chunks_written"] == result["chunks"]
    assert result["warm"]["unchanged"] == 6 and result["warm"]["chunks_written"] == 0
    assert result["cold"]["peak_rss_mb"] > 0
    assert "reference_sentence_transformers" in result


@pytest.mark.slow
def test_filter_benchmark(tmp_path: Path, squad_dir: Path, tiny_bert_path: str) -> None:
    result = _run("filter", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path, "--queries", "4")
    assert result["chunks"] == 300 and result["matching_chunks"] == 10 and result["filtered_hits_all_match"]
    for key in ("search_hybrid", "search_dense", "search_lexical", "faiss_only", "lexical_only"):
        assert result[key]["filtered"]["median_ms"] > 0 and result[key]["ratio_median"] > 0


@pytest.mark.slow
def test_search_benchmark_and_plot(tmp_path: Path, squad_dir: Path, tiny_bert_path: str) -> None:
    result = _run("search", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path,
                  "--sizes", "40,100", "--queries", "4", "--index-type", "hnsw")
    assert [row["chunks"] for row in result["sizes"]] == [40, 100]
    for row in result["sizes"]:
        assert row["index_type"] == "hnsw"
        change = row["one_document_change"]
        assert change["faiss_file_rewritten"] is False and change["served_after_commit_ms"] < 30_000
        for key in ("library_search", "faiss_only", "http_search"):
            assert row[key]["n"] == 4 and row[key]["median_ms"] > 0
        assert row["faiss_bytes_per_chunk"] > 0
    assert "server_rss_bytes_per_chunk" in result["memory_per_chunk"]
    side = result["sizes"][-1]["http_side_by_side"]  # the largest size, beside a copy of the smallest
    assert "http_side_by_side" not in result["sizes"][0] and side["first_chunks"] == 40
    assert side["first"]["n"] == side["this"]["n"] == 4 and side["ratio_median"] > 0

    png = tmp_path / "latency.png"
    subprocess.run([sys.executable, str(BENCHMARKS / "plot.py"), "--input", str(tmp_path / "search.json"),
                    "--output", str(png)], check=True, capture_output=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "pair"), [("auto", False), ("int8", False), ("auto", True)])
def test_ask_benchmark(tmp_path: Path, squad_dir: Path, tiny_bert_path: str, tiny_qa_path: str, precision: str,
                       pair: bool) -> None:
    result = _run("ask", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path,
                  "--qa-model", tiny_qa_path, "--precision", precision,
                  *(["--large-reader", tiny_qa_path] if pair else []))
    if pair:  # the library's searcher read with the pair (the server is given the same option)
        assert result["qa_model"]["rereads"] == "3" and result["large_reader"]
    else:
        assert "rereads" not in result["qa_model"] and result["large_reader"] is None
    assert set(result["library_ask"]) == set(result["http_ask"]) == {"1", "5", "10"}
    assert result["http_ask"]["5"]["n"] == result["questions"]
    assert result["precision"] == precision
    if precision == "int8":  # the reader timed is the int8 one, over an index of int8 vectors
        assert result["qa_model"]["precision"] == "int8" and result["corpus"]["chunks"] > 0


@pytest.mark.slow
def test_reader_size_benchmark(tmp_path: Path, squad_dir: Path, tiny_bert_path: str, tiny_qa_path: str) -> None:
    result = _run("reader_size", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path,
                  "--qa-model", tiny_qa_path, "--precisions", "fp32")
    timed = result["by_precision"]["fp32"]
    assert set(timed) == {"shipped", "multilingual", "base-768"}
    assert all(t["n"] == result["questions"] == 3 for t in timed.values())
    assert timed["shipped"]["x_shipped_p50"] == 1.0
    assert (timed["multilingual"]["layers"], timed["multilingual"]["hidden"]) == (12, 384)
    assert timed["base-768"]["hidden"] == 768 and timed["base-768"]["windows_per_question"] >= 1


def test_combine_readers_benchmark(tmp_path: Path, squad_dir: Path, tiny_qa_path: str) -> None:
    """A head combined with itself answers as it does alone at every weight; each weight is scored."""
    result = _run("combine_readers", tmp_path, "--large", tiny_qa_path, "--small", tiny_qa_path,
                  "--data", str(squad_dir / "dev-v1.1.json.gz"), "--precision", "fp32", "--weights", "0,0.5,1")
    assert result["questions"] == 12 and set(result["readers"]) == {"small", "large"}
    rows = result["by_weight"]
    assert [r["large_weight"] for r in rows] == [0.0, 0.5, 1.0]
    assert len({(r["f1"], r["exact"]) for r in rows}) == 1


@pytest.mark.parametrize("weights", ["a", "0,,1", "0,1.5"])
def test_combine_readers_refuses_bad_weights_before_reading(tmp_path: Path, tiny_qa_path: str, weights: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "combine_readers.py"), "--large", tiny_qa_path,
                           "--data", str(tmp_path / "missing.json"), "--weights", weights],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--weights: comma-separated numbers from 0 to 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_combine_readers_weights_0_and_1_are_each_heads_eval_qa(tmp_path: Path, squad_dir: Path, tiny_qa_path: str) -> None:
    import shutil

    import torch
    from transformers import BertForQuestionAnswering

    from bertsearch.search.training.evaluate import evaluate_qa_model

    other = tmp_path / "other-qa"
    shutil.copytree(tiny_qa_path, other)
    model = BertForQuestionAnswering.from_pretrained(other)
    with torch.no_grad():
        model.qa_outputs.weight.mul_(-1.0)  # another head: the opposite preferences
    model.save_pretrained(other)
    data = str(squad_dir / "dev-v1.1.json.gz")
    result = _run("combine_readers", tmp_path, "--large", str(other), "--small", tiny_qa_path, "--data", data,
                  "--precision", "fp32", "--weights", "0,1")
    by_weight = {r["large_weight"]: r for r in result["by_weight"]}
    for weight, folder in ((0.0, tiny_qa_path), (1.0, str(other))):
        alone = evaluate_qa_model(folder, data, precision="fp32")
        assert (by_weight[weight]["exact"], by_weight[weight]["f1"]) == (round(alone["exact"], 2), round(alone["f1"], 2))


def test_eval_qa_of_a_reader_pair_scores_as_the_benchmark_measured_it(tmp_path: Path, squad_dir: Path,
                                                                      tiny_qa_path: str) -> None:
    """`eval-qa --large-reader` (the runtime's ReaderPair) gives combine_readers' score at its weight."""
    import shutil

    import torch
    from transformers import BertForQuestionAnswering

    from bertsearch.search.reader_pair import SECOND_WEIGHT
    from bertsearch.search.training.evaluate import evaluate_qa_model

    other = tmp_path / "other-qa"
    shutil.copytree(tiny_qa_path, other)
    model = BertForQuestionAnswering.from_pretrained(other)
    with torch.no_grad():
        model.qa_outputs.weight.mul_(-1.0)
    model.save_pretrained(other)
    data = str(squad_dir / "dev-v1.1.json.gz")
    result = _run("combine_readers", tmp_path, "--large", str(other), "--small", tiny_qa_path, "--data", data,
                  "--precision", "fp32", "--weights", f"0,{SECOND_WEIGHT}")
    by_weight = {r["large_weight"]: r for r in result["by_weight"]}
    paired = evaluate_qa_model(tiny_qa_path, data, precision="fp32", large_reader=str(other))
    alone = evaluate_qa_model(tiny_qa_path, data, precision="fp32")
    assert paired["f1"] != alone["f1"]  # the second head changed some answers: a real combination is compared
    assert (by_weight[SECOND_WEIGHT]["exact"], by_weight[SECOND_WEIGHT]["f1"]) == (round(paired["exact"], 2),
                                                                                  round(paired["f1"], 2))
    assert (by_weight[0.0]["exact"], by_weight[0.0]["f1"]) == (round(alone["exact"], 2), round(alone["f1"], 2))


@pytest.mark.slow
def test_eval_benchmarks(tmp_path: Path, squad_dir: Path, tiny_bert_path: str, tiny_qa_path: str) -> None:
    retrieval = _run("eval_retrieval", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path)
    assert retrieval["documents"] == 6 and retrieval["questions"] == 12
    assert set(retrieval["modes"]) == {"dense", "lexical", "hybrid"}
    for scores in retrieval["modes"].values():
        assert 0 <= scores["recall@1"] <= scores["recall@5"] <= scores["recall@20"] == 1.0
    assert retrieval["settings"]["chunk_header"] == "title"  # the default of a new index
    plain = _run("eval_retrieval", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path,
                 "--chunk-header", "none")  # an index of its own, beside the other
    assert plain["settings"]["chunk_header"] == "none" and plain["documents"] == 6
    # The corpus's documents are named by number (``<pid>.txt``): no letter, so no header, the same vectors.
    assert plain["modes"] == retrieval["modes"]
    openqa = _run("eval_openqa", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path,
                  "--qa-model", tiny_qa_path)
    assert openqa["questions"] == 5 and 0 <= openqa["exact_match"] <= openqa["f1"] <= 100
    assert openqa["unanswerable_questions"] == 5
    sweep = openqa["threshold_sweep"]
    assert sweep[0]["threshold"] == 0 and sweep[0]["f1"] == openqa["f1_without_threshold"]
    assert openqa["f1"] <= openqa["f1_without_threshold"]  # abstentions count as wrong
    # a higher threshold answers fewer and leaves more unanswered
    assert [r["answerable_answered"] for r in sweep] == sorted((r["answerable_answered"] for r in sweep), reverse=True)
    assert [r["unanswerable_abstained"] for r in sweep] == sorted(r["unanswerable_abstained"] for r in sweep)


_MAN_PAGE = """OPTIONS
   -k, --keep
          Keep (don't delete) input files during compression or decompression.

   -f, --force
          Force compression or decompression even if the file has multiple links.

EXIT STATUS
   0      if the command succeeded
   1      if an error occurred
"""


@pytest.mark.slow
def test_eval_definitions_benchmark(tmp_path: Path, tiny_bert_path: str, tiny_qa_path: str) -> None:
    prose = "The archive tool writes its output next to the input. It was first released in 1993."
    qas = [("Which option keeps the input files?", "-k, --keep", "option", _MAN_PAGE),
           ("What is the exit status when an error occurred?", "1", "status", _MAN_PAGE),
           ("When was the archive tool first released?", "1993", "constant", prose)]
    paragraphs = [{"context": _MAN_PAGE, "qas": []}, {"context": prose, "qas": []}]
    for n, (question, answer, kind, context) in enumerate(qas):
        paragraphs[context is prose]["qas"].append(
            {"id": f"h{n}", "question": question, "kind": kind,
             "answers": [{"text": answer, "answer_start": context.index(answer)}]})
    paragraphs[1]["qas"].append({"id": "u0", "question": "Who wrote it?", "answers": [], "is_impossible": True,
                                 "kind": "constant"})
    heldout = tmp_path / "heldout.json"
    heldout.write_text(json.dumps({"version": "v2.0", "data": [{"title": "gzip.1", "paragraphs": paragraphs}]}))
    result = _run("eval_definitions", tmp_path, "--heldout", str(heldout), "--model", tiny_bert_path,
                  "--qa-model", tiny_qa_path)
    overall = result["overall"]
    assert result["questions_in_file"] == result["questions"] == overall["n"] == 3  # the unanswerable one skipped
    assert set(result["by_kind"]) == {"option", "status", "constant"}
    assert overall["asks_for_accepts"] == 2 and overall["definitions_answer"] == 2
    for key in ("reader", "definitions_overall", "combined", "ask", "ask_above_threshold"):
        assert 0 <= overall[key] <= 1
    assert overall["ask_above_threshold"] <= overall["ask"]
    assert result["by_kind"]["constant"]["definitions_on_answered"] is None
    assert result["qa_model"] == tiny_qa_path  # the head asked for read every answer, with its own fit

    missing = subprocess.run([sys.executable, str(BENCHMARKS / "eval_definitions.py"), "--heldout",
                              str(tmp_path / "nowhere.json")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_missing_squad_is_a_clear_skip(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "eval_retrieval.py"), "--squad-dir", str(tmp_path / "nowhere"),
         "--output", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SQuAD v1.1 dev not found" in proc.stderr
    assert json.loads(proc.stdout)["skipped"].startswith("SQuAD v1.1 dev not found")
    assert not (tmp_path / "out.json").exists()


def test_latency_stats() -> None:
    stats = _common.latency_stats([0.001 * i for i in range(1, 101)])
    assert stats["n"] == 100
    assert stats["median_ms"] == pytest.approx(50.5)
    assert stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"] == 100.0


def test_corpus_round_trip(tmp_path: Path, squad_dir: Path) -> None:
    paragraphs, questions = _common.load_squad(_common.squad_v1_dev(squad_dir))
    assert len(paragraphs) == 6 and len(questions) == 12
    folder = _common.write_corpus(paragraphs, tmp_path / "docs")
    files = sorted(folder.rglob("*.txt"))
    assert len(files) == 6
    for path in files:
        assert path.read_text(encoding="utf-8") == paragraphs[_common.pid_of_path(str(path))].context
    mtimes = [p.stat().st_mtime_ns for p in files]
    _common.write_corpus(paragraphs, folder)  # unchanged files are not rewritten (a warm index sees nothing new)
    assert [p.stat().st_mtime_ns for p in files] == mtimes


@pytest.mark.slow
def test_load_benchmark_loses_no_request(tmp_path: Path, tiny_bert_path: str, tiny_qa_path: str) -> None:
    """8 clients on a real server while `bertsearch index` commits 20 generations and rebuilds."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "load.py"), "--smoke", "--work-dir", str(tmp_path / "work"),
         "--model", tiny_bert_path, "--qa-model", tiny_qa_path, "--clients", "8", "--generations", "20",
         "--max-seconds", "600"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert printed["writer"]["index_runs"] == 20 and printed["final_generation"] == printed["written_generation"] > 20
    assert printed["requests"] > 100 and printed["failed_requests"] == 0, printed["failure_examples"]
    assert printed["routes"]["/search"]["p99_ms"] > 0 and printed["routes"]["/ask"]["p99_ms"] > 0


@pytest.mark.slow
def test_ann_benchmark(tmp_path: Path, squad_dir: Path, tiny_bert_path: str) -> None:
    result = _run("ann", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path, "--sizes", "500",
                  "--queries", "6", "--ef", "16,64", "--ivf", "8", "--nprobe", "1,8")
    kinds = result["sizes"]["500"]["kinds"]
    assert kinds["flat"]["faiss_only"]["recall_at_10"] == 1.0
    for kind in ("hnsw", "hnsw-sq8"):
        assert 0 < kinds[kind]["ef_search_64"]["recall_at_10"] <= 1 and kinds[kind]["file_bytes"] > 0
        assert kinds[kind]["load_process_peak_rss_mb"] > 0 and kinds[kind]["one_document_change_ms"] > 0
    ivf = result["sizes"]["500"]["ivf_probe"]["IVF8_HNSW32,SQ8"]  # searching every list: only SQ8's rounding is lost
    assert ivf["nprobe_8"]["recall_at_10"] >= max(0.8, ivf["nprobe_1"]["recall_at_10"]) and ivf["file_bytes"] > 0


@pytest.mark.slow
def test_embed_benchmark(tmp_path: Path, squad_dir: Path, tiny_bert_path: str) -> None:
    result = _run("embed", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path)
    assert result["batches"] >= 1 and result["min_cosine_http_vs_library"] >= 0.999
    assert result["library"]["texts_per_second"] > 0 and result["http_embed"]["texts_per_second"] > 0


@pytest.mark.slow
def test_ingest_benchmark(tmp_path: Path, squad_dir: Path, tiny_bert_path: str) -> None:
    result = _run("ingest", tmp_path, "--squad-dir", str(squad_dir), "--model", tiny_bert_path, "--batch", "4")
    http, files = result["http"], result["index_command"]
    assert result["documents"] == 6 and http["batch_latency"]["n"] == 2
    assert http["chunks_written"] == http["index_chunks"] == http["faiss_vectors"] == files["chunks_written"]
    assert http["encoded_again"] == 0 and result["ratio"]["http_over_index_update"] > 0


def test_lexical_cjk_benchmark(tmp_path: Path) -> None:
    fixture = BENCHMARKS.parent / "tests" / "fixtures" / "zh_tune_questions.json"
    questions = json.loads(fixture.read_text(encoding="utf-8"))["questions"]
    result = _run("lexical_cjk", tmp_path, "--repeat", "1")
    assert result["chunks"] == 300 and result["queries"] == len(questions) and result["repeat"] == 1
    for cut in ("cjk", "words"):
        assert result["build"][cut]["chunks"] == 300 and result["build"][cut]["disk_bytes"] > 0
        assert result["search"][cut]["n"] == len(questions) and result["search"][cut]["median_ms"] > 0
    cjk, words = result["search"]["cjk"], result["search"]["words"]
    assert cjk["queries_with_hits"] == 1.0 and cjk["mean_hits"] > words["mean_hits"]
    assert words["queries_with_hits"] < 1.0  # a question's Han run is rarely a run of the text
    assert result["ratio_cjk_over_words"]["p50"] > 0


def test_chunk_header_benchmark(tmp_path: Path, tiny_bert_path: str) -> None:
    from bertsearch.search.training.techqa import held_out
    from bertsearch.search.training.written import load_pairs

    written = BENCHMARKS.parent / "search" / "training" / "written_questions"
    pairs = [p for p in load_pairs(sorted(written.glob("*.json"))) if held_out(p.path, 0.2)][:20]
    sources = tmp_path / "sources"
    for p in pairs:  # each asked page holds its pairs' evidence
        (sources / p.path).parent.mkdir(parents=True, exist_ok=True)
        with (sources / p.path).open("a", encoding="utf-8") as f:
            f.write(p.evidence + "\n\n")
    (sources / "man" / "other.1.txt").write_text("a page nobody asks about\n", encoding="utf-8")
    result = _run("eval_chunk_header", tmp_path, "--lang", "en", "--sources", str(sources), "--model", tiny_bert_path)
    asked = {p.path for p in pairs}
    assert result["questions"] == len(pairs) and result["documents_asked"] == len(asked)
    none, title = result["headers"]["none"], result["headers"]["title"]
    assert (none["chunk_header"], title["chunk_header"]) == ("none", "title")
    assert none["documents"] == title["documents"] == len(asked)  # --smoke: the asked pages alone
    assert none["chunks"] == title["chunks"] > 0
    for scores in (none["dense"], none["hybrid"], title["dense"], title["hybrid"]):
        assert 0 <= scores["page_top1"] <= scores["page_top5"] <= 1
