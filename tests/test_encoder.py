"""The encoder: plumbing on a tiny random BERT, accuracy on the real MiniLM (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bertsearch.indexer.encoder import Encoder
from bertsearch.indexer.common.errors import ConfigError, ModelLoadError

TEXTS = [
    "Backups run every night.",
    "x",
    "Logs are rotated weekly and kept for thirty days before they are deleted for good.",
    "",
    "Passwords are hashed with Argon2id.",
    "A much longer text " * 40,
    "Sessions expire after thirty minutes.",
]


@pytest.fixture(scope="module")
def tiny(tiny_bert_path: str) -> Encoder:
    return Encoder(tiny_bert_path, precision="fp32", batch_size=3)


@pytest.fixture(scope="module")
def minilm(minilm_path: str) -> Encoder:
    return Encoder(minilm_path, precision="bf16")


def test_vectors_are_normalised_float32(tiny: Encoder) -> None:
    vectors = tiny.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), tiny.dimension) == (len(TEXTS), 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_normalize_false_gives_raw_means(tiny: Encoder) -> None:
    raw = tiny.encode(TEXTS, normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), tiny.encode(TEXTS), atol=1e-6)


def test_order_is_restored_whatever_the_lengths(tiny: Encoder) -> None:
    together = tiny.encode(TEXTS)
    alone = np.stack([tiny.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    reversed_ = tiny.encode(TEXTS[::-1])
    np.testing.assert_allclose(reversed_[::-1], together, atol=1e-5)


def test_mean_pooling_ignores_padding(tiny_bert_path: str, tiny: Encoder) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert_path, attn_implementation="eager").eval()
    text = "Sessions expire after thirty minutes."
    inputs = tiny.tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        expected = model(**inputs).last_hidden_state[0].mean(dim=0).numpy()
    expected /= np.linalg.norm(expected)
    # Batched with a much longer text, the short one is padded; its vector must not change.
    got = tiny.encode([text, "A much longer text " * 40])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_empty_input(tiny: Encoder) -> None:
    assert tiny.encode([]).shape == (0, 32)


def test_long_texts_are_truncated_to_max_length(tiny_bert_path: str) -> None:
    encoder = Encoder(tiny_bert_path, precision="fp32", max_length=16)
    assert encoder.max_length == 16
    long = "word " * 2000
    np.testing.assert_allclose(encoder.encode([long]), encoder.encode(["word " * 14]), atol=1e-6)


def test_properties(tiny: Encoder, tiny_bert_path: str) -> None:
    assert tiny.pooling == "mean"
    assert tiny.precision == "fp32"
    assert tiny.max_length == 512  # no sentence_bert_config.json: the model's positions
    assert tiny.tokenizer.is_fast
    assert tiny.attention == "sdpa"
    assert Encoder(tiny_bert_path, precision="bf16").precision == "bf16"
    from bertsearch.indexer import int8
    from bertsearch.indexer.common.precision import cpu_has_native_bf16

    fallback = "int8" if int8.available() else "fp32"  # auto without native bf16
    assert Encoder(tiny_bert_path).precision == ("bf16" if cpu_has_native_bf16() else fallback)


def test_max_length_from_sentence_bert_config(tmp_path: Path, tiny_bert_path: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert_path, folder)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    assert Encoder(str(folder), precision="fp32").max_length == 128


def test_model_id_is_stable_and_tells_models_apart(tmp_path: Path, tiny_bert_path: str, tiny: Encoder) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert_path, copy)
    assert Encoder(str(copy), precision="fp32").model_id == tiny.model_id
    assert "@" in tiny.model_id

    import torch
    from transformers import BertConfig, BertModel

    other = tmp_path / "other"
    shutil.copytree(tiny_bert_path, other)
    torch.manual_seed(1)
    BertModel(BertConfig.from_pretrained(tiny_bert_path)).save_pretrained(other)
    assert Encoder(str(other), precision="fp32").model_id != tiny.model_id


def test_bf16_matches_fp32_on_the_tiny_model(tiny_bert_path: str, tiny: Encoder) -> None:
    bf16 = Encoder(tiny_bert_path, precision="bf16").encode(TEXTS)
    cosine = (bf16 * tiny.encode(TEXTS)).sum(axis=1)
    assert cosine.min() > 0.99


def test_progress_bar_only_when_asked(tiny: Encoder, capsys: pytest.CaptureFixture[str]) -> None:
    tiny.encode(TEXTS)
    assert capsys.readouterr().err == ""
    tiny.encode(TEXTS, show_progress=True)
    assert "chunk" in capsys.readouterr().err


def test_missing_folder_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        Encoder(str(tmp_path / "nope"))


def test_folder_without_a_model_is_a_model_load_error(tmp_path: Path, tiny_bert_path: str) -> None:
    with pytest.raises(ModelLoadError, match="config.json"):
        Encoder(str(tmp_path))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_path, broken)
    for weights in broken.glob("*.safetensors"):
        weights.write_bytes(b"not weights")
    with pytest.raises(ModelLoadError, match="cannot load"):
        Encoder(str(broken))
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    shutil.copy(Path(tiny_bert_path) / "config.json", no_tokenizer)
    with pytest.raises(ModelLoadError, match="tokenizer"):
        Encoder(str(no_tokenizer))


@pytest.mark.parametrize("kwargs", [{"precision": "fp16"}, {"batch_size": 0}, {"max_length": 1000}])
def test_invalid_arguments_are_config_errors(tiny_bert_path: str, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Encoder(tiny_bert_path, **kwargs)


# --- the real model ---------------------------------------------------------------------------

def _reference_fp32(model_path: str, texts: list[str]) -> np.ndarray:
    """sentence-transformers' recipe, spelled out: fp32, eager attention, mask-aware mean, L2."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    model = AutoModel.from_pretrained(model_path, local_files_only=True, attn_implementation="eager").eval()
    out = []
    with torch.inference_mode():
        for text in texts:
            inputs = tokenizer([text], truncation=True, max_length=256, return_tensors="pt")
            vector = model(**inputs).last_hidden_state[0].mean(dim=0)
            out.append(torch.nn.functional.normalize(vector, dim=0).numpy())
    return np.stack(out)


