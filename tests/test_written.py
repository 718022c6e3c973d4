"""search/training/written.py: written question-answer pairs as SQuAD articles, the dev split kept out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertsearch.indexer.common.settings import packaged_encoder_path
from bertsearch.search.training.squad import load_squad
from bertsearch.search.training.written import Pair, build, locate, main

TUNE = Path(__file__).parent / "fixtures" / "techdocs_tune"
DEV = Path(__file__).parent / "fixtures" / "techdocs_dev"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(packaged_encoder_path(), local_files_only=True)


def test_the_evidence_places_an_answer_that_occurs_twice() -> None:
    text = "-a  all files\n-b  bytes, not all files\n"
    second = locate(text, Pair("q", "all files", "bytes, not all files", "x"))
    assert second == (text.rindex("all files"), text.rindex("all files") + len("all files"))
    assert locate(text, Pair("q", "bytes", "no such evidence", "x")) == (text.index("bytes"), text.index("bytes") + 5)
    assert locate(text, Pair("q", "all files", "no such evidence", "x")) is None  # twice, no evidence: not guessed


def test_each_pair_is_read_in_its_runtime_chunk_and_in_a_passage(tokenizer) -> None:
    text = (TUNE / "man" / "split.txt").read_text(encoding="utf-8")
    evidence = next(line.strip() for line in text.splitlines() if "numeric-suffixes" in line)
    pairs = [Pair("How do I get numbers instead of letters as split suffixes?", "--numeric-suffixes[=FROM]",
                  evidence, "man/coreutils/split.1.txt", "option")]
    obj, counts = build(pairs, {"man/coreutils/split.1.txt": text}, tokenizer, 200, 40, seed=1, negative_ratio=1.0)
    assert counts["pairs"] == 1 and counts["questions"] == 2 and counts["negatives"] == 1
    examples = load_squad_obj(obj)
    asked = [e for e in examples if e.answers]
    assert len(asked) == 2
    # the negative: the same question, another chunk of the document, without the answer
    (negative,) = [e for e in examples if e.is_impossible]
    assert negative.question == pairs[0].question and "--numeric-suffixes" not in negative.context
    assert negative.context in text
    for e in asked:
        (answer, start), = [(a.text, a.start) for a in e.answers]
        assert e.context[start:start + len(answer)] == "--numeric-suffixes[=FROM]"
    assert all(e.title == "man/coreutils/split.1.txt" for e in examples)
    # the passages the pair is asked of are one group (they compete under shared normalisation)
    assert len({e.group_key for e in examples}) == 1 and len({e.id for e in examples}) == 3


def load_squad_obj(obj: dict) -> list:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "w.json"
        path.write_text(json.dumps(obj), encoding="utf-8")
        return load_squad(path)


def test_a_pair_about_a_reserved_document_is_refused(tokenizer) -> None:
    pair = Pair("Which lsblk option lists all devices?", "-a, --all", "-a, --all", "man/util-linux/lsblk.8.txt")
    with pytest.raises(ValueError, match="reserved"):
        build([pair], {pair.path: "-a, --all  list all devices"}, tokenizer, 200, 40)


def test_generated_articles_of_reserved_documents_are_left_out(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    (sources / "man" / "coreutils").mkdir(parents=True)
    (sources / "man" / "coreutils" / "wc.1.txt").write_text((TUNE / "man" / "wc.txt").read_text(encoding="utf-8"))
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps({"questions": [
        {"q": "Which wc option counts words?", "answer": "-w, --words", "evidence": "-w, --words", "path": "man/coreutils/wc.1.txt"}]}))
    generated = tmp_path / "gen.json"
    generated.write_text(json.dumps({"version": "v", "data": [
        {"title": "man/util-linux/lsblk.8.txt", "paragraphs": []}, {"title": "man/sed/sed.1.txt", "paragraphs": []}]}))
    out = tmp_path / "out.json"
    assert main([str(sources), str(questions), "--out", str(out), "--add", str(generated), "--repeat", "2"]) == 0
    titles = [a["title"] for a in json.loads(out.read_text())["data"]]
    assert titles == ["man/coreutils/wc.1.txt", "man/coreutils/wc.1.txt#1", "man/sed/sed.1.txt"]
    # a held-out share: the same documents techqa holds out, their pairs in OUT.heldout.json
    assert main([str(sources), str(questions), "--out", str(out), "--holdout-frac", "1.0"]) == 0
    assert json.loads(out.read_text())["data"] == []
    assert [a["title"] for a in json.loads((tmp_path / "out.heldout.json").read_text())["data"]] == ["man/coreutils/wc.1.txt"]


def test_the_shipped_written_questions_never_touch_the_dev_split() -> None:
    from bertsearch.search.training.reserved import is_reserved
    from bertsearch.search.training.written import load_pairs

    folder = Path(__file__).parent.parent / "search" / "training" / "written_questions"
    pairs = load_pairs(sorted(folder.glob("*.json")))
    assert len(pairs) > 2000
    assert not [p.path for p in pairs if is_reserved(p.path)]
    assert all(p.question and p.answer and p.answer in p.evidence for p in pairs)


def test_the_chinese_written_questions_touch_neither_the_tuning_nor_the_report_documents() -> None:
    from bertsearch.search.training.written import load_pairs

    root = Path(__file__).parent.parent
    pairs = load_pairs(sorted((root / "search" / "training" / "written_questions" / "zh").glob("*.json")))
    tuning = {p.name for p in (root / "tests" / "fixtures" / "zh_tune").rglob("*") if p.is_file()}
    assert len(pairs) > 1500
    # manpages-zh and debian-edu-doc-zh-cn only: no lilypond, no linuxcnc
    assert {p.path.split("/")[0] for p in pairs} == {"man", "debian-edu"}
    assert {p.path for p in pairs if p.path.startswith("debian-edu/")} == {"debian-edu/debian-edu-bullseye-manual.html"}
    assert not [p.path for p in pairs if Path(p.path).name in tuning]
    # the bullseye manual is the bookworm one's older edition: none of the tuning set's facts is asked
    tune = json.loads((root / "tests" / "fixtures" / "zh_tune_questions.json").read_text(encoding="utf-8"))
    edu_answers = {a for q in tune["questions"] if q["path"].startswith("debian-edu/") for a in q["answers"]}
    assert len(edu_answers) >= 12
    identifiers = {a for a in edu_answers if not a.isalpha()}  # addresses, sizes, paths, packages
    assert not [p.answer for p in pairs if p.answer in edu_answers or any(a in p.answer for a in identifiers)]
    assert all(p.question and p.answer and p.answer in p.evidence for p in pairs)


def test_retrieved_passages_without_the_answer_become_negatives(tmp_path: Path, tiny_bert_path: str) -> None:
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.index import Index
    from bertsearch.search.searcher import Searcher

    sources = tmp_path / "sources"
    for name in ("wc", "split", "head"):
        (sources / "man" / "coreutils").mkdir(parents=True, exist_ok=True)
        (sources / "man" / "coreutils" / f"{name}.1.txt").write_text((TUNE / "man" / f"{name}.txt").read_text(encoding="utf-8"))
    # pages that would be retrieved for the question, without its answer, but may not be negatives:
    # another page named wc (it may answer in other words) and a page the dev split reserves
    wc = (TUNE / "man" / "wc.txt").read_text(encoding="utf-8").replace("-c, --bytes", "-k, --kbytes")
    for folder, marker in (("manpages", "twinpage"), ("util-linux", "reservedpage")):
        (sources / "man" / folder).mkdir(parents=True)
        (sources / "man" / folder / ("wc.1.txt" if folder == "manpages" else "wcl.1.txt")).write_text(
            wc.replace("print", f"print {marker}"), encoding="utf-8")
    with Index.open(Settings(index_dir=tmp_path / "index", model_path=tiny_bert_path), create=True) as index:
        index.update(sources)
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps({"questions": [
        {"q": "Which wc option prints the byte counts?", "answer": "-c, --bytes", "evidence": "-c, --bytes",
         "path": "man/coreutils/wc.1.txt"}]}))
    out = tmp_path / "out.json"
    assert main([str(sources), str(questions), "--out", str(out), "--negative-ratio", "0",
                 "--negatives-index", str(tmp_path / "index"), "--retrieved-negatives", "3"]) == 0
    examples = load_squad(out)
    retrieved = [e for e in examples if "-ret" in e.id]
    texts = {p.name: p.read_text(encoding="utf-8") for p in (sources / "man" / "coreutils").iterdir()}
    # three of the passages the index retrieves for the question, none holding the answer's text
    # (head's "-c, --bytes=[-]NUM" holds it too, and is left out with wc's own entry)
    assert len(retrieved) == 3
    with Searcher.open(Settings(index_dir=tmp_path / "index")) as searcher:
        unfiltered = [h.text for h in searcher.retrieve("Which wc option prints the byte counts?", 10, mode="hybrid")]
    assert any("-c, --bytes" in t for t in unfiltered)  # the answer's passage was there to be left out
    assert any("twinpage" in t or "reservedpage" in t for t in unfiltered)  # and so were the others
    for e in retrieved:
        assert "twinpage" not in e.context and "reservedpage" not in e.context
        assert e.is_impossible and not e.answers and e.question == "Which wc option prints the byte counts?"
        assert "-c, --bytes" not in e.context.lower()
        assert any(e.context in text for text in texts.values())
    asked = [e for e in examples if e.answers]
    assert asked  # the pair itself is still asked where its answer is
    assert {e.group_key for e in examples} == {asked[0].group_key}  # and competes with the retrieved passages
