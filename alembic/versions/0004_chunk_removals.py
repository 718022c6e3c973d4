"""The log of removed chunks: a reader at generation g moves to G by applying the chunks added
(ids above its highest) and removed (this log) since g, rather than reloading every vector.

``index_state.removals_from``: the log holds every removal of the generations above it.
``index_state.index_type``: the FAISS index kind asked for (``auto``, ``flat``, ``hnsw``, ``hnsw-sq8``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chunk_removals",
        sa.Column("chunk_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chunk_id", name=op.f("pk_chunk_removals")),
    )
    op.create_index(op.f("ix_chunk_removals_generation"), "chunk_removals", ["generation"], unique=False)
    with op.batch_alter_table("index_state") as batch:
        batch.add_column(sa.Column("removals_from", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("index_type", sa.String(length=16), nullable=True))
    # The log starts empty: it covers the generations after the current one.
    state = sa.table("index_state", sa.column("generation", sa.BigInteger), sa.column("removals_from", sa.BigInteger))
    op.execute(state.update().values(removals_from=state.c.generation))


def downgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.drop_column("index_type")
        batch.drop_column("removals_from")
    op.drop_index(op.f("ix_chunk_removals_generation"), table_name="chunk_removals")
    op.drop_table("chunk_removals")
