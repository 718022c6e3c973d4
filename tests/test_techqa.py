"""search/training/techqa.py: SQuAD questions from definition-list entries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bertsearch.search.training.squad import load_squad
from bertsearch.search.training.techqa import build, held_out, main, read_documents, rewrite

TUNE = Path(__file__).parent / "fixtures" / "techdocs_tune"


def _items(obj: dict) -> list[tuple[str, dict]]:
    return [(p["context"], q) for a in obj["data"] for p in a["paragraphs"] for q in p["qas"]]


def test_answers_lie_at_their_offsets_and_are_whole_terms() -> None:
    train, _, counts = build(read_documents([TUNE]), seed=0, max_per_document=60)
    items = _items(train)
    assert counts["documents"] == 17 and counts["negatives"] > 0
    assert counts["questions:option"] > 100 and counts["questions:function"] > 20
    for context, qa in items:
        for answer in qa["answers"]:
            start = answer["answer_start"]
            assert context[start:start + len(answer["text"])] == answer["text"]
            assert answer is not qa["answers"][0] or not any(m in answer["text"] for m in ("`", "::", "**", "##"))
        if qa["answers"]:
            term = qa["answers"][0]["text"]
            assert term.lower() not in qa["question"].lower()
            assert 60 <= len(context.split()) <= 260, len(context.split())
        else:
            assert qa["is_impossible"]
    questions = {q["question"]: q["answers"][0]["text"] for _, q in items if q["answers"]}
    assert questions.get("Which split option generates suffixes of length N?", "--suffix-length") == "--suffix-length"
    keep = [(q, a) for q, a in questions.items() if a == "--no-clobber"]
    assert keep, "cp --no-clobber has questions"


def test_neighbouring_entries_are_in_the_passage() -> None:
    train, _, _ = build(read_documents([TUNE / "man" / "split.txt"]), seed=0)
    for context, qa in _items(train):
        if qa["answers"] and qa["kind"] == "option":
            assert context.count("\n       -") + context.count("\n       --") >= 2, context


def test_output_is_deterministic_and_capped() -> None:
    docs = read_documents([TUNE])
    first = build(docs, seed=3, max_per_document=10)
    again = build(read_documents([TUNE]), seed=3, max_per_document=10)
    assert json.dumps(first[0]) == json.dumps(again[0])
    for article in first[0]["data"]:
        answerable = [q for p in article["paragraphs"] for q in p["qas"] if q["answers"]]
        assert len(answerable) <= 10
    assert json.dumps(build(docs, seed=4, max_per_document=10)[0]) != json.dumps(first[0])


def test_rewrite_descriptions_into_questions() -> None:
    assert rewrite("Keep (don't delete) input files.").third == "keeps input files"
    assert rewrite("Keep (don't delete) input files.").base == "keep input files"
    assert rewrite("do not create any files").third == "does not create any files"
    assert rewrite("Specifies the port number.").base == "specify the port number"
    assert rewrite("display this help and exit") is None
    assert rewrite("struct sockaddr_in // get the address") is None


def test_cli_holdout_and_squad_mix(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(TUNE, sources)
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"version": "1.1", "data": [
        {"title": f"T{i}", "paragraphs": [{"context": "Paris is in France.",
                                            "qas": [{"id": f"s{i}", "question": "Where is Paris?",
                                                     "answers": [{"text": "France", "answer_start": 12}]}]}]}
        for i in range(5)]}))
    out = tmp_path / "techqa.json"
    assert main(["--out", str(out), "--holdout-frac", "0.3", "--mix-squad", str(squad), "--squad-limit", "2",
                 str(sources)]) == 0
    train = json.loads(out.read_text())
    heldout = json.loads((tmp_path / "techqa.heldout.json").read_text())
    train_titles = {a["title"] for a in train["data"]}
    held_titles = {a["title"] for a in heldout["data"]}
    assert held_titles and not train_titles & held_titles
    assert all(held_out(t, 0.3) for t in held_titles)
    assert sum(t.startswith("T") for t in train_titles) == 2
    examples = load_squad(out)  # what train-qa reads
    assert any(e.is_impossible for e in examples) and any(e.answers for e in examples)
