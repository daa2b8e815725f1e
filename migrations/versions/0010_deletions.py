"""deletions: the write log's tombstones (a rating taken back, an item deleted, a user
erased), numbered with the ratings' writes so that every worker follows both in order

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deletions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("item_id", sa.String(255), nullable=True),
        sa.Column(
            "deleted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("kind IN ('rating', 'item', 'user')", name=op.f("ck_deletions_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletions")),
    )
    op.create_index("ix_deletions_seq", "deletions", ["seq", "id"])


def downgrade() -> None:
    op.drop_index("ix_deletions_seq", table_name="deletions")
    op.drop_table("deletions")
