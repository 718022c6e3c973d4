"""The index id: a random identity of the database, stamped into the derived files.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.add_column(sa.Column("index_id", sa.String(length=32), nullable=True))
    state = sa.table("index_state", sa.column("index_id", sa.String(32)))
    op.execute(state.update().where(state.c.index_id.is_(None)).values(index_id=uuid.uuid4().hex))


def downgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.drop_column("index_id")
