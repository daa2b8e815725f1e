"""The command that prints a user's recommendations, as the service would answer them."""

from __future__ import annotations

import typer
from sqlalchemy import Engine

from recsys.cli.console import VersionOption, database, fail, out, print_frame, served_recommender
from recsys.collab.recommender import Recommender
from recsys.data.catalog import read_item_catalog
from recsys.data.ratings import UnknownIdError
from recsys.interpret.embeddings import with_catalog


def recommend(
    user_id: str = typer.Argument(..., help="External user id."),
    n: int = typer.Option(10, "-n", min=1, help="How many items."),
    version: VersionOption = None,
) -> None:
    """USER_ID's top items from the model that serves recommendations (the active ranking
    version, else the rating one), everything they rated left out: the API's answer."""
    with database() as engine:
        recommender = served_recommender(engine, version, recommending=True)
        print_recommendations(engine, recommender, user_id, n)


def print_recommendations(engine: Engine, recommender: Recommender, user_id: str, n: int) -> None:
    try:
        top = recommender.recommend(user_id, n)
    except UnknownIdError as error:
        raise fail(f"{error}: the model has no ratings of theirs") from None
    out.print(f"top {n} for user {user_id}:", highlight=False)
    frame = with_catalog(top, read_item_catalog(engine))
    print_frame(frame, {"score": ".3f", "item_id": "", "title": ""})
