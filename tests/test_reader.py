"""Reader plumbing with the tiny QA model, and QA model export/loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bertsearch.indexer.common.errors import ModelLoadError
from bertsearch.search.qa_head import default_qa_model_path, load_qa_model
from bertsearch.search.training.export import save_qa_model
from bertsearch.search.reader import Reader, ReaderSpan

PASSAGES = [
    "The Eiffel Tower was finished in 1889. It stands in Paris.",
    " ".join(f"Line {i}: the tower is made of wrought iron and painted brown." for i in range(20)),
    "",
]


@pytest.fixture(scope="module")
def reader(tiny_qa_path: str) -> Reader:
    return Reader(tiny_qa_path, precision="fp32", max_seq_len=48, stride=12, batch_size=4)


def test_read_returns_spans_that_map_back_to_the_passages(reader: Reader) -> None:
    spans = reader.read("When was the tower finished?", PASSAGES, top_n=50)
    assert spans and len(spans) <= 50
    assert all(isinstance(s, ReaderSpan) for s in spans)
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    for s in spans:
        assert s.text == PASSAGES[s.passage_index][s.start : s.end]
        assert 0.0 <= s.score <= 1.0 and 0.0 <= s.null_score <= 1.0
    assert {s.passage_index for s in spans} <= {0, 1}
    assert len({(s.passage_index, s.start, s.end) for s in spans}) == len(spans)


def test_spans_carry_their_raw_logit(reader: Reader) -> None:
    # One passage in one window: the raw logit and the window's probability differ by the window's
    # normaliser, the same for every span of that window.
    spans = reader.read("When was the tower finished?", PASSAGES[:1], top_n=5)
    gaps = [s.logit - np.log(s.score) for s in spans]
    assert len(spans) == 5 and np.allclose(gaps, gaps[0], atol=1e-4)


def test_top_n_threshold_and_empty_input(reader: Reader) -> None:
    assert len(reader.read("What?", PASSAGES, top_n=3)) == 3
    assert reader.read("What?", PASSAGES, threshold=1.01) == []
    assert reader.read("What?", []) == []
    assert reader.read("   ", PASSAGES) == []


def test_batching_does_not_change_results(tiny_qa_path: str, reader: Reader) -> None:
    one_by_one = Reader(tiny_qa_path, precision="fp32", max_seq_len=48, stride=12, batch_size=1)
    a = reader.read("Where?", PASSAGES, top_n=10)
    b = one_by_one.read("Where?", PASSAGES, top_n=10)
    assert [(s.passage_index, s.start, s.end) for s in a] == [(s.passage_index, s.start, s.end) for s in b]
    assert np.allclose([s.score for s in a], [s.score for s in b], atol=1e-5)


def test_missing_model_folder_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no QA model"):
        load_qa_model(tmp_path / "nothing")


@pytest.mark.slow
def test_the_shipped_head_loads() -> None:
    # The package ships its head (search/qa_model/); a missing one is a packaging fault, not a skip.
    assert (default_qa_model_path() / "config.json").is_file()
    model, tokenizer = load_qa_model(None)
    assert model.config.model_type == "bert" and model.config.num_hidden_layers == 6
    assert tokenizer("--keep")["input_ids"][0] == tokenizer.cls_token_id


def test_a_missing_default_head_says_how_to_make_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bertsearch.search import qa_head

    monkeypatch.setattr(qa_head, "default_qa_model_path", lambda: tmp_path / "qa_model")
    with pytest.raises(ModelLoadError, match="train-qa"):
        load_qa_model(None)


def test_export_round_trip_keeps_the_outputs(tiny_qa_path: str, tmp_path: Path) -> None:
    import torch

    model, tokenizer = load_qa_model(tiny_qa_path)
    out = save_qa_model(model, tokenizer, tmp_path / "export", dtype="float32", card="# card\n")
    assert (out / "MODEL_CARD.md").read_text() == "# card\n"
    again, _ = load_qa_model(out)
    ids = torch.tensor([[101, 2054, 102, 1996, 3578, 102]])
    with torch.inference_mode():
        assert torch.allclose(model(input_ids=ids).start_logits, again(input_ids=ids).start_logits, atol=1e-6)


@pytest.mark.slow
def test_minilm_export_drops_the_packaged_word_embeddings(minilm_path: str, tmp_path: Path) -> None:
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering

    model = BertForQuestionAnswering.from_pretrained(minilm_path, attn_implementation="eager").eval()
    out = save_qa_model(model, AutoTokenizer.from_pretrained(minilm_path), tmp_path / "export")
    size = sum(f.stat().st_size for f in out.iterdir())
    assert size < 25 * 1024 * 1024
    again, _ = load_qa_model(out)
    assert torch.equal(again.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)
    ids = torch.tensor([[101, 2054, 102, 1996, 3578, 102]])
    with torch.inference_mode():
        a, b = model(input_ids=ids).start_logits, again(input_ids=ids).start_logits
    assert torch.allclose(a, b, atol=0.1)  # bf16 storage


@pytest.mark.parametrize("text,start,end,expected", [
    ("use ffi_closure_alloc now", 4, 7, "ffi_closure_alloc"),  # word pieces of one identifier
    ("set LIBFFI_TMPDIR first", 11, 17, "LIBFFI_TMPDIR"),
    ("run with --rebuild", 11, 18, "--rebuild"),
    ("  --summarize\n\n       --files0-from=F", 0, 37, "--summarize"),  # never across a blank line
    ("kept for 14 days.", 9, 16, "14 days"),
    ("   \n  ", 0, 6, ""),
    ("--local::\n    Work on the local copy", 0, 9, "--local"),  # an asciidoc term's colons
    ("## Configuration files\n", 0, 22, "Configuration files"),  # a Markdown heading's marks
    ("  - `--keep`: keep the input", 2, 13, "--keep"),  # a bullet and a code span's marks
    ("| `-n` | lines |", 0, 7, "-n"),  # a table cell's pipe
    ("Default: 10", 0, 8, "Default"),
    ("host:port and a.b", 0, 9, "host:port"),  # a colon inside a compound stays
    ("::", 0, 2, ""),
    ("`ls -l` lists the files", 0, 23, "`ls -l` lists the files"),  # a code span inside keeps its marks
    ("**Note** that x", 0, 15, "**Note** that x"),
    ("- **`--keep`**: keep", 0, 14, "--keep"),
    ("默认发送TERM信号", 4, 8, "TERM"),  # Chinese around a word is no part of it
    ("默认发送TERM信号", 5, 8, "TERM"),  # but the word is made whole
    ("输出追加到 nohup.out。", 6, 16, "nohup.out"),  # Chinese punctuation at the end is dropped
    ("选项 -p，--parents", 3, 6, "-p"),
    ("见 https://www.intern:631 页面", 10, 25, "https://www.intern:631"),  # a URL whole, scheme too
    ("open http://localhost:8080/ now", 12, 21, "http://localhost:8080"),
    ("link with -Wl,-z,defs to", 10, 16, "-Wl,-z,defs"),  # an option whose value is a comma list
    ("pass -Wl,--as-needed here", 5, 12, "-Wl,--as-needed"),
    ("-k, --keep", 0, 2, "-k"),  # a comma and a space end one option of a list
    ("up to 1,000 lines", 6, 7, "1,000"),  # thousands
    ("both 2,3 and 4", 5, 6, "2"),  # a comma between numbers is no thousands separator
    ("uid=0,gid=0", 6, 9, "gid"),  # a comma list of settings: each its own
    ("字段为空时用 “x” 表示", 7, 9, "x"),  # a quotation mark cut from its pair
    ("use '-maxdepth 0' here", 5, 17, "-maxdepth 0"),
    ("the quote char is \" alone", 18, 19, '"'),  # a span of one mark is the mark
    ("书名是《三体》", 3, 6, "三体"),
    ("use '-maxdepth 0' here", 4, 17, "'-maxdepth 0'"),  # a pair is kept
    ('"laptop"(笔记本), "server"', 8, 12, "笔记本"),
    ("see ls(1) and", 4, 9, "ls(1)"),
    ("the users' homes", 4, 10, "users"),
    ("(-n) lines", 0, 3, "-n"),
])
def test_answer_spans_are_trimmed_to_whole_words_and_one_paragraph(text, start, end, expected) -> None:
    from bertsearch.search.reader import trim_span

    a, b = trim_span(text, start, end)
    assert text[a:b] == expected
