"""items can be hidden from every list (discontinued products, takedowns) without
deleting them or their ratings

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(
            sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Every worker reads the hidden ones twice a second: only those rows are indexed.
    op.create_index(
        "ix_items_hidden",
        "items",
        ["hidden"],
        sqlite_where=sa.text("hidden"),
        postgresql_where=sa.text("hidden"),
    )


def downgrade() -> None:
    op.drop_index("ix_items_hidden", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("hidden")
