"""Commands that show what a trained model learned."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
import typer

from recsys.cli.console import (
    VersionOption,
    database,
    fail,
    load_roles,
    out,
    print_frame,
    resolve_item_query,
)
from recsys.data.catalog import read_item_catalog, read_user_ratings, read_user_stats
from recsys.data.ids import UnknownIdError
from recsys.interpret.embeddings import bias_ranking, item_pca, with_catalog
from recsys.interpret.plots import plot_biases, plot_item_map
from recsys.models.scorer import CapabilityError, NoRatingScaleError

interpret_app = typer.Typer(help="What a trained model learned.", no_args_is_help=True)

BIAS_COLUMNS = {"bias": ".3f", "n_ratings": "d", "mean_rating": ".2f"}


@interpret_app.command("biases")
def interpret_biases(
    n: int = typer.Option(10, "-n", min=1, help="How many at each end."),
    version: VersionOption = None,
    users_too: bool = typer.Option(False, "--users", help="Also list user biases."),
    plot: Path | None = typer.Option(None, help="Write a bar chart of the item biases (PNG)."),
) -> None:
    """Items everyone rates above (or below) what their taste vectors predict."""
    with database() as engine:
        recommender = load_roles(engine, version).describing().recommender
        catalog = read_item_catalog(engine)
        user_stats = read_user_stats(engine) if users_too else None
    try:
        lowest, highest = bias_ranking(recommender, catalog, n)
    except CapabilityError as error:
        raise fail(str(error)) from None
    for heading, frame in (("lowest item biases", lowest), ("highest item biases", highest)):
        out.print(heading, highlight=False)
        print_frame(frame, {**BIAS_COLUMNS, "item_id": "", "title": ""})
    if user_stats is not None:
        lowest, highest = bias_ranking(recommender, user_stats, n, side="user")
        for heading, frame in (("lowest user biases", lowest), ("highest user biases", highest)):
            out.print(heading, highlight=False)
            print_frame(frame, {**BIAS_COLUMNS, "user_id": ""})
    if plot is not None:
        out.print(
            f"wrote {plot_biases(*bias_ranking(recommender, catalog, n), plot)}", highlight=False
        )


@interpret_app.command("pca")
def interpret_pca(
    components: int = typer.Option(3, min=1, help="Principal components to keep."),
    min_ratings: int = typer.Option(20, min=0, help="Fit on items with this many ratings."),
    n: int = typer.Option(5, "-n", min=1, help="Items shown at each end of a component."),
    version: VersionOption = None,
    plot: Path | None = typer.Option(None, help="Write the PC1/PC2 map of items (PNG)."),
) -> None:
    """Principal components of the item embeddings, and the items at both ends of each."""
    with database() as engine:
        recommender = load_roles(engine, version).describing().recommender
        catalog = read_item_catalog(engine)
    try:
        item_map = item_pca(recommender, catalog, components, min_ratings)
    except ValueError as error:
        raise fail(str(error)) from None
    out.print(
        f"fitted on {item_map.n_fitted} items with at least {min_ratings} ratings", highlight=False
    )
    for k, variance in enumerate(item_map.explained_variance, start=1):
        low, high = item_map.ends(k, n)
        out.print(f"PC{k} ({variance:.1%} of variance)", highlight=False)
        out.print(f"  low:  {'; '.join(low['title'].fillna(low['item_id']))}", highlight=False)
        out.print(f"  high: {'; '.join(high['title'].fillna(high['item_id']))}", highlight=False)
    if plot is not None:
        if len(item_map.explained_variance) < 2:
            raise fail("the map needs at least 2 components")
        out.print(f"wrote {plot_item_map(item_map, plot)}", highlight=False)


def _not_in_model(item_id: object) -> str:
    return f"item {item_id!r} has no ratings in the model's training data"


def _title(catalog: pd.DataFrame, item_id: object) -> str:
    return str(catalog.loc[catalog["item_id"] == item_id, "title"].iloc[0])


def similar(
    item: str = typer.Argument(..., help="Item id, or part of its title."),
    n: int = typer.Option(10, "-n", min=1, help="How many neighbours."),
    min_ratings: int = typer.Option(0, min=0, help="Leave out neighbours with fewer ratings."),
    version: VersionOption = None,
) -> None:
    """Items nearest to ITEM by cosine similarity of their embeddings."""
    with database() as engine:
        recommender = load_roles(engine, version).describing().recommender
        catalog = read_item_catalog(engine)
    item_id = resolve_item_query(catalog, item)
    try:
        similar = recommender.similar_items(item_id, n, min_ratings).frame()
        neighbours = with_catalog(similar, catalog)
    except UnknownIdError:
        raise fail(_not_in_model(item_id)) from None
    out.print(f"nearest to {item_id}: {_title(catalog, item_id)}", highlight=False)
    print_frame(neighbours, {"score": ".3f", "n_ratings": "d", "item_id": "", "title": ""})


def explain(
    user_id: str = typer.Argument(..., help="External user id."),
    item: str = typer.Argument(..., help="Item id, or part of its title."),
    n: int = typer.Option(3, "-n", min=1, help="How many reasons."),
    version: VersionOption = None,
) -> None:
    """Why ITEM suits USER_ID: the user's liked items most similar to it."""
    with database() as engine:
        recommender = load_roles(engine, version).describing().recommender
        catalog = read_item_catalog(engine)
        user_ratings = read_user_ratings(engine, user_id)
    item_id = resolve_item_query(catalog, item)
    if user_id not in recommender.user_map:
        raise fail(f"unknown user id {user_id!r}")
    try:
        reasons = recommender.explain(user_id, item_id, n).frame()
    except UnknownIdError:
        raise fail(_not_in_model(item_id)) from None
    predicted = ""
    with contextlib.suppress(NoRatingScaleError):  # a ranking model explains, not rates
        pair = pd.DataFrame({"user_id": [user_id], "item_id": [item_id]})
        predicted = f": predicted {recommender.predict(pair).ratings[0]:.2f}"
    rated = user_ratings.astype({"item_id": str})[["item_id", "rating"]]
    reasons = reasons.rename(columns={"score": "similarity"}).astype({"item_id": str})
    reasons = with_catalog(reasons.merge(rated, on="item_id"), catalog)
    out.print(f"{_title(catalog, item_id)} for user {user_id}{predicted}", highlight=False)
    if reasons.empty:
        out.print("the user has no liked items the model knows", highlight=False)
    else:
        out.print("because they liked:", highlight=False)
        print_frame(reasons, {"similarity": ".3f", "rating": ".1f", "item_id": "", "title": ""})
