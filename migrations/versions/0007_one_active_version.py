"""at most one active model version per objective, enforced by a partial unique index
(two activations at once could leave two active on PostgreSQL); where there are two
already, the newest stays active

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    versions = sa.table(
        "model_versions",
        sa.column("id", sa.Integer),
        sa.column("objective", sa.String),
        sa.column("is_active", sa.Boolean),
    )
    newer = versions.alias("newer")
    newest_active = (
        sa.select(sa.func.max(newer.c.id))
        .where(newer.c.is_active, newer.c.objective == versions.c.objective)
        .scalar_subquery()
    )
    op.execute(
        versions.update()
        .where(versions.c.is_active, versions.c.id < newest_active)
        .values(is_active=False)
    )
    op.create_index(
        "ux_model_versions_active",
        "model_versions",
        ["objective"],
        unique=True,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    )


def downgrade() -> None:
    op.drop_index("ux_model_versions_active", table_name="model_versions")
