"""The command that prints a user's recommendations, as the service would answer them,
or writes everyone's."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import Engine

from recsys.cli.console import (
    VersionOption,
    database,
    fail,
    out,
    print_frame,
    progress_bar,
    served_recommender,
)
from recsys.collab.batch_export import export_recommendations
from recsys.collab.recommender import Recommender
from recsys.data.catalog import read_item_catalog
from recsys.data.ratings import UnknownIdError
from recsys.interpret.embeddings import with_catalog


def recommend(
    user_id: str | None = typer.Argument(None, help="External user id (or --all)."),
    n: int = typer.Option(10, "-n", "--n", min=1, help="How many items."),
    everyone: bool = typer.Option(False, "--all", help="Every user's, written to --out."),
    out_path: Path = typer.Option(
        Path("recs.parquet"), "--out", help="Where --all writes: .parquet or .csv."
    ),
    version: VersionOption = None,
) -> None:
    """USER_ID's top items from the model that serves recommendations (the active ranking
    version, else the rating one), everything they rated and hidden items left out: the
    API's answer. With --all, every user's top items, in chunks, to a file."""
    if everyone == (user_id is not None):
        raise fail("give a USER_ID or --all, not both or neither")
    with database() as engine:
        recommender = served_recommender(engine, version, recommending=True)
        if user_id is not None:
            print_recommendations(engine, recommender, user_id, n)
            return
    with progress_bar() as progress:
        task = progress.add_task("users", total=len(recommender.user_map))
        try:
            report = export_recommendations(
                recommender,
                out_path,
                n,
                on_chunk=lambda done: progress.update(task, completed=done),
            )
        except ValueError as error:
            raise fail(str(error)) from None
    out.print(
        f"wrote {report.rows:,} recommendations for {report.users:,} users to {out_path} "
        f"in {report.seconds:.1f} s ({report.users / report.seconds * 60:,.0f} users/minute)",
        highlight=False,
    )


def print_recommendations(engine: Engine, recommender: Recommender, user_id: str, n: int) -> None:
    try:
        top = recommender.recommend(user_id, n)
    except UnknownIdError as error:
        raise fail(f"{error}: the model has no ratings of theirs") from None
    out.print(f"top {n} for user {user_id}:", highlight=False)
    frame = with_catalog(top, read_item_catalog(engine))
    print_frame(frame, {"score": ".3f", "item_id": "", "title": ""})
