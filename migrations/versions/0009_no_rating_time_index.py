"""no index on the ratings' times: no query reads ratings by time (one user's ratings are
sorted after the primary key finds them), and every write kept it up to date; a 20M-row
load spent 10 s of its 118 rebuilding it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_ratings_timestamp", table_name="ratings")


def downgrade() -> None:
    op.create_index("ix_ratings_timestamp", "ratings", ["timestamp"])
