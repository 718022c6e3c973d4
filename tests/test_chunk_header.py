"""``chunk_header``: the document's title encoded before each chunk (a build parameter, tiny BERT).

Only the vectors change: the stored chunk text, its offsets and the lexical index stay the same.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from bertsearch.indexer.chunk_headers import encoded_texts, header_of
from bertsearch.indexer.chunking import Chunk
from bertsearch.indexer.commit import DocumentWrite
from bertsearch.indexer.common.errors import ConfigError, ModelMismatch
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.encoder import Encoder
from bertsearch.indexer.index import Index
from bertsearch.indexer.ingest import DocumentPut, apply_changes
from bertsearch.indexer.models import ChunkRow, Document, IndexState

LS = ("List information about the files in the current directory. Sort entries alphabetically when no "
      "other order is asked for, and show hidden entries with the option that says all.\n")
GUIDE = "# Backup guide\n\nBackups run every night and are kept for thirty days on the second disk.\n"
OTTERS = "River otters hunt fish at dusk and rest in burrows along the bank."


@pytest.fixture(scope="module")
def encoder(tiny_bert_path: str) -> Encoder:
    return Encoder(tiny_bert_path, precision="fp32")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "man").mkdir(parents=True)
    (root / "man" / "ls.1.txt").write_text(LS, encoding="utf-8")
    (root / "guide.md").write_text(GUIDE, encoding="utf-8")
    return root


@pytest.fixture
def make_settings(tmp_path: Path, tiny_bert_path: str):
    def make(name: str = "idx", db_url: str | None = None, **overrides) -> Settings:
        return Settings(index_dir=tmp_path / name, db_url=db_url, model_path=tiny_bert_path, chunk_tokens=16,
                        chunk_overlap=4, **overrides)

    return make


def _chunks(index: Index, path: str) -> tuple[list[tuple[str, int, int]], np.ndarray]:
    """The chunks of the document at ``path`` (text, start, end) and their stored vectors."""
    with index.transaction() as s:
        rows = s.execute(select(ChunkRow.text, ChunkRow.start, ChunkRow.end, ChunkRow.vector).join(Document)
                         .where(Document.path == path).order_by(ChunkRow.ordinal)).all()
    return [tuple(r[:3]) for r in rows], np.stack([np.frombuffer(r[3], dtype="<f4") for r in rows])


def _headed(encoder: Encoder, header: str, chunks: list[tuple[str, int, int]]) -> np.ndarray:
    return encoder.encode([f"{header}\n{text}" for text, _start, _end in chunks])


# -- the header ---------------------------------------------------------------------------------

def test_the_header_is_the_title_or_the_file_name_less_its_last_suffix():
    assert header_of("ls.1.txt", "man/ls.1.txt") == "ls.1"
    assert header_of("ls.1.txt", "ls.1.txt") == "ls.1"  # a key put with no title
    assert header_of("Backup guide", "guide.md") == "Backup guide"
    assert header_of("README", "README") == "README"
    assert header_of("", "notes.txt") == ""
    assert header_of("00012.txt", "squad/00012.txt") == ""  # a name with no letter is no header
    assert header_of("2024-01-05.md", "2024-01-05.md") == ""
    assert header_of("第三章.txt", "第三章.txt") == "第三章"  # Han characters are letters
    assert header_of("1999", "1999.txt") == "1999"  # a title the document gives is kept


def test_encoded_texts_put_the_header_before_each_chunk_only_with_title():
    doc = DocumentWrite(doc_id=None, path="man/ls.1.txt", title="ls.1.txt", text="aa bb", content_hash="h", size=5,
                        mtime=0.0, chunks=[Chunk("aa", 0, 2, 1), Chunk("bb", 3, 5, 1)])
    assert encoded_texts(doc, "title") == ["ls.1\naa", "ls.1\nbb"]
    assert encoded_texts(doc, "none") == ["aa", "bb"]
    assert encoded_texts(replace(doc, title=""), "title") == ["aa", "bb"]  # no header, no newline
    assert [c.text for c in doc.chunks] == ["aa", "bb"]
    with pytest.raises(ConfigError, match="chunk header"):
        encoded_texts(doc, "path")


def test_the_setting_is_title_by_default_and_checked(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("BERTSEARCH_CHUNK_HEADER", raising=False)
    assert Settings().chunk_header == "title"
    assert Settings(chunk_header="none").chunk_header == "none"
    monkeypatch.setenv("BERTSEARCH_CHUNK_HEADER", "none")
    assert Settings().chunk_header == "none"
    with pytest.raises(ValidationError, match="chunk_header"):
        Settings(chunk_header="path")


# -- building ------------------------------------------------------------------------------------

def test_title_changes_only_the_vectors(make_settings, docs: Path, encoder: Encoder):
    with Index.open(make_settings("plain", chunk_header="none"), create=True, encoder=encoder) as plain, \
            Index.open(make_settings("titled"), create=True, encoder=encoder) as titled:  # the default: title
        plain.update(docs)
        titled.update(docs)
        for index, header in ((plain, "none"), (titled, "title")):
            with index.transaction() as s:
                assert s.get(IndexState, 1).chunk_header == header  # stored, not left NULL
            assert index.info()["chunk_header"] == index.params.header == header
        for path, header in (("man/ls.1.txt", "ls.1"), ("guide.md", "Backup guide")):
            chunks, plain_vectors = _chunks(plain, path)
            titled_chunks, titled_vectors = _chunks(titled, path)
            assert titled_chunks == chunks  # the stored text and offsets are the chunk's own
            assert len(chunks) > 1 or path == "guide.md"
            np.testing.assert_allclose(plain_vectors, encoder.encode([c[0] for c in chunks]), atol=1e-5)
            np.testing.assert_allclose(titled_vectors, _headed(encoder, header, chunks), atol=1e-5)
            assert not np.allclose(titled_vectors, plain_vectors, atol=1e-3)
            # FAISS holds the headed vectors: each finds its own chunk
            hit_id, score = titled.search(titled_vectors[0], 1)[0]
            assert titled.fetch_chunks([hit_id])[0].text == chunks[0][0] and score == pytest.approx(1.0, abs=1e-4)
        # The lexical index reads the chunks' own text: the same hits, and the header is not in it.
        for query in ("alphabetically", "backups night"):
            hits = [(plain.fetch_chunks([i])[0].text, round(score, 4)) for i, score in plain.search_lexical(query, 5)]
            assert hits and hits == [(titled.fetch_chunks([i])[0].text, round(score, 4))
                                     for i, score in titled.search_lexical(query, 5)]
        assert titled.search_lexical("ls", 5) == []
        record = titled.fetch_chunks([titled.search_lexical("alphabetically", 1)[0][0]])[0]
        assert record.text == LS[record.start:record.end]


def test_another_chunk_header_needs_a_rebuild(make_settings, docs: Path, db_url: str, encoder: Encoder):
    with Index.open(make_settings(db_url=db_url, chunk_header="none"), create=True, encoder=encoder) as index:
        index.update(docs)
        apply_changes(index, [DocumentPut("otters", text=OTTERS, title="Otters")])
        assert index.params.header == "none"
    with Index.open(make_settings(db_url=db_url), create=True, encoder=encoder) as index:
        assert index.params.header == "none"  # unset: an index keeps its own, whatever the default
        index.update(docs)
        chunks, vectors = _chunks(index, "man/ls.1.txt")
        np.testing.assert_allclose(vectors, encoder.encode([c[0] for c in chunks]), atol=1e-5)
    for create in (False, True):  # `bertsearch index` opens with create
        with pytest.raises(ModelMismatch, match=r"chunk header none, not title.*bertsearch index PATH --rebuild"):
            Index.open(make_settings(db_url=db_url, chunk_header="title"), create=create, encoder=encoder)
    Index.open(make_settings(db_url=db_url, chunk_header="none"), encoder=encoder).close()  # the index's own

    with Index.open(make_settings(db_url=db_url, chunk_header="title"), rebuild=True, encoder=encoder) as index:
        summary = index.update(docs)
        assert summary.added == 2
        assert index.info()["chunk_header"] == "title"
        chunks, vectors = _chunks(index, "man/ls.1.txt")
        np.testing.assert_allclose(vectors, _headed(encoder, "ls.1", chunks), atol=1e-5)
        chunks, vectors = _chunks(index, "otters")  # a document put by key, re-encoded from its stored text
        np.testing.assert_allclose(vectors, _headed(encoder, "Otters", chunks), atol=1e-5)
    with Index.open(make_settings(db_url=db_url), encoder=encoder) as index:
        assert index.params.header == "title"  # unset: the index's
    with Index.open(make_settings(db_url=db_url), rebuild=True, encoder=encoder) as index:
        index.update(docs)
        assert index.params.header == "title"  # a rebuild keeps it unless it is set
        chunks, vectors = _chunks(index, "guide.md")
        np.testing.assert_allclose(vectors, _headed(encoder, "Backup guide", chunks), atol=1e-5)


def test_an_index_built_before_it_was_stored_reads_as_none(make_settings, docs: Path, encoder: Encoder):
    with Index.open(make_settings(), create=True, encoder=encoder) as index:
        index.update(docs)
    with sqlite3.connect(make_settings().index_dir / "meta.db") as conn:
        conn.execute("UPDATE index_state SET chunk_header = NULL")
    with Index.open(make_settings(), encoder=encoder) as index:
        assert index.params.chunk_header is None
        assert index.params.header == index.info()["chunk_header"] == "none"
        (docs / "new.txt").write_text(OTTERS, encoding="utf-8")
        index.update(docs)
        chunks, vectors = _chunks(index, "new.txt")
        np.testing.assert_allclose(vectors, encoder.encode([c[0] for c in chunks]), atol=1e-5)
    Index.open(make_settings(chunk_header="none"), encoder=encoder).close()
    with pytest.raises(ModelMismatch, match="--rebuild"):
        Index.open(make_settings(chunk_header="title"), encoder=encoder)


# -- documents put by key -------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["none", "title"])
def test_a_put_that_changes_only_the_title(make_settings, db_url: str, encoder: Encoder, header: str):
    with Index.open(make_settings(db_url=db_url, chunk_header=header), create=True, encoder=encoder) as index:
        apply_changes(index, [DocumentPut("otters", text=OTTERS, title="River otters")])
        chunks, before = _chunks(index, "otters")
        done = apply_changes(index, [DocumentPut("otters", text=OTTERS, title="Sea otters")])
        assert done.results[0].status == "replaced"
        same_chunks, after = _chunks(index, "otters")
        assert same_chunks == chunks
        if header == "title":  # the vectors hold the title: encoded again
            assert done.chunks_encoded == done.results[0].chunks == len(chunks)
            np.testing.assert_allclose(after, _headed(encoder, "Sea otters", chunks), atol=1e-5)
            assert not np.allclose(after, before, atol=1e-3)
        else:  # the stored vectors are kept
            assert done.chunks_encoded == 0
            assert np.array_equal(after, before)
        hit_id, _score = index.search(after[0], 1)[0]
        assert index.fetch_chunks([hit_id])[0].title == "Sea otters"
        # The metadata alone never changes what is encoded.
        done = apply_changes(index, [DocumentPut("otters", text=OTTERS, title="Sea otters", metadata={"k": "v"})])
        assert done.results[0].status == "replaced" and done.chunks_encoded == 0
        assert np.array_equal(_chunks(index, "otters")[1], after)


# -- the Ray worker --------------------------------------------------------------------------------

def test_the_ray_worker_encodes_with_the_header_it_is_given(docs: Path, tiny_bert_path: str):
    """The actor class itself, in this process (a cluster run: tests/test_ray.py)."""
    import pickle

    pd = pytest.importorskip("pandas")
    from bertsearch.indexer.distributed import _Worker

    path = docs / "man" / "ls.1.txt"
    batch = pd.DataFrame([{"path": str(path), "rel": "man/ls.1.txt", "size": path.stat().st_size, "mtime": 0.0,
                           "doc_id": -1, "digest": "h"}])
    out = {}
    for header in ("none", "title"):
        worker = _Worker(tiny_bert_path, "float", 32, None, 16, 4, chunk_header=header)
        _model_id, (doc, vectors, failure) = pickle.loads(worker(batch)["payload"][0])
        assert failure is None and doc.chunks[0].text == LS[doc.chunks[0].start:doc.chunks[0].end]
        texts = [c.text for c in doc.chunks]
        expected = worker.encoder.encode([f"ls.1\n{t}" for t in texts] if header == "title" else texts)
        np.testing.assert_allclose(vectors, expected, atol=1e-5)
        out[header] = vectors
    assert not np.allclose(out["none"], out["title"], atol=1e-3)