@pytest.mark.slow
def test_minilm_bf16_matches_fp32_mean_pooling(minilm_path: str, minilm: Encoder) -> None:
    assert minilm.dimension == 384
    assert minilm.max_length == 256
    texts = [t for t in TEXTS if t]
    cosine = (minilm.encode(texts) * _reference_fp32(minilm_path, texts)).sum(axis=1)
    assert cosine.min() > 0.999, cosine


@pytest.mark.slow
def test_minilm_alone_equals_inside_a_batch(minilm: Encoder) -> None:
    texts = [t for t in TEXTS if t] * 3
    batch = minilm.encode(texts)
    for i in (0, 2, 4):
        alone = minilm.encode([texts[i]])[0]
        assert float(alone @ batch[i]) > 0.9995


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm_path: str, minilm: Encoder) -> None:
    import sentence_transformers
    texts = [t for t in TEXTS if t]
    reference = sentence_transformers.SentenceTransformer(minilm_path, device="cpu").encode(texts)
    cosine = (minilm.encode(texts) * reference).sum(axis=1)
    assert cosine.min() > 0.999, cosine
    assert minilm.model_id.startswith("nreimers/MiniLM-L6-H384-uncased@")


def test_chunking_on_one_thread_while_another_encodes(tiny_bert_path: str) -> None:
    """A server chunks a put on a request thread while the PyTorch thread encodes queries: neither
    sees the other's truncation ("Already borrowed", or a document cut at ``max_length`` tokens)."""
    import threading

    from bertsearch.indexer.chunking import chunk_text

    encoder = Encoder(tiny_bert_path, precision="fp32", max_length=16)
    document = "word " * 300
    stop, failures = threading.Event(), []

    def encode() -> None:
        try:
            while not stop.is_set():
                encoder.encode(["a query of a few words"] * 4)
                encoder.count_tokens(["another query"])
        except Exception as exc:  # noqa: BLE001 (reported below)
            failures.append(exc)

    thread = threading.Thread(target=encode)
    thread.start()
    try:
        for _ in range(300):
            chunks = chunk_text(document, encoder.tokenizer, 32, 4)
            assert chunks[-1].end == len(document.rstrip()) and sum(c.n_tokens for c in chunks) > 300
    finally:
        stop.set()
        thread.join()
    assert not failures, failures
