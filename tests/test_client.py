"""The Python client against a real ``bertsearch serve`` process on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bertsearch.indexer.index import Index
from bertsearch.indexer.common.settings import Settings
from _server import free_port, serve
from bertsearch.search import AskResult, Client, ClientError, SearchResult, Searcher

LOW = 0.0
SAMPLE_DOCS = Path(__file__).resolve().parent.parent / "samples" / "docs"


@pytest.fixture(scope="module")
def server(sample_index: Settings, tiny_qa_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(sample_index.index_dir, tiny_qa_path, tmp_path_factory.mktemp("serve") / "log.txt")


@pytest.fixture(scope="module")
def embedded(sample_index: Settings, tiny_qa_path: str) -> Iterator[Searcher]:
    with Searcher.open(sample_index.model_copy(update={"qa_model_path": tiny_qa_path})) as searcher:
        yield searcher


def _without_time(result: SearchResult | AskResult) -> dict:
    data = result.to_dict()
    data.pop("took_ms")
    return data


def test_client_and_embedded_return_the_same_results(server: str, embedded: Searcher) -> None:
    with Client(server) as client:
        for query, k, glob in [("How long are rotated logs kept?", 3, None), ("backups", 5, "*.txt")]:
            remote = client.search(query, top_k=k, path_glob=glob)
            assert isinstance(remote, SearchResult) and remote.took_ms > 0
            assert _without_time(remote) == _without_time(embedded.search(query, top_k=k, path_glob=glob))
        remote_answers = client.ask("How long are rotated logs kept?", top_k=3, threshold=LOW)
        assert isinstance(remote_answers, AskResult) and remote_answers.answers
        local = embedded.ask("How long are rotated logs kept?", top_k=3, threshold=LOW)
        assert _without_time(remote_answers) == _without_time(local)


def test_client_health_stats_document(server: str) -> None:
    with Client(server) as client:
        assert client.health()["status"] == "ok"
        assert client.stats()["documents"] == 5
        hit = client.search("backups", path_glob="backups.txt").hits[0]
        assert client.document(hit.document_id).path == "backups.txt"


def test_client_errors_carry_status_and_detail(server: str) -> None:
    with Client(server) as client:
        with pytest.raises(ClientError) as info:
            client.search("", top_k=5)
        assert info.value.status_code == 422
        assert isinstance(info.value.detail, list)
        assert "query" in str(info.value)
        with pytest.raises(ClientError) as info:
            client.search("logs", top_k=500)
        assert info.value.status_code == 422
        with pytest.raises(ClientError) as info:
            client.document(999999)
        assert info.value.status_code == 404
        assert info.value.detail == "no document with id 999999"


def test_connection_refused_is_a_client_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", timeout=2.0) as client:
        with pytest.raises(ClientError, match="cannot reach") as info:
            client.health()
    assert info.value.status_code is None


def test_timeout_is_a_client_error() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with Client(f"http://127.0.0.1:{port}", timeout=0.3) as client:
            with pytest.raises(ClientError, match="did not answer in time") as info:
                client.search("logs")
    assert info.value.status_code is None


def test_client_is_a_context_manager() -> None:
    with Client("http://127.0.0.1:1/") as client:
        assert client.base_url == "http://127.0.0.1:1"
    assert client._http.is_closed


@pytest.mark.slow
def test_server_switches_generation_without_failing_requests(
    tmp_path: Path, tiny_bert_path: str, tiny_qa_path: str,
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    with Index.open(settings, create=True) as writer:
        writer.update(docs)
    serving = serve(tmp_path / "idx", tiny_qa_path, tmp_path / "log.txt")
    url = next(serving)
    failures: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        with Client(url) as client:
            while not stop.is_set():
                try:
                    client.search("logs", top_k=10)
                    client.ask("How long are logs kept?", threshold=LOW)
                except ClientError as exc:
                    failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for i in range(3):  # three new generations: add, change, delete
            if i == 0:
                (docs / "upgrade.md").write_text("# Upgrades\n\nUpgrade with acme-ctl upgrade.\n", encoding="utf-8")
            elif i == 1:
                (docs / "upgrade.md").write_text("# Upgrades\n\nUpgrades need a restart.\n", encoding="utf-8")
            else:
                (docs / "history.md").unlink()
            with Index.open(Settings(index_dir=tmp_path / "idx")) as writer:
                writer.update(docs)
            time.sleep(0.5)
        with Client(url) as client:
            deadline = time.monotonic() + 10.0
            while client.stats()["documents"] != 5 or client.search("x", path_glob="history.md").hits:
                assert time.monotonic() < deadline, "the server kept serving the old generation"
                time.sleep(0.2)
            assert [h.path for h in client.search("upgrade", path_glob="upgrade.md").hits] == ["upgrade.md"]
    finally:
        stop.set()
        for t in threads:
            t.join()
        serving.close()
    assert failures == []


@pytest.mark.slow
def test_serve_with_two_workers_answers_and_follows_the_index(tmp_path: Path, tiny_bert_path: str,
                                                              tiny_qa_path: str, db_url: str) -> None:
    """Two server processes on one database (SQLite, and PostgreSQL when configured) both pick up
    a `bertsearch index` run."""
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path, db_url=db_url)
    with Index.open(settings, create=True) as index:
        index.update(docs)
    serving = serve(tmp_path / "idx", tiny_qa_path, tmp_path / "log.txt", "--workers", "2", "--db", db_url)
    url = next(serving)
    try:
        with Client(url, timeout=30.0) as client:
            before = client.health()["generation"]
            assert all(client.search("rotated logs").hits for _ in range(6))
            (docs / "new.txt").write_text("Zebras graze on the savanna near the river.\n")
            with Index.open(Settings(index_dir=tmp_path / "idx", db_url=db_url)) as index:
                index.update(docs)
            deadline = time.monotonic() + 30
            # Each request may reach either worker: every one must serve the new generation.
            while time.monotonic() < deadline:
                seen = [client.search("zebras savanna", mode="lexical").hits for _ in range(8)]
                if all(h and h[0].path == "new.txt" for h in seen):
                    break
                time.sleep(0.5)
            else:
                pytest.fail("the workers did not all pick up the new generation within 30 s")
            assert client.health()["generation"] > before
    finally:
        serving.close()
