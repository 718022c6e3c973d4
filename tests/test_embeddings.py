"""The embedding service: `bertsearch embed`, `POST /embed`, the OpenAI-compatible
`POST /v1/embeddings` with the real `openai` client against a real server, `Client.embed`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from _server import serve
from bertsearch.cli.api import create_app
from bertsearch.cli.main import cli
from bertsearch.indexer.common.settings import Settings
from bertsearch.search import Client, ClientError, Searcher

TEXTS = ["How long are rotated logs kept?", "Backups are encrypted with AES-256.", "élan — naïve café"]
KEY = "embed-key-0123456789abcdef"


def _cli_vectors(index_dir: Path, *texts: str) -> np.ndarray:
    result = CliRunner().invoke(cli, ["embed", "--index", str(index_dir), "--quiet", *texts])
    assert result.exit_code == 0, result.output
    return np.array([json.loads(line)["embedding"] for line in result.output.splitlines()], dtype=np.float32)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_bertsearch_embed_writes_json_lines_and_npy(sample_index: Settings, tmp_path: Path) -> None:
    vectors = _cli_vectors(sample_index.index_dir, *TEXTS)
    assert vectors.shape == (3, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n\n")
    result = CliRunner().invoke(cli, ["embed", "--index", str(sample_index.index_dir), "--file",
                                      str(tmp_path / "in.txt"), "--npy", str(tmp_path / "out.npy")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["texts"] == 3
    assert np.allclose(np.load(tmp_path / "out.npy"), vectors, atol=1e-6)
    stdin = CliRunner().invoke(cli, ["embed", "--index", str(sample_index.index_dir)], input="\n".join(TEXTS))
    assert stdin.exit_code == 0 and len(stdin.output.splitlines()) == 3
    with Searcher.open(sample_index) as searcher:  # the same encoder the index queries with
        assert np.allclose(searcher.embed(TEXTS).vectors, vectors, atol=1e-6)


@pytest.mark.slow
def test_bertsearch_embed_query_equals_passage_with_the_minilm(minilm_path: str) -> None:
    def vectors(*flags: str) -> np.ndarray:
        result = CliRunner().invoke(cli, ["embed", "--model", minilm_path, "--precision", "fp32", "-q", *flags, *TEXTS])
        assert result.exit_code == 0, result.output
        return np.array([json.loads(line)["embedding"] for line in result.output.splitlines()], dtype=np.float32)

    passages = vectors()
    assert passages.shape == (3, 384)
    assert np.allclose(vectors("--query"), passages, atol=1e-6)  # the MiniLM has no prefixes


def test_bertsearch_embed_errors(tmp_path: Path) -> None:
    empty = CliRunner().invoke(cli, ["embed", "--index", str(tmp_path)], input="")
    assert empty.exit_code == 1 and "Error: no text to embed" in empty.output
    missing = CliRunner().invoke(cli, ["embed", "--index", str(tmp_path / "none"), "hello"])
    assert missing.exit_code == 1 and "Error: no index" in missing.output


def test_embed_routes_and_their_limits(sample_index: Settings) -> None:
    with TestClient(create_app(sample_index), base_url="http://localhost") as client:
        own = client.post("/embed", json={"texts": TEXTS})
        assert own.status_code == 200, own.text
        body = own.json()
        assert body["dimension"] == 32 and len(body["embeddings"]) == 3 and body["model"]
        floats = client.post("/v1/embeddings", json={"input": TEXTS, "model": "text-embedding-3-small"}).json()
        b64 = client.post("/v1/embeddings", json={"input": TEXTS, "model": "m", "encoding_format": "base64"}).json()
        assert floats["object"] == "list" and [d["index"] for d in floats["data"]] == [0, 1, 2]
        assert floats["model"] == body["model"] and floats["usage"]["prompt_tokens"] > 10
        decoded = np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in b64["data"]])
        assert np.allclose(decoded, np.array([d["embedding"] for d in floats["data"]]), atol=1e-6)
        one = client.post("/v1/embeddings", json={"input": TEXTS[0], "model": "m"}).json()
        # int8 quantizes activations per batch: a text alone moves in the 4th decimal.
        atol = 2e-3 if body["precision"] == "int8" else 1e-6
        assert len(one["data"]) == 1 and np.allclose(one["data"][0]["embedding"], body["embeddings"][0], atol=atol)
        # The tiny BERT has no prefixes: a query's vector is a passage's.
        query = client.post("/embed", json={"texts": TEXTS, "input_type": "query"})
        assert query.status_code == 200, query.text
        assert np.allclose(query.json()["embeddings"], body["embeddings"], atol=1e-6)
        for url, bad in [("/embed", {"texts": []}), ("/embed", {"texts": [""]}), ("/embed", {"texts": ["x"] * 257}),
                         ("/embed", {"texts": ["x" * 20_001]}), ("/v1/embeddings", {"input": [[1, 2]], "model": "m"}),
                         ("/v1/embeddings", {"input": "x", "model": "m", "dimensions": 7}),
                         ("/v1/embeddings", {"input": "x", "model": "m", "encoding_format": "int8"}),
                         ("/embed", {"texts": ["x"], "input_type": "question"}),
                         ("/v1/embeddings", {"input": "x", "model": "m", "input_type": "document"})]:
            response = client.post(url, json=bad)
            assert response.status_code == 422, (url, bad, response.text)
            assert "detail" in response.json()


@pytest.mark.slow
def test_the_openai_client_gets_the_vectors_of_bertsearch_embed(sample_index: Settings, tiny_qa_path: str,
                                                               tmp_path: Path) -> None:
    import openai

    serving = serve(sample_index.index_dir, tiny_qa_path, tmp_path / "log.txt", env={"BERTSEARCH_API_KEYS": KEY})
    url = next(serving)
    try:
        expected = _cli_vectors(sample_index.index_dir, *TEXTS)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
        for fmt in (openai.NOT_GIVEN, "float", "base64"):  # the client's default asks for base64
            response = client.embeddings.create(model="text-embedding-3-small", input=TEXTS, encoding_format=fmt)
            got = np.array([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") if fmt == "base64"
                            else d.embedding for d in response.data], dtype=np.float32)  # asked for: not decoded
            assert got.shape == expected.shape
            assert _cosines(got, expected).min() >= 0.999
            assert response.usage.prompt_tokens > 0
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong-key-0123456789", max_retries=0).embeddings.create(
                model="m", input="x")
        with Client(url, api_key=KEY) as ours:
            embedded = ours.embed(TEXTS)
            assert np.allclose(embedded.vectors, expected, atol=1e-5)
            assert embedded.tokens == response.usage.prompt_tokens > 0
            with pytest.raises(ClientError) as refused:  # input_type is sent: the server checks it
                ours.embed(TEXTS, input_type="question")  # type: ignore[arg-type]
            assert refused.value.status_code == 422
    finally:
        serving.close()
