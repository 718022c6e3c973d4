"""Documents put by key beside the folder's files: ``documents.source`` (``folder`` or ``api``),
the key unique per source (a key may equal a folder file's path), and ``documents.metadata``
(the caller's JSON object of a document put by key).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every document of an older index is a file of its folder.
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), server_default="folder", nullable=False))
        batch.add_column(sa.Column("metadata", sa.JSON(), nullable=True))
        batch.drop_constraint("uq_documents_path", type_="unique")
        batch.create_unique_constraint("uq_documents_source_path", ["source", "path"])


def downgrade() -> None:
    # An older schema has no documents but the folder's (their chunks first: SQLite may not cascade).
    op.execute(sa.text("DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE source <> 'folder')"))
    op.execute(sa.text("DELETE FROM documents WHERE source <> 'folder'"))
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint("uq_documents_source_path", type_="unique")
        batch.create_unique_constraint("uq_documents_path", ["path"])
        batch.drop_column("metadata")
        batch.drop_column("source")
