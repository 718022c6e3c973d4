"""Documents in and out by key: the core (indexer/ingest.py), the HTTP API (PUT/DELETE
/documents/by-key/{key}, POST /documents:batch), the client and the CLI,
beside the folder's files; a kill -9 of a real server during a stream of puts."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from bertsearch.cli.api import create_app
from bertsearch.cli.main import cli
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.documents import read_document
from bertsearch.indexer.index import Index
from bertsearch.search import Client, ClientError

from _consistency import assert_consistent
from _server import bertsearch_command, free_port

READ_KEY = "r" * 24
WRITE_KEY = "w" * 24
ADMIN_KEY = "a" * 24
KEYS = f"{READ_KEY}:read,{WRITE_KEY}:write,{ADMIN_KEY}:admin"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PDF = FIXTURES / "heldout" / "bash" / "job-control.pdf"


def _folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "notes").mkdir(parents=True)
    (docs / "notes" / "a.txt").write_text("The folder file speaks of kestrels and falconry.\n")
    (docs / "b.md").write_text("# Bees\n\nThe folder file about beekeeping and honey.\n")
    return docs


@pytest.fixture
def folder_index(tmp_path: Path, tiny_bert_path: str) -> tuple[Settings, Path]:
    """A fresh index of a small folder (tiny BERT), and that folder."""
    docs = _folder(tmp_path)
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path, chunk_tokens=32, chunk_overlap=4)
    with Index.open(settings, create=True) as index:
        index.update(docs)
    return Settings(index_dir=tmp_path / "idx", api_keys=KEYS, max_upload_bytes=2_000_000, max_batch_documents=8,
                    max_metadata_bytes=200), docs


@pytest.fixture
def api(folder_index, tiny_qa_path: str):
    settings, _docs = folder_index
    app = create_app(settings.model_copy(update={"qa_model_path": tiny_qa_path}))
    with TestClient(app, base_url="http://localhost") as client:
        yield client


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _lexical(client: TestClient, query: str) -> list[str]:
    response = client.post("/search", json={"query": query, "mode": "lexical", "top_k": 100}, headers=_as(READ_KEY))
    assert response.status_code == 200, response.text
    return [hit["path"] for hit in response.json()["hits"]]


def _put(client: TestClient, key: str, body: dict, who: str = WRITE_KEY):
    return client.put(f"/documents/by-key/{quote(key, safe='')}", json=body, headers=_as(who))


def test_put_then_search_finds_it_and_delete_then_it_is_gone(api: TestClient) -> None:
    created = _put(api, "doc-1", {"text": "Ospreys dive for fish in the estuary.", "metadata": {"lang": "en"}})
    assert created.status_code == 201, created.text
    result = created.json()["results"][0]
    assert result["status"] == "created" and result["chunks"] >= 1
    assert _lexical(api, "ospreys estuary") == ["doc-1"]  # served at once: no wait for the refresh poll
    stored = api.get("/documents/by-key/doc-1", headers=_as(READ_KEY)).json()
    assert (stored["source"], stored["title"]) == ("api", "doc-1")
    # The caller's fields, and what the reader found (metadata.py): the title, the type, the size...
    assert {k: stored["metadata"][k] for k in ("lang", "title", "type", "size", "language")} == \
        {"lang": "en", "title": "doc-1", "type": "text", "size": 37, "language": "en"}
    assert api.get(f"/documents/{stored['id']}", headers=_as(READ_KEY)).json()["text"] == stored["text"]

    deleted = api.delete("/documents/by-key/doc-1", headers=_as(WRITE_KEY))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["generation"] > created.json()["generation"]
    assert _lexical(api, "ospreys estuary") == []
    assert api.get("/documents/by-key/doc-1", headers=_as(READ_KEY)).status_code == 404
    again = api.delete("/documents/by-key/doc-1", headers=_as(WRITE_KEY))
    assert again.status_code == 404 and "doc-1" in again.json()["detail"]


def test_the_same_text_again_encodes_nothing(api: TestClient) -> None:
    body = {"text": "Herons wait in the shallows. " * 40, "title": "Herons"}
    first = _put(api, "birds/heron", body).json()
    assert first["chunks_encoded"] > 1
    again = _put(api, "birds/heron", body)
    assert again.status_code == 200
    assert again.json()["chunks_encoded"] == 0
    assert again.json()["results"][0]["status"] == "unchanged"
    assert again.json()["generation"] == first["generation"]  # nothing committed
    # New metadata on the same text: the stored chunks and vectors are kept, nothing encoded.
    tagged = _put(api, "birds/heron", {**body, "metadata": {"tags": ["wading"]}}).json()
    assert (tagged["results"][0]["status"], tagged["chunks_encoded"]) == ("replaced", 0)
    assert tagged["generation"] == first["generation"] + 1
    hits = _lexical(api, "herons shallows")
    assert set(hits) == {"birds/heron"} and len(hits) == first["chunks_encoded"]  # each chunk once
    changed = _put(api, "birds/heron", {"text": "Herons nest in colonies."}).json()
    assert (changed["results"][0]["status"], changed["chunks_encoded"]) == ("replaced", 1)


def test_a_folder_run_and_api_deletes_leave_each_others_documents(folder_index, tiny_bert_path: str) -> None:
    from bertsearch.indexer.ingest import DocumentPut, apply_changes, delete_document
    from bertsearch.indexer.common.errors import DocumentNotFound

    settings, docs = folder_index
    with Index.open(settings) as index:
        # A key equal to a folder file's path is another document.
        done = apply_changes(index, [DocumentPut("notes/a.txt", text="The API text about otters."),
                                     DocumentPut("https://example.org/x?y=1", text="Lynx tracks in snow.")])
        assert [r.status for r in done.results] == ["created", "created"]
        (docs / "notes" / "a.txt").unlink()
        (docs / "b.md").write_text("# Bees\n\nChanged text about swarms.\n")
        summary = index.update(docs)
        assert (summary.removed, summary.updated) == (1, 1)
        assert index.reader.document_by_key("notes/a.txt").text == "The API text about otters."
        assert index.reader.document_by_key("https://example.org/x?y=1").n_chunks == 1
        with pytest.raises(DocumentNotFound):
            delete_document(index, "b.md")  # the folder's file, not a key
        assert index.reader.document_by_key("b.md", "folder").title == "Bees"
    # A rebuild re-reads the folder and re-encodes the documents put by key from their text.
    with Index.open(settings.model_copy(update={"model_path": tiny_bert_path, "chunk_tokens": 16}),
                    rebuild=True) as index:
        summary = index.update(docs)
        assert index.reader.document_by_key("notes/a.txt").n_chunks >= 1
        info = index.info()
        assert info["documents"] == 3
        assert info["chunks"] == info["faiss_vectors"] == info["lexical_chunks"]
        hits = index.search_lexical("otters", 5)
        assert [c.path for c in index.fetch_chunks([h for h, _ in hits])] == ["notes/a.txt"]


def test_scopes(api: TestClient) -> None:
    body = {"text": "Cormorants dry their wings."}
    assert api.put("/documents/by-key/k", json=body).status_code == 401
    refused = _put(api, "k", body, who=READ_KEY)
    assert refused.status_code == 403 and "write" in refused.json()["detail"]
    assert api.delete("/documents/by-key/k", headers=_as(READ_KEY)).status_code == 403
    assert api.post("/documents:batch", json={"delete": ["k"]}, headers=_as(READ_KEY)).status_code == 403
    assert _put(api, "k", body, who=WRITE_KEY).status_code == 201
    assert _put(api, "k", {"text": "Cormorants dive."}, who=ADMIN_KEY).status_code == 200
    # write includes read
    assert api.get("/documents/by-key/k", headers=_as(WRITE_KEY)).json()["text"] == "Cormorants dive."


@pytest.mark.parametrize("body, status, words", [
    ({"text": "x" * 2_100_000}, 413, "over 2000000 bytes"),
    ({"text": "ok", "metadata": {"nested": {"a": 1}}}, 422, "metadata"),
    ({"text": "ok", "metadata": {"long": "y" * 300}}, 422, "at most 200"),
    ({"title": "no text"}, 422, "text"),
    ({"text": 5}, 422, "text"),
    ({"text": "ok", "colour": "misspelt field"}, 422, "colour"),
])
def test_oversized_and_malformed_puts(api: TestClient, body: dict, status: int, words: str) -> None:
    response = _put(api, "bad", body)
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json()["detail"])
    assert api.get("/documents/by-key/bad", headers=_as(READ_KEY)).status_code == 404


def test_malformed_requests(api: TestClient) -> None:
    broken = api.put("/documents/by-key/k", content=b"{not json", headers={**_as(WRITE_KEY), "Content-Type": "application/json"})
    assert broken.status_code == 422
    plain = api.put("/documents/by-key/k", content=b"text", headers={**_as(WRITE_KEY), "Content-Type": "text/plain"})
    assert plain.status_code == 415 and "multipart" in plain.json()["detail"]
    assert _put(api, "bell\x07", {"text": "ok"}).status_code == 422
    too_many = {"put": [{"key": f"k{i}", "text": "t"} for i in range(5)], "delete": [f"d{i}" for i in range(4)]}
    response = api.post("/documents:batch", json=too_many, headers=_as(WRITE_KEY))
    assert response.status_code == 422 and "at most 8" in response.json()["detail"]
    twice = {"put": [{"key": "k", "text": "t"}], "delete": ["k"]}
    assert "twice" in api.post("/documents:batch", json=twice, headers=_as(WRITE_KEY)).json()["detail"]
    no_file = api.put("/documents/by-key/k", data={"title": "t"}, files={"other": ("a.txt", b"x")}, headers=_as(WRITE_KEY))
    assert no_file.status_code == 422 and "file" in no_file.json()["detail"]


def test_a_batch_is_one_generation(api: TestClient) -> None:
    _put(api, "old", {"text": "Old text about plovers."})
    before = api.get("/health").json()["generation"]
    body = {"put": [{"key": f"batch/{i}", "text": f"Sandpiper number {i} on the mudflats."} for i in range(5)],
            "delete": ["old", "never-there"]}
    response = api.post("/documents:batch", json=body, headers=_as(WRITE_KEY))
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["generation"] == before + 1
    assert [r["status"] for r in done["results"]] == ["created"] * 5 + ["deleted", "absent"]
    assert sorted(_lexical(api, "sandpiper mudflats")) == [f"batch/{i}" for i in range(5)]
    assert _lexical(api, "plovers") == []


def test_files_go_through_the_readers(api: TestClient) -> None:
    html = (b"<html><head><title>Gannets</title><script>var hidden = 'scriptword';</script></head>"
            b"<body><h1>Gannets</h1><p>Gannets plunge from a height.</p></body></html>")
    response = api.put("/documents/by-key/pages/gannets", files={"file": ("gannets.html", html, "text/html")},
                       data={"metadata": json.dumps({"kind": "html"})}, headers=_as(WRITE_KEY))
    assert response.status_code == 201, response.text
    stored = api.get("/documents/by-key/pages/gannets", headers=_as(READ_KEY)).json()
    assert (stored["title"], stored["metadata"]["kind"], stored["metadata"]["type"]) == ("Gannets", "html", "html")
    assert "plunge from a height" in stored["text"] and "scriptword" not in stored["text"]

    pdf = api.put("/documents/by-key/manual.pdf", files={"file": ("job-control.pdf", PDF.read_bytes(), "application/pdf")},
                  headers=_as(WRITE_KEY))
    assert pdf.status_code == 201, pdf.text
    stored = api.get("/documents/by-key/manual.pdf", headers=_as(READ_KEY)).json()
    assert stored["text"] == read_document(PDF).text  # the very reader `bertsearch index` uses
    again = api.put("/documents/by-key/manual.pdf", files={"file": ("job-control.pdf", PDF.read_bytes())},
                    headers=_as(WRITE_KEY))
    assert again.status_code == 200 and again.json()["chunks_encoded"] == 0
    broken = api.put("/documents/by-key/broken.pdf", files={"file": ("broken.pdf", b"%PDF-1.4 not really")},
                     headers=_as(WRITE_KEY))
    assert broken.status_code == 400 and "PDF" in broken.json()["detail"]


def test_cli_put_and_delete(folder_index, tmp_path: Path) -> None:
    settings, _docs = folder_index
    where = ["--index", str(settings.index_dir)]
    runner = CliRunner()
    page = tmp_path / "page.md"
    page.write_text("# Puffins\n\nPuffins carry fish crosswise.\n")
    done = runner.invoke(cli, ["put", "wiki/puffin", str(page), *where, "--metadata", '{"tags": ["seabird"]}'])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["results"][0]["status"] == "created"
    piped = runner.invoke(cli, ["put", "memo", *where], input="Terns migrate far.")
    assert json.loads(piped.output)["results"][0]["status"] == "created", piped.output
    with Index.open(settings) as index:
        assert index.reader.document_by_key("wiki/puffin").title == "Puffins"
        assert index.reader.document_by_key("memo").text == "Terns migrate far."
    assert runner.invoke(cli, ["delete", "memo", *where]).exit_code == 0
    missing = runner.invoke(cli, ["delete", "memo", *where])
    assert missing.exit_code == 1 and "Error: no document with the key 'memo'" in missing.output
    bad = runner.invoke(cli, ["put", "x", str(page), *where, "--metadata", "{"])
    assert bad.exit_code == 1 and "Error: --metadata is not JSON" in bad.output


def _start_server(index_dir: Path, log: Path, qa: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = bertsearch_command() + ["serve", "--index", str(index_dir), "--port", str(port),
                                      "--log-level", "warning", "--qa-model", qa]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "BERTSEARCH_API_KEYS": KEYS})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    with Client(url, timeout=5.0) as client:
        while True:
            assert process.poll() is None, log.read_text()
            try:
                client.health()
                return process, url
            except ClientError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)


def test_client_over_a_real_server_keys_with_slashes_and_urls(folder_index, tiny_qa_path: str, tmp_path: Path) -> None:
    settings, _docs = folder_index
    process, url = _start_server(settings.index_dir, tmp_path / "log.txt", tiny_qa_path)
    try:
        keys = ["https://example.org/a/b?c=d#e", "/etc/motd", "a/../b", "100% sure", "ünï/cödé"]
        with Client(url, api_key=WRITE_KEY) as client:
            for n, key in enumerate(keys):
                assert client.put(key, f"Albatross number {n} glides.")["results"][0]["status"] == "created"
            for n, key in enumerate(keys):
                record = client.document_by_key(key)
                assert (record.path, record.text, record.source) == (key, f"Albatross number {n} glides.", "api")
            assert sorted(h.path for h in client.search("albatross glides", top_k=10, mode="lexical").hits) == \
                sorted(keys)
            html = tmp_path / "page.html"
            html.write_text("<title>Skuas</title><p>Skuas chase gulls.</p>")
            done = client.put("pages/skua", file=html, metadata={"rank": 2})
            assert done["results"][0]["status"] == "created"
            assert client.document_by_key("pages/skua").title == "Skuas"
            assert client.delete(keys[0])["results"][0]["status"] == "deleted"
            with pytest.raises(ClientError) as missing:
                client.delete(keys[0])
            assert missing.value.status_code == 404
        with Client(url, api_key=READ_KEY) as reader, pytest.raises(ClientError) as refused:
            reader.put("x", "text")
        assert refused.value.status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
def test_kill_9_during_a_stream_of_puts_loses_no_acknowledged_document(folder_index, tiny_qa_path: str,
                                                                      tmp_path: Path) -> None:
    settings, _docs = folder_index
    process, url = _start_server(settings.index_dir, tmp_path / "log.txt", tiny_qa_path)
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def stream(worker: int) -> None:
        with Client(url, api_key=WRITE_KEY, timeout=30) as client:
            n = 0
            while not stop.is_set():
                key, text = f"w{worker}/doc{n}", f"Document {worker}-{n}. " + "petrel shearwater fulmar " * 60
                try:
                    client.put(key, text)
                except ClientError:
                    return  # the server is gone: this put was not acknowledged
                acknowledged[key] = text
                n += 1

    workers = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        if process.poll() is None:
            process.kill()
    assert len(acknowledged) >= 12, (tmp_path / "log.txt").read_text()
    info = assert_consistent(settings)
    with Index.open(settings) as index:
        for key, text in acknowledged.items():
            record = index.reader.document_by_key(key)
            assert record.text == text and record.n_chunks >= 1
        assert info["documents"] >= 2 + len(acknowledged)
        # The index takes writes again, and a folder run still leaves the documents put by key.
        index.update(_docs)
        assert index.info()["documents"] >= 2 + len(acknowledged)


@pytest.mark.slow
def test_schemathesis_finds_no_failure_in_the_writes(folder_index, tiny_qa_path: str, tmp_path: Path) -> None:
    """Every schemathesis check on the document routes of a real server, on an index of their own."""
    import sys

    settings, _docs = folder_index
    process, url = _start_server(settings.index_dir, tmp_path / "log.txt", tiny_qa_path)
    try:
        config = FIXTURES / "schemathesis_ingest.toml"
        command = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
                   f"{url}/openapi.json", "--checks", "all", "--include-path-regex", "^/documents",
                   "-H", f"Authorization: Bearer {WRITE_KEY}", "--max-examples", "25", "--seed", "1",
                   "--workers", "1", "--no-color"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        assert "No issues found" in done.stdout
    finally:
        process.terminate()
        process.wait(timeout=20)


# Issue #34's load test: a minute, as CI runs it; BERTSEARCH_TEST_LOAD_SECONDS shortens it on a laptop.
LOAD_SECONDS = float(os.environ.get("BERTSEARCH_TEST_LOAD_SECONDS", "60"))
_BIRDS = ("petrel", "shearwater", "fulmar", "gannet", "kittiwake", "guillemot", "razorbill", "puffin",
          "skua", "tern", "plover", "dunlin", "curlew", "godwit", "redshank", "turnstone")


class _Load:
    """What the clients of the load test saw: every version of every key a writer sent (before
    sending it, so a search may see it before its reply), the last acknowledged state of each key,
    failures and latencies."""

    def __init__(self, folder: dict[str, str]) -> None:
        self.lock = threading.Lock()
        self.versions: dict[str, set[str]] = {key: {text} for key, text in folder.items()}
        self.last: dict[str, str | None] = {}
        self.generation = 0
        self.failures: list[str] = []
        self.latencies: dict[str, list[float]] = {}
        self.hits = 0

    def timed(self, kind: str, call, *args, **kwargs):
        began = time.perf_counter()
        try:
            return call(*args, **kwargs)
        except ClientError as exc:
            with self.lock:
                self.failures.append(f"{kind}: {exc}")
            return None
        finally:
            with self.lock:
                self.latencies.setdefault(kind, []).append(time.perf_counter() - began)

    def sending(self, key: str, text: str) -> None:
        with self.lock:
            self.versions.setdefault(key, set()).add(text)

    def acknowledged(self, answer: dict, states: dict[str, str | None], statuses: list[str]) -> None:
        with self.lock:
            if [r["status"] for r in answer["results"]] != statuses:
                self.failures.append(f"{list(states)}: {answer['results']}, not {statuses}")
            self.last.update(states)
            self.generation = max(self.generation, answer["generation"])

    def whole(self, path: str, text: str, start: int, end: int, what: str) -> None:
        """``text`` is ``version[start:end]`` of a version of ``path`` that some writer sent."""
        with self.lock:
            versions = set(self.versions.get(path, ()))
            self.hits += 1
        if not text or not any(version[start:end] == text for version in versions):
            with self.lock:
                self.failures.append(f"{what} not whole: {path!r} [{start}:{end}] {text[:80]!r}")


def _version(key: str, replaced: int, rng) -> str:
    """A text of a few chunks whose second word, ``tok<writer>x<n>v<replaced>q``, names this version
    alone: no other text holds it (the lexical index also keeps its parts, which others share)."""
    token = "tok" + key.replace("/doc", "x") + f"v{replaced}q"
    words = [rng.choice(_BIRDS) for _ in range(rng.randrange(10, 120))]
    return f"Version {token} of {key}. " + " ".join(words) + f". End of {token}."


def _write(url: str, load: _Load, worker: int, stop: threading.Event) -> None:
    """New keys, replacements with new text, deletes of this writer's own keys, and batches of them."""
    rng = random.Random(worker)
    live: dict[str, int] = {}  # this writer's keys -> times replaced
    made = 0
    with Client(url, api_key=WRITE_KEY, timeout=60) as client:
        while not stop.is_set():
            roll = rng.random() if len(live) >= 3 else 1.0  # a few keys first
            deletes = [rng.choice(sorted(live))] if roll < 0.3 else []  # alone, or in a batch (< 0.1)
            puts = []
            if roll < 0.1 or roll >= 0.6:  # new keys: two in the batch, else one
                puts = [f"w{worker}/doc{made + i}" for i in range(2 if roll < 0.1 else 1)]
                made += len(puts)
            elif roll >= 0.3:  # a replacement
                puts = [rng.choice(sorted(live))]
                live[puts[0]] += 1
            texts = {key: _version(key, live.setdefault(key, 0), rng) for key in puts}
            for key, text in texts.items():
                load.sending(key, text)
            if not puts:
                answer = load.timed("delete", client.delete, deletes[0])
            elif len(puts) == 1:
                answer = load.timed("put", client.put, puts[0], texts[puts[0]])
            else:
                answer = load.timed("batch", client.batch, put=[{"key": k, "text": t} for k, t in texts.items()],
                                    delete=deletes)
            if answer is None:
                return  # its state unknown from here on; the failure is reported
            statuses = ["replaced" if live[key] else "created" for key in puts] + ["deleted"] * len(deletes)
            for key in deletes:
                del live[key]
            load.acknowledged(answer, {**texts, **dict.fromkeys(deletes)}, statuses)


