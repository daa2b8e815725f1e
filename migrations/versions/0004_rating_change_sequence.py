"""ratings carry the number of the write that last changed them, so that every API
worker can follow new ratings

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False))
    op.create_index("ix_ratings_seq", "ratings", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_ratings_seq", table_name="ratings")
    with op.batch_alter_table("ratings") as batch:
        batch.drop_column("seq")
