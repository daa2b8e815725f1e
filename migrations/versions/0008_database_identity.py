"""every database gets an identity of its own, recorded in the model files trained on it:
two databases sharing one artifact folder (ids start at 1 in each) overwrote each
other's files

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    identity = op.create_table(
        "database_identity",
        sa.Column("identity", sa.String(36), primary_key=True),
    )
    op.bulk_insert(identity, [{"identity": str(uuid.uuid4())}])


def downgrade() -> None:
    op.drop_table("database_identity")
