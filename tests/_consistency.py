"""What every index must hold after any crash or concurrent write: SQL, FAISS and the lexical
index agree, and every document has all of its chunks."""

from __future__ import annotations

from sqlalchemy import func, select

from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index
from bertsearch.indexer.models import ChunkRow, Document


def assert_consistent(settings: Settings) -> dict:
    """Open the index at ``settings``, check it, and return its ``info()``."""
    with Index.open(settings) as index:
        info = index.info()
        assert info["chunks"] == info["faiss_vectors"] == info["lexical_chunks"]
        with index.transaction() as s:
            per_doc = dict(s.execute(select(ChunkRow.document_id, func.count()).group_by(ChunkRow.document_id)).all())
            for doc_id, n_chunks in s.execute(select(Document.id, Document.n_chunks)):
                assert per_doc.get(doc_id, 0) == n_chunks, "a document without all of its chunks"
            assert set(index.vectors.ids().tolist()) == set(s.scalars(select(ChunkRow.id)))
        return info
