"""int8 (ONNX Runtime): the encoder and the reader, the precision an index keeps, the choice of auto.

The int8 models are exported for real from the local folders and cached in a folder of this
test session; the packaged MiniLM and the shipped QA head are checked against fp32.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bertsearch.cli.main import cli
from bertsearch.indexer.common.errors import ConfigError, ModelMismatch
from bertsearch.indexer.common.precision import family, resolve
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.encoder import Encoder
from bertsearch.indexer.index import Index
from bertsearch.search.reader import Reader

TEXTS = [
    "Backups run every night and are kept for a week.",
    "x",
    "Logs are rotated weekly and kept for thirty days before they are deleted for good.",
    "A much longer text " * 60,
    "Passwords are hashed with Argon2id.",
]
DOCS = {
    "backups.md": "Backups run every night at 02:00 and are kept for fourteen days.",
    "logs.md": "Logs are rotated weekly. Rotated logs are kept for thirty days.",
    "auth.md": "Passwords are hashed with Argon2id. Sessions expire after thirty minutes.",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("int8-cache")


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_the_int8_encoder_is_exported_once_and_matches_a_batch_of_one(tiny_bert_path: str, cache: Path) -> None:
    encoder = Encoder(tiny_bert_path, precision="int8", cache_dir=cache, batch_size=4)
    assert (encoder.precision, encoder.attention, encoder.dimension) == ("int8", "onnx", 32)
    files = sorted((cache / "onnx").glob("*-encoder-int8-*.onnx"))
    assert len(files) == 1 and not list((cache / "onnx").glob(".export-*"))
    stamp = files[0].stat().st_mtime_ns
    batched = encoder.encode(TEXTS)
    assert batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-5)
    # Padding does not change a vector: each text alone gives what it gave in a padded batch
    # (nearly: activations are quantized per batch, so batch mates move the 4th decimal).
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    assert _cos(batched, alone).min() > 0.999
    assert _cos(batched, Encoder(tiny_bert_path, precision="fp32").encode(TEXTS)).min() > 0.9
    again = Encoder(tiny_bert_path, precision="int8", cache_dir=cache)
    assert files[0].stat().st_mtime_ns == stamp  # read from the cache, not exported again
    np.testing.assert_allclose(again.encode(TEXTS), batched, atol=2e-3)


@pytest.mark.slow
def test_minilm_in_int8_stays_close_to_fp32(minilm_path: str, cache: Path) -> None:
    fp32 = Encoder(minilm_path, precision="fp32").encode(TEXTS)
    int8 = Encoder(minilm_path, precision="int8", cache_dir=cache).encode(TEXTS)
    cos = _cos(fp32, int8)
    assert cos.min() > 0.97 and cos.mean() > 0.985, cos
    # The nearest neighbour of each text is itself, in both precisions.
    assert ((int8 @ fp32.T).argmax(1) == np.arange(len(TEXTS))).all()


@pytest.mark.slow
def test_the_shipped_reader_in_int8_finds_the_fp32_answers(cache: Path) -> None:
    context = ("The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres "
               "tall and was designed by the company of Gustave Eiffel.")
    questions = ["When was the Eiffel Tower completed?", "How tall is the Eiffel Tower?",
                 "Whose company designed the tower?"]
    fp32, int8 = Reader(precision="fp32"), Reader(precision="int8", cache_dir=cache)
    assert int8.precision == "int8"
    for q in questions:
        a, b = fp32.read(q, [context], top_n=1), int8.read(q, [context], top_n=1)
        assert a and b and a[0].text == b[0].text, (q, a, b)
        assert abs(a[0].score - b[0].score) < 0.15


def test_the_int8_reader_reads_like_the_fp32_one_on_a_tiny_model(tiny_qa_path: str, cache: Path) -> None:
    reader = Reader(tiny_qa_path, precision="int8", cache_dir=cache, max_seq_len=48, stride=12, batch_size=4)
    spans = reader.read("What is kept?", ["Logs are kept for thirty days. " * 6, "Backups run nightly."], top_n=3)
    assert spans and all(0.0 <= s.score <= 1.0 for s in spans)
    assert list((cache / "onnx").glob("*-qa-int8-*.onnx"))


def test_a_model_handed_in_without_a_folder_is_exported_as_itself(tiny_qa_path: str, tmp_path: Path) -> None:
    """int8 keys the export by the weights of a model handed in, not by the default head's folder."""
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(tiny_qa_path)
    first = BertForQuestionAnswering.from_pretrained(tiny_qa_path).eval()
    second = BertForQuestionAnswering.from_pretrained(tiny_qa_path).eval()
    with torch.no_grad():
        second.qa_outputs.weight.mul_(-1.0)  # the opposite start and end preferences
    question, passages = "What is kept?", ["Logs are kept for thirty days, backups for a week. " * 3]
    spans = {}
    for name, model in (("first", first), ("second", second)):
        fp32 = Reader(model=model, tokenizer=tokenizer, precision="fp32", max_seq_len=48, stride=12)
        int8 = Reader(model=model, tokenizer=tokenizer, precision="int8", cache_dir=tmp_path, max_seq_len=48, stride=12)
        assert int8.model_path is None
        spans[name] = (fp32.read(question, passages, top_n=1)[0], int8.read(question, passages, top_n=1)[0])
    files = sorted((tmp_path / "onnx").glob("*-qa-int8-*.onnx"))
    assert len(files) == 2 and all(f.name.startswith("BertForQuestionAnswering@") for f in files)  # one each
    for fp32_span, int8_span in spans.values():
        assert (int8_span.start, int8_span.end) == (fp32_span.start, fp32_span.end)
    assert (spans["first"][0].start, spans["first"][0].end) != (spans["second"][0].start, spans["second"][0].end)


