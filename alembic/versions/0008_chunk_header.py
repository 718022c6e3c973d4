"""What is encoded before each chunk (``indexer/chunk_headers.py``): ``none`` or ``title`` (its
document's title); NULL reads as ``none``, what the indexes built before encoded.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.add_column(sa.Column("chunk_header", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.drop_column("chunk_header")