def _read(url: str, load: _Load, reader: int, stop: threading.Event) -> None:
    """Searches in every mode (some within one writer's keys) and some questions; every hit checked."""
    rng = random.Random(100 + reader)
    modes = ("hybrid", "dense", "lexical")
    with Client(url, api_key=READ_KEY, timeout=60) as client:
        n = 0
        while not stop.is_set():
            n += 1
            query = " ".join(rng.sample(_BIRDS, rng.randrange(1, 4)))
            mode = modes[n % 3]
            if n % 5 == 0:
                result = load.timed("ask", client.ask, f"Where does the {query} nest?", top_k=3, mode=mode)
                for answer in result.answers if result else ():
                    load.whole(answer.path, answer.context, answer.context_start,
                               answer.context_start + len(answer.context), "an answer's passage")
                    load.whole(answer.path, answer.text, answer.start, answer.end, "an answer")
                continue
            glob = f"w{n // 4 % 2}/*" if n % 4 == 0 else None
            result = load.timed("search", client.search, query, top_k=10, mode=mode, path_glob=glob)
            for hit in result.hits if result else ():
                load.whole(hit.path, hit.text, hit.start, hit.end, "a hit")


def _holding(client: Client, token: str) -> set[str]:
    """The keys of the hits, of a lexical search for ``token``, that hold it."""
    return {hit.path for hit in client.search(token, top_k=10, mode="lexical").hits if token in hit.text}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


