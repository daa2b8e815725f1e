"""ratings are followed in (seq, user_id, item_id) order, so one big write can be read in
pages: every rating of a write has the same seq

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_ratings_seq", table_name="ratings")
    op.create_index("ix_ratings_seq", "ratings", ["seq", "user_id", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_ratings_seq", table_name="ratings")
    op.create_index("ix_ratings_seq", "ratings", ["seq"])
