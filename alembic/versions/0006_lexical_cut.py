"""How the lexical index cuts text into terms (``indexer/terms.py``): ``words`` for the indexes
built before (NULL reads as that), ``cjk`` for new builds (Chinese, Japanese and Korean runs cut
into characters and bigrams).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.add_column(sa.Column("lexical_cut", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.drop_column("lexical_cut")
