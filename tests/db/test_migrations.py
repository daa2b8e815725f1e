"""The migrations create exactly the schema the code describes, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from recsys.db.migrate import alembic_config, current_revision, head_revision, upgrade
from recsys.db.tables import metadata


def test_upgrade_leaves_no_pending_autogenerate_diff(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_is_idempotent_and_reaches_head(engine: Engine, database_url: str) -> None:
    upgrade(database_url)
    assert current_revision(engine) == head_revision(database_url)
    assert {"users", "items", "ratings", "model_versions"} <= set(inspect(engine).get_table_names())


def test_ratings_are_indexed_for_reads_by_user_and_by_item(engine: Engine) -> None:
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("ratings")["constrained_columns"] == ["user_id", "item_id"]
    indexed = [index["column_names"] for index in inspector.get_indexes("ratings")]
    assert ["item_id"] in indexed


def test_downgrade_to_base_removes_the_schema(engine: Engine, database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "base")
    assert current_revision(engine) is None
    assert "ratings" not in inspect(engine).get_table_names()