@pytest.mark.slow
def test_eight_readers_and_two_writers_for_a_minute(folder_index, tiny_qa_path: str, tmp_path: Path) -> None:
    """8 clients search and ask while 2 put, replace and delete for LOAD_SECONDS against a real
    server: no request fails, every hit is a whole passage of a version that was sent, and at the
    end every key holds its last acknowledged state, found by search, in a consistent index."""
    settings, docs = folder_index
    folder = {p.relative_to(docs).as_posix(): read_document(p).text for p in docs.rglob("*") if p.is_file()}
    load = _Load(folder)
    log = tmp_path / "log.txt"
    process, url = _start_server(settings.index_dir, log, tiny_qa_path)
    stop = threading.Event()
    threads = [threading.Thread(target=_write, args=(url, load, w, stop)) for w in range(2)]
    threads += [threading.Thread(target=_read, args=(url, load, r, stop)) for r in range(8)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a client still waits on the server"
        assert not load.failures, "\n".join(load.failures[:20])

        with Client(url, api_key=READ_KEY, timeout=60) as client:
            deadline = time.monotonic() + 60
            while client.health()["generation"] < load.generation and time.monotonic() < deadline:
                time.sleep(0.2)
            assert client.health()["generation"] >= load.generation
            for key, text in load.last.items():
                if text is None:
                    with pytest.raises(ClientError) as missing:
                        client.document_by_key(key)
                    assert missing.value.status_code == 404, key
                    continue
                assert client.document_by_key(key).text == text
                assert _holding(client, text.split()[1]) == {key}
            # No version replaced or deleted is found any more.
            current = {text.split()[1] for text in load.last.values() if text}
            for versions in load.versions.values():
                for token in {v.split()[1] for v in versions if v.startswith("Version ")} - current:
                    assert _holding(client, token) == set(), token
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]
    info = assert_consistent(settings)
    assert info["documents"] == len(folder) + sum(text is not None for text in load.last.values())

    print(f"\n{LOAD_SECONDS:.0f} s, 8 readers and 2 writers: {load.hits} hits and answers checked, "
          f"{len(load.last)} keys written, generation {load.generation}")
    for kind, values in sorted(load.latencies.items()):
        print(f"  {kind:6} {len(values):6} requests  p50 {_percentile(values, 0.5):8.1f} ms  "
              f"p99 {_percentile(values, 0.99):8.1f} ms")
    puts = sum(len(load.latencies.get(kind, ())) for kind in ("put", "delete", "batch"))
    assert puts >= 4 and len(load.latencies.get("search", ())) >= 8  # the load ran at all