def test_auto_and_families() -> None:
    assert resolve("fp32") == "fp32" and resolve("int8") == "int8"
    assert resolve("auto") in {"bf16", "int8", "fp32"}
    assert family("bf16") == family("fp32") == family(None) == "float" != family("int8")
    with pytest.raises(ConfigError, match="precision must be"):
        resolve("fp16")


def _docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_an_index_keeps_its_precision_and_refuses_another(tiny_bert_path: str, cache: Path, tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    base = dict(index_dir=tmp_path / "idx", model_path=tiny_bert_path, cache_dir=cache)
    with Index.open(Settings(**base, precision="int8"), create=True) as index:
        index.update(docs)
        assert index.info()["precision"] == "int8"
    # auto follows the index: queries are encoded in int8 like its chunks.
    with Index.open(Settings(**base)) as index:
        assert index.encoder.precision == "int8"
        vector = index.encoder.encode(["Rotated logs are kept for thirty days."])[0]
        assert index.search(vector, 1)[0][1] > 0.9  # the chunk holding that sentence
    for other in ("fp32", "bf16"):
        with pytest.raises(ModelMismatch, match="built with int8 vectors"):
            Index.open(Settings(**base, precision=other))
    # The CLI says so in one line, and --rebuild re-encodes with the new precision.
    env = {"BERTSEARCH_CACHE_DIR": str(cache)}
    args = ["index", str(docs), "--index", str(tmp_path / "idx"), "--model", tiny_bert_path, "--quiet"]
    refused = CliRunner().invoke(cli, [*args, "--precision", "fp32"], env=env)
    assert refused.exit_code != 0 and refused.output.startswith("Error: ") and "--rebuild" in refused.output
    rebuilt = CliRunner().invoke(cli, [*args, "--precision", "fp32", "--rebuild", "--json"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    info = CliRunner().invoke(cli, ["info", "--index", str(tmp_path / "idx"), "--json"], env=env)
    assert json.loads(info.output)["precision"] == "fp32"
    with Index.open(Settings(**base, precision="bf16")) as index:  # bf16 and fp32 make the same vectors
        assert index.encoder.precision == "bf16"


def test_bertsearch_embed_in_int8(tiny_bert_path: str, cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.npy"
    result = CliRunner().invoke(cli, ["embed", "--model", tiny_bert_path, "--precision", "int8", "--npy", str(out),
                                      "--quiet", *TEXTS[:3]], env={"BERTSEARCH_CACHE_DIR": str(cache)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["precision"] == "int8"
    expected = Encoder(tiny_bert_path, precision="int8", cache_dir=cache).encode(TEXTS[:3])
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)


def test_without_onnx_runtime_int8_is_refused_with_the_install_hint(tiny_bert_path: str, tmp_path: Path) -> None:
    # A fresh interpreter in which `import onnxruntime` fails, as where the extra is not installed.
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from bertsearch.indexer.common.settings import Settings; Settings()  # the entry point reads the environment\n"
        "from bertsearch.indexer.common.precision import cpu_has_native_bf16, resolve\n"
        "from bertsearch.indexer.encoder import Encoder\n"
        "print(resolve('auto'), cpu_has_native_bf16())\n"
        f"Encoder({tiny_bert_path!r}, precision='int8', cache_dir={str(tmp_path)!r})\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "BERTSEARCH_NATIVE_BF16": "0"}, timeout=120)
    assert run.returncode != 0
    assert run.stdout.split() == ["fp32", "False"]  # auto without native bf16 and without ONNX Runtime
    assert "pip install 'bertsearch[onnx]'" in run.stderr and "ConfigError" in run.stderr


def test_auto_picks_int8_without_native_bf16_when_onnx_runtime_is_there() -> None:
    code = ("from bertsearch.indexer.common.settings import Settings; Settings()\n"
            "from bertsearch.indexer.common.precision import resolve; print(resolve('auto'))")
    for flag, expected in (("0", "int8"), ("1", "bf16")):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "BERTSEARCH_NATIVE_BF16": flag}, timeout=120)
        assert run.stdout.strip() == expected, run.stderr
