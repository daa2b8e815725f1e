"""Load ratings and user/item metadata into the database, all or nothing.

Each input is read in chunks and validated into a temporary staging table inside
one transaction (:mod:`recsys.db.staging`); only when every file is clean are the
rows merged into the real tables (:mod:`recsys.db.merge`: upserts keyed by external
id and by (user, item)). A bad row anywhere rolls the whole transaction back, so
the database is left exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.progress import Progress
from sqlalchemy import Engine

from recsys.db import validate
from recsys.db.engine import write_transaction
from recsys.db.merge import merge_metadata, merge_ratings
from recsys.db.sources import Chunk, TableSource
from recsys.db.staging import (
    ColumnNames,
    has_repeated_pair,
    item_rows,
    keep_unchanged_times,
    pair_numbers,
    rating_rows,
    reject_duplicate_ids,
    reject_duplicate_ratings,
    stage,
    staging_tables,
    user_rows,
    with_internal_ids,
)
from recsys.db.write_log import next_write_number

__all__ = ["ColumnNames", "IngestReport", "ingest"]


@dataclass(frozen=True)
class IngestReport:
    """What one ingestion changed."""

    ratings_read: int = 0
    ratings_inserted: int = 0
    ratings_updated: int = 0
    users_created: int = 0
    items_created: int = 0
    users_updated: int = 0
    items_updated: int = 0


def ingest(
    engine: Engine,
    ratings_source: TableSource | None = None,
    *,
    users_source: TableSource | None = None,
    items_source: TableSource | None = None,
    columns: ColumnNames = ColumnNames(),
    rating_range: tuple[float, float] = (0.5, 5.0),
    progress: Progress | None = None,
) -> IngestReport:
    """Validate and load the given tables in one transaction; raise IngestError on bad input.

    Ratings for unknown users or items create them. Re-ingesting a file updates
    values and timestamps that changed and leaves everything else untouched.
    """
    validate.check_rating_range(*rating_range)
    for source, required in (
        (users_source, [columns.user]),
        (items_source, [columns.item]),
        (ratings_source, [columns.user, columns.item, columns.rating]),
    ):
        if source is not None:
            validate.require_columns(source.name, source.columns, required)
    staging = staging_tables()
    ingested_at = int(time.time())
    with write_transaction(engine) as connection:
        staging.create_all(connection)
        # New users and items, counted where they are made: counting whole tables
        # would cost every one-rating API write a scan of users and items.
        created = {"users": 0, "items": 0}
        if users_source is not None:
            stage(
                connection,
                staging.tables["staging_users"],
                users_source,
                progress,
                lambda chunk: user_rows(chunk, users_source, columns),
            )
        if items_source is not None:
            stage(
                connection,
                staging.tables["staging_items"],
                items_source,
                progress,
                lambda chunk: item_rows(chunk, items_source, columns),
            )
        reject_duplicate_ids(connection, staging, users_source, items_source)
        updated = merge_metadata(
            connection,
            staging,
            {"users": users_source is not None, "items": items_source is not None},
            created,
        )
        ratings_read = inserted = changed = 0
        if ratings_source is not None:
            # The write number first: on PostgreSQL it takes the lock that makes
            # rating writers (and the ids they create) take turns until commit.
            seq = next_write_number(connection)
            keys = staging.tables["staging_keys"]
            pairs: list[np.ndarray] = []  # each staged rating's (user, item), as one number

            def staged_rows(chunk: Chunk) -> pd.DataFrame:
                rows = with_internal_ids(
                    connection,
                    keys,
                    rating_rows(chunk, ratings_source, columns, rating_range),
                    created,
                )
                pairs.append(pair_numbers(rows["user_id"], rows["item_id"]))
                return rows

            ratings_read = stage(
                connection, staging.tables["staging_ratings"], ratings_source, progress, staged_rows
            )
            staged = staging.tables["staging_ratings"]
            if has_repeated_pair(pairs):  # then the database names the rows
                reject_duplicate_ratings(connection, staged, ratings_source)
            keep_unchanged_times(connection, staged, ingested_at)
            inserted, changed = merge_ratings(connection, staged, seq)
        report = IngestReport(
            ratings_read=ratings_read,
            ratings_inserted=inserted,
            ratings_updated=changed,
            users_created=created["users"],
            items_created=created["items"],
            users_updated=updated["users"],
            items_updated=updated["items"],
        )
        # Only after success: a failed transaction is rolled back, the staging tables
        # with it (DDL is transactional on both databases), and any statement in an
        # aborted PostgreSQL transaction would hide the first error behind its own.
        staging.drop_all(connection, checkfirst=True)
    return report
