"""The texts put before what is encoded: before each query and each chunk (E5's ``query: `` and
``passage: ``); NULL reads as none, the prefixes of the indexes built before (no model had any).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.add_column(sa.Column("query_prefix", sa.Text(), nullable=True))
        batch.add_column(sa.Column("passage_prefix", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.drop_column("passage_prefix")
        batch.drop_column("query_prefix")
