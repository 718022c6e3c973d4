"""The precision an index's vectors were encoded with (``int8``, or ``bf16``/``fp32``, which
give the same vectors): queries are encoded the same way.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Indexes from before are float (bf16 or fp32): NULL reads as that.
    with op.batch_alter_table("index_state") as batch:
        batch.add_column(sa.Column("precision", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.drop_column("precision")
