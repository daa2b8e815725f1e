"""The schema: users, items, ratings and model versions (SQLAlchemy Core tables).

External ids are stored as strings, whatever type the user's data gives them,
so that ``"42"`` in a URL and ``42`` in a CSV name the same user. Timestamps of
ratings are Unix seconds: cheap to bulk-load, and all that temporal splits need.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import JSON

# JSONB on PostgreSQL (comparable, indexable); plain JSON text on SQLite.
# Python None is stored as SQL NULL, not as the JSON literal null.
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Deterministic constraint names, so Alembic migrations match on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(255), nullable=False, unique=True),
    Column("age", Integer, nullable=True),
    Column("gender", String(32), nullable=True),
    Column("occupation", String(64), nullable=True),
    Column("zip_code", String(32), nullable=True),
    Column("attributes", Json, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(255), nullable=False, unique=True),
    Column("title", Text, nullable=True),
    Column("release_date", Date, nullable=True),
    Column("genres", Json, nullable=True),
    Column("attributes", Json, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Hidden items are kept (and their ratings trained on) but never recommended.
    Column("hidden", Boolean, nullable=False, server_default=false()),
    Index(
        "ix_items_hidden", "hidden", sqlite_where=text("hidden"), postgresql_where=text("hidden")
    ),
)

ratings = Table(
    "ratings",
    metadata,
    # The composite primary key is also the "ratings by user" index.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("value", Float, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    # The number of the write (ingestion, feedback) that last changed the rating: each
    # write takes the next number, in commit order, so API workers follow new ratings by
    # asking for everything above the last number they saw.
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Index("ix_ratings_item_id", "item_id"),
    Index("ix_ratings_seq", "seq", "user_id", "item_id"),  # the order followers read
)

# The write log's tombstones, numbered like the ratings' writes (``seq``, one number per
# write) so that a worker follows both in one order: a rating taken back ("rating": user
# and item), an item deleted with its ratings ("item"), a user erased with their ratings
# and profile ("user"). Ids are external: the rows they named are gone. A user's erasure
# removes their "rating" rows here too, which would say what they had rated.
deletions = Table(
    "deletions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("item_id", String(255), nullable=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('rating', 'item', 'user')", name="kind"),
    Index("ix_deletions_seq", "seq", "id"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    # "rating" models answer rating predictions; "ranking" models answer top-N lists.
    Column("objective", String(16), nullable=False, server_default="rating"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("hyperparameters", Json, nullable=False, default=dict),
    Column("metrics", Json, nullable=False, default=dict),
    Column("artifact_path", Text, nullable=True),
    Column("status", String(16), nullable=False, default="training"),
    Column("error", Text, nullable=True),
    Column("is_active", Boolean, nullable=False, default=False),
    # While training: "host:pid" of the run, and when it last said it was alive.
    Column("owner", String(255), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Index("ix_model_versions_is_active", "is_active"),
    # At most one active version per objective, whatever runs at once.
    Index(
        "ux_model_versions_active",
        "objective",
        unique=True,
        sqlite_where=text("is_active"),
        postgresql_where=text("is_active"),
    ),
)

# One row, written when the schema is made: the identity recorded in every model file
# trained on this database, so that databases sharing an artifact folder never overwrite
# or serve each other's files.
database_identity = Table(
    "database_identity",
    metadata,
    Column("identity", String(36), primary_key=True),
)
