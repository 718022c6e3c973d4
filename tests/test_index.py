"""The index: incremental updates, FAISS repair, build parameters, search, locking (tiny BERT)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from bertsearch.indexer.encoder import Encoder
from bertsearch.indexer.common.errors import (
    ConfigError,
    DocumentNotFound,
    IndexLocked,
    IndexNotFound,
    ModelMismatch,
)
from bertsearch.indexer.encoder_slot import EncoderSlot
from bertsearch.indexer.index import Index
from bertsearch.indexer.models import ChunkRow, Document, IndexState
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.store import mask_url, writer_lock
from bertsearch.indexer.vectors import VectorIndex

# Every test here runs with an exact and with an approximate index.
pytestmark = pytest.mark.usefixtures("index_kind")

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()


class CountingEncoder(Encoder):
    """The real encoder, counting the texts it encodes."""

    encoded = 0

    def encode(self, texts, **kwargs):
        self.encoded += len(texts)
        return super().encode(texts, **kwargs)


@pytest.fixture(scope="module")
def encoder(tiny_bert_path: str) -> CountingEncoder:
    return CountingEncoder(tiny_bert_path, precision="fp32")


@pytest.fixture
def make_settings(tmp_path: Path, db_url: str, tiny_bert_path: str):
    def make(**overrides) -> Settings:
        values = {"index_dir": tmp_path / "idx", "db_url": db_url, "model_path": tiny_bert_path, **overrides}
        return Settings(**values)

    return make


def _text(seed: int, n_words: int = 40) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words)) + "."


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _assert_consistent(index: Index) -> dict:
    info = index.info()
    assert info["chunks"] == info["faiss_vectors"]
    with index.transaction() as s:
        sql_ids = set(s.scalars(select(ChunkRow.id)))
        assert (s.scalar(select(func.sum(Document.n_chunks))) or 0) == len(sql_ids)
    assert set(index.vectors.ids().tolist()) == sql_ids
    return info


def _counts(summary) -> tuple[int, int, int, int, int]:
    return summary.added, summary.updated, summary.unchanged, summary.removed, summary.failed


def test_incremental_add_change_delete_rename(tmp_path: Path, make_settings, encoder: CountingEncoder):
    root = tmp_path / "docs"
    _write(root / "a.md", "# Alpha\n\n" + _text(1))
    _write(root / "b.txt", _text(2))
    _write(root / "sub" / "c.rst", "Charlie\n=======\n\n" + _text(3, 400))  # several chunks
    with Index.open(make_settings(chunk_tokens=64, chunk_overlap=8), create=True, encoder=encoder) as index:
        encoder.encoded = 0
        first = index.update(root)
        assert _counts(first) == (3, 0, 0, 0, 0)
        info = _assert_consistent(index)
        assert first.chunks_written == info["chunks"] == encoder.encoded > 3
        assert info["documents"] == 3

        encoder.encoded = 0
        again = index.update(root)
        assert _counts(again) == (0, 0, 3, 0, 0)
        assert again.chunks_written == 0 and encoder.encoded == 0

        _write(root / "b.txt", _text(20))
        changed = index.update(root)
        assert _counts(changed) == (0, 1, 2, 0, 0)
        assert changed.chunks_written == encoder.encoded == 1
        _assert_consistent(index)

        (root / "a.md").unlink()
        deleted = index.update(root)
        assert _counts(deleted) == (0, 0, 2, 1, 0)
        assert _assert_consistent(index)["documents"] == 2

        (root / "sub" / "c.rst").rename(root / "sub" / "d.rst")
        renamed = index.update(root)
        assert _counts(renamed) == (1, 0, 1, 1, 0)
        info = _assert_consistent(index)
        paths = {index.get_document(r.document_id).path for r in index.fetch_chunks(index.vectors.ids().tolist())}
        assert paths == {"b.txt", "sub/d.rst"}

        encoder.encoded = 0
        os.utime(root / "b.txt", (1_000_000_000, 1_000_000_000))  # new mtime, same bytes
        touched = index.update(root)
        assert _counts(touched) == (0, 0, 2, 0, 0) and encoder.encoded == 0
        generation = index.generation

    with Index.open(make_settings(), encoder=encoder) as reopened:
        assert reopened.last_repair is None  # the saved FAISS file matches SQL
        assert reopened.generation == generation
        assert _assert_consistent(reopened)["chunks"] == info["chunks"]
        assert reopened.params.chunk_tokens == 64  # remembered, not the settings' default
        assert _counts(reopened.update(root)) == (0, 0, 2, 0, 0)


def test_unreadable_files_are_skipped_and_counted(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    _write(root / "good.txt", _text(1))
    (root / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        summary = index.update(root)
        assert _counts(summary) == (1, 0, 0, 0, 2)
        assert sorted(p for p, _ in summary.failures) == ["binary.txt", "broken.pdf"]
        assert all(reason for _, reason in summary.failures)
        _assert_consistent(index)
        # Failed files are retried next time, and still fail.
        assert _counts(index.update(root)) == (0, 0, 1, 0, 2)


def test_a_run_with_nothing_to_encode_never_loads_the_model(tmp_path: Path, make_settings, encoder, monkeypatch):
    root = tmp_path / "docs"
    _write(root / "good.txt", _text(1))
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(root)
    loads = []
    load = EncoderSlot._load
    monkeypatch.setattr(EncoderSlot, "_load", lambda self, path, params: loads.append(path) or load(self, path, params))
    (root / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    _write(root / "empty.txt", "  \n")
    # No model named: the one the index was built with loads when, and only if, there is text to encode.
    with Index.open(make_settings(model_path=None)) as index:
        assert _counts(index.update(root)) == (1, 0, 1, 0, 1)  # the empty file is a document without chunks
        assert loads == []
        _write(root / "new.txt", _text(2))
        assert _counts(index.update(root)) == (1, 0, 2, 0, 1)
        assert len(loads) == 1
        _assert_consistent(index)


def test_index_folder_inside_the_root_is_skipped(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    with Index.open(make_settings(index_dir=root / "idx"), create=True, encoder=encoder) as index:
        _write(root / "idx" / "notes.txt", _text(2))
        summary = index.update(root)
        assert summary.added == 1 and index.info()["documents"] == 1


def test_an_sqlite_database_inside_the_root_is_never_read_as_a_document(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    (root / "link.db").symlink_to(root / "meta.db")  # another name for the same file
    with Index.open(make_settings(db_url=f"sqlite:///{root / 'meta.db'}"), create=True, encoder=encoder) as index:
        assert {"meta.db", "meta.db-wal", "meta.db-shm"} <= {p.name for p in index.database_files()}
        # Reading meta.db here would drop this process's SQLite locks on it (sqlite.org/howtocorrupt.html 2.2).
        summary = index.update(root, include=["*.db", "*.db-wal", "*.db-shm", "*.txt"])
        assert (summary.added, summary.failed) == (1, 0), summary.failures
        assert index.info()["documents"] == 1


@pytest.mark.parametrize("damage", ["missing", "corrupt", "stale", "stale-beyond-the-log"])
def test_damaged_faiss_file_is_rebuilt_on_open(tmp_path: Path, make_settings, encoder, damage: str):
    root = tmp_path / "docs"
    for i in range(5):
        _write(root / f"d{i}.txt", _text(i))
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(root)
        path = index.vectors_path
        expected = index.info()["chunks"]
        query = index.vectors.ids()[:1]
        old = VectorIndex.load(path, index.params.dimension)
        _write(root / "d5.txt", _text(5))
        index.update(root)
    (path.parent / f".{path.name}.abc123.tmp").write_bytes(b"half a file from a killed save")
    if damage == "missing":
        path.unlink()
    elif damage == "corrupt":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        old.save(path)  # an older generation
    if damage == "stale-beyond-the-log":  # the removal log no longer reaches back to the file
        with Index.open(make_settings(), encoder=encoder) as index:
            with index.transaction() as s:
                s.execute(update(IndexState).values(removals_from=IndexState.generation))
        old.save(path)
    encoder.encoded = 0
    with Index.open(make_settings(), encoder=encoder) as index:
        if damage == "stale":  # brought forward with the chunks added and removed since: no rebuild
            assert index.last_repair is None and index.vectors.generation == index.generation
        else:
            assert index.last_repair
        assert _assert_consistent(index)["chunks"] == expected + 1
        assert encoder.encoded == 0  # rebuilt from SQL, not re-encoded
        assert query[0] in index.vectors.ids()
    with Index.open(make_settings(), encoder=encoder) as index:
        assert index.last_repair is None  # the repair was saved
    assert not list(path.parent.glob("*.tmp"))  # and the leftover of a killed save removed


def test_model_mismatch_is_refused_and_rebuild_switches(tmp_path: Path, make_settings, encoder):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    other = tmp_path / "other-bert"
    torch.manual_seed(1)
    BertModel(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(other)
    AutoTokenizer.from_pretrained(encoder.tokenizer.name_or_path).save_pretrained(other)

    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(root)
    with pytest.raises(ModelMismatch, match="--rebuild"):
        with Index.open(make_settings(model_path=str(other))) as index:
            index.update(root)
    with pytest.raises(ModelMismatch, match="--rebuild"):
        Index.open(make_settings(chunk_tokens=32))

    with Index.open(make_settings(model_path=str(other)), rebuild=True) as index:
        # The old index is served until the rebuild's one transaction commits.
        assert index.params.dimension == 32 and index.info()["documents"] == 1
        summary = index.update(root)
        assert _counts(summary) == (1, 0, 0, 0, 0)
        assert _assert_consistent(index)["dimension"] == 16
    # Without --model, the index keeps using the model it was (re)built with.
    with Index.open(make_settings(model_path=None)) as index:
        assert index.encoder.dimension == 16


def test_search_with_a_path_glob_is_exact_within_the_subset(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    for i in range(40):
        _write(root / "common" / f"c{i}.txt", _text(i))
    _write(root / "rare" / "only.md", _text(999))
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(root)
        query = encoder.encode([_text(3)])[0]
        top = index.search(query, 5)
        assert len(top) == 5 and top == sorted(top, key=lambda h: -h[1])
        assert all(-1.0001 <= score <= 1.0001 for _, score in top)
        rare = index.search(query, 5, path_glob="rare/*.md")
        assert len(rare) == 1
        assert index.fetch_chunks([rare[0][0]])[0].path == "rare/only.md"
        assert {r.path for r in index.fetch_chunks([i for i, _ in index.search(query, 50, path_glob="*.md")])} == {
            "rare/only.md"}
        assert index.search(query, 5, path_glob="nothing/*") == []
        assert len(index.search(query, 100, path_glob="common/**")) == 40
        assert index.search(query, 5, path_glob="RARE/*.md") == []  # paths match case-sensitively

        # The chunk ids of a filter are kept, per generation: an update shows at once.
        _write(root / "rare" / "new.md", _text(998))
        _write(root / "odd 100%_x" / "a.md", _text(997))
        (root / "common" / "c0.txt").unlink()
        index.update(root)
        assert {r.path for r in index.fetch_chunks([i for i, _ in index.search(query, 50, path_glob="rare/*.md")])} == {
            "rare/only.md", "rare/new.md"}
        assert len(index.search(query, 100, path_glob="common/**")) == 39
        # LIKE's wildcards in a folder name are literal
        odd = index.search(query, 5, path_glob="odd 100%_x/*.md")
        assert [index.fetch_chunks([i])[0].path for i, _ in odd] == ["odd 100%_x/a.md"]
        assert index.search(query, 5, path_glob="odd 1000x/*.md") == []


def test_a_path_filter_over_more_documents_than_postgresql_takes_parameters(tmp_path: Path, make_settings, encoder):
    """PostgreSQL takes at most 65,535 parameters a statement: a filter matching more documents
    must not send their ids as a list. The extra rows go in by SQL (not through FAISS) to get
    there in seconds; a filter only reads SQL."""
    from sqlalchemy import insert

    root = tmp_path / "docs"
    _write(root / "bulk" / "real.txt", _text(1))
    n = 70_000
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(root)
        with index._sessions.begin() as s:
            first = s.scalar(select(func.max(Document.id))) + 1
            s.execute(insert(Document), [
                {"id": first + i, "path": f"bulk/{i}.txt", "content_hash": "0" * 64, "size": 1, "mtime": 0.0, "text": "x"}
                for i in range(n)])
            s.execute(insert(ChunkRow), [
                {"document_id": first + i, "ordinal": 0, "start": 0, "end": 1, "text": "x", "n_tokens": 1, "vector": b""}
                for i in range(n)])
        query = encoder.encode([_text(1)])[0]
        hits = index.search(query, 5, path_glob="bulk/*.txt")
        assert [index.fetch_chunks([i])[0].path for i, _ in hits] == ["bulk/real.txt"]
        assert len(index.reader.subset(index.snapshot, "bulk/*.txt")) == n + 1


def test_fetch_chunks_keeps_the_order_and_documents_resolve(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    text = "# Title here\n\n" + _text(1, 300)
    _write(root / "a.md", text)
    _write(root / "b.md", _text(2))
    with Index.open(make_settings(chunk_tokens=32, chunk_overlap=4), create=True, encoder=encoder) as index:
        index.update(root)
        ids = index.vectors.ids().tolist()
        wanted = [ids[3], ids[0], 10**9, ids[-1]]
        records = index.fetch_chunks(wanted)
        assert [r.chunk_id for r in records] == [ids[3], ids[0], ids[-1]]  # unknown id left out
        doc = index.get_document(records[0].document_id)
        assert doc.path == "a.md" and doc.title == "Title here" and doc.text == text
        for r in records:
            assert index.get_document(r.document_id).text[r.start:r.end] == r.text
        with pytest.raises(DocumentNotFound):
            index.get_document(10**9)


def test_reader_refreshes_to_a_newer_generation(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    with Index.open(make_settings(), create=True, encoder=encoder) as writer:
        writer.update(root)
        with Index.open(make_settings(), encoder=encoder) as reader:
            assert reader.refresh() is False
            _write(root / "b.txt", _text(2))
            writer.update(root)
            assert reader.vectors.count == 1
            assert reader.refresh() is True
            assert reader.vectors.count == 2 and reader.generation == writer.generation
            assert reader.last_repair is None  # loaded the writer's file, no rebuild


def test_second_writer_is_refused(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    with Index.open(make_settings(), create=True, encoder=encoder) as first, first.writer_lock():
        with Index.open(make_settings(), encoder=encoder) as second:
            with pytest.raises(IndexLocked, match=f"pid {os.getpid()}"):
                second.update(root)
            assert second.search(encoder.encode(["alpha"])[0], 3) == []  # readers are not blocked


def test_missing_index_and_missing_folder(tmp_path: Path, make_settings, encoder):
    with pytest.raises(IndexNotFound, match="bertsearch index"):
        Index.open(make_settings())
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        with pytest.raises(ConfigError, match="not a folder"):
            index.update(tmp_path / "nope")


def test_another_root_is_refused_but_a_moved_root_is_adopted(tmp_path: Path, make_settings, encoder):
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first / "a.txt", _text(1))
    _write(second / "b.txt", _text(2))
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(first)
        with pytest.raises(ConfigError, match="--rebuild"):
            index.update(second)
        moved = tmp_path / "moved"
        first.rename(moved)
        encoder.encoded = 0
        summary = index.update(moved)
        assert _counts(summary) == (0, 0, 1, 0, 0) and encoder.encoded == 0
        assert index.info()["root"] == str(moved.resolve())


def test_info_describes_the_index(tmp_path: Path, make_settings, encoder, db_url: str):
    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(root)
        info = index.info()
    assert info["documents"] == 1 and info["chunks"] == info["faiss_vectors"] == 1
    assert info["model_id"] == encoder.model_id and info["dimension"] == encoder.dimension == 32
    assert info["pooling"] == "mean" and info["chunk_tokens"] == 200 and info["chunk_overlap"] == 40
    assert info["index_type"] == os.environ["BERTSEARCH_INDEX_TYPE"] and info["size_bytes"] > 0
    assert ("IndexFlatIP" if info["index_type"] == "flat" else "IndexHNSWFlat") in info["index_description"]
    assert info["index_dir"] == str((tmp_path / "idx").resolve())
    assert info["db_url"] == mask_url(db_url)


def test_public_surface():
    import bertsearch.indexer as indexer

    for name in ("Index", "IndexSummary", "Settings", "Encoder", "ModelMismatch", "IndexLocked", "IndexNotFound"):
        assert name in indexer.__all__ and getattr(indexer, name) is not None
    from bertsearch.indexer.update import IndexSummary

    assert indexer.IndexSummary is IndexSummary


def test_a_repair_the_reader_could_not_save_is_saved_by_the_next_writer(tmp_path: Path, make_settings, encoder):
    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(root)
        path = index.vectors_path
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same header (generation), corrupt payload
    path.write_bytes(bytes(data))
    with writer_lock(tmp_path / "idx"):  # another writer is active: the repair stays in memory
        writer = Index.open(make_settings(), encoder=encoder)
    try:
        assert "checksum" in writer.last_repair and writer.info()["faiss_vectors"] == 1
        assert path.read_bytes() == bytes(data)
        assert _counts(writer.update(root)) == (0, 0, 1, 0, 0)  # nothing to do, but it saves the repair
    finally:
        writer.close()
    with Index.open(make_settings(), encoder=encoder) as index:
        assert index.last_repair is None


def test_postgres_and_sqlite_indexes_answer_alike(tmp_path: Path, pg_url: str, tiny_bert_path: str, encoder):
    root = tmp_path / "docs"
    for i in range(12):
        _write(root / f"d{i}.md", f"# Doc {i}\n\n" + _text(i, 120))
    results = []
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'meta.db'}"), ("postgres", pg_url)):
        settings = Settings(index_dir=tmp_path / name, db_url=url, model_path=tiny_bert_path, chunk_tokens=48,
                            chunk_overlap=8)
        with Index.open(settings, create=True, encoder=encoder) as index:
            index.update(root)
            query = encoder.encode([_text(5, 20)])[0]
            hits = index.search(query, 10)
            records = index.fetch_chunks([i for i, _ in hits])
            results.append([(r.path, r.start, r.end, round(s, 5)) for r, (_, s) in zip(records, hits)])
    assert results[0] == results[1] and len(results[0]) == 10


def test_reader_follows_a_rebuild_with_another_model(tmp_path: Path, make_settings, encoder, tiny_bert_path):
    import torch
    from transformers import BertConfig, BertModel

    other = tmp_path / "other-bert"
    torch.manual_seed(2)
    BertModel(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(other)
    encoder.tokenizer.save_pretrained(other)
    root = tmp_path / "docs"
    _write(root / "a.txt", _text(1))
    with Index.open(make_settings(), create=True, encoder=encoder) as writer:
        writer.update(root)
    with Index.open(make_settings(model_path=None)) as reader:
        assert reader.encoder.dimension == 32
        with Index.open(make_settings(model_path=str(other)), rebuild=True) as writer:
            writer.update(root)
        assert reader.refresh() is True
        assert reader.encoder.dimension == 16 and reader.params.dimension == 16
        assert len(reader.search(reader.encoder.encode(["alpha"])[0], 3)) == 1
