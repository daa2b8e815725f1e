"""Commands that delete: a rating, an item with its ratings, users (erasure); each one
write, all or nothing, that every serving worker follows within a poll (see
recsys.db.deletion and docs/operations.md#deleting)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from recsys.cli.console import database, fail, out, require_schema
from recsys.db.deletion import delete_item, delete_ratings, erase_users, read_user_ids
from recsys.db.sources import IngestError, from_frame, open_table
from recsys.settings import get_settings

delete_app = typer.Typer(
    help="Delete a rating, an item (with its ratings) or users (erasure).", no_args_is_help=True
)


@delete_app.command("rating")
def delete_rating(
    user_id: Annotated[str, typer.Argument(help="The user who rated.")],
    item_id: Annotated[str, typer.Argument(help="The item they rated.")],
) -> None:
    """Take USER_ID's rating of ITEM_ID back (many at once: `recsys ingest deletions`)."""
    pair = pd.DataFrame({"user_id": [user_id], "item_id": [item_id]})
    with database() as engine:
        require_schema(engine)
        try:
            report = delete_ratings(engine, from_frame("arguments", pair, 1))
        except IngestError as error:
            raise fail(f"{error} (nothing was deleted)") from None
    if not report.ratings_deleted:
        raise fail(f"user {user_id!r} has no rating of item {item_id!r}")
    out.print(f"deleted user {user_id!r}'s rating of item {item_id!r}", highlight=False)


@delete_app.command("item")
def delete_item_command(
    item_id: Annotated[str, typer.Argument(help="The item to delete.")],
) -> None:
    """Delete ITEM_ID and every rating of it. To stop recommending an item but keep its
    ratings for training, hide it instead (PATCH /items/{id})."""
    with database() as engine:
        require_schema(engine)
        report = delete_item(engine, item_id)
    if report is None:
        raise fail(f"unknown item id {item_id!r}")
    out.print(
        f"deleted item {item_id!r} and its {report.ratings_deleted:,} ratings", highlight=False
    )


@delete_app.command("user")
def erase_users_command(
    user_ids: Annotated[list[str] | None, typer.Argument(help="The users to erase.")] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--file", help="A CSV, TSV or parquet file with a user_id column."),
    ] = None,
    user_col: str = typer.Option("user_id", help="The file's user id column."),
) -> None:
    """Erase users: their ratings and profiles, in one write. Models trained before keep
    what they learned from them (never answering with it) until `recsys models forget`
    or the next training run."""
    wanted = list(user_ids or [])
    with database() as engine:
        require_schema(engine)
        if from_file is not None:
            try:
                source = open_table(from_file, get_settings().ingest_chunk_rows)
                wanted += read_user_ids(source, user_col)
            except IngestError as error:
                raise fail(f"{error} (nobody was erased)") from None
        if not wanted:
            raise fail("name the users to erase, or give --file")
        report = erase_users(engine, wanted)
    unknown = len(dict.fromkeys(wanted)) - report.users_erased
    out.print(
        f"erased {report.users_erased:,} users and their {report.ratings_deleted:,} ratings"
        + (f"; {unknown:,} ids were not in the database" if unknown else ""),
        highlight=False,
    )
