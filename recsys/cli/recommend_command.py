"""The command that prints a user's recommendations, as the service would answer them,
or writes everyone's."""

from __future__ import annotations

from pathlib import Path

import typer

from recsys.cli.console import (
    VersionOption,
    database,
    fail,
    load_roles,
    out,
    print_frame,
    progress_bar,
)
from recsys.collab.batch_export import export_recommendations
from recsys.interpret.embeddings import with_catalog
from recsys.serving.answers import Answer, Page, answer_for_user
from recsys.serving.loading import ServedVersion


def recommend(
    user_id: str | None = typer.Argument(None, help="External user id (or --all)."),
    n: int = typer.Option(10, "-n", "--n", min=1, help="How many items."),
    fallback: str = typer.Option(
        "none", help="popular: the most rated items for a user nothing is known of."
    ),
    exclude_seen: bool = typer.Option(True, help="Leave out what the user rated."),
    everyone: bool = typer.Option(False, "--all", help="Every user's, written to --out."),
    out_path: Path = typer.Option(
        Path("recs.parquet"), "--out", help="Where --all writes: .parquet or .csv."
    ),
    version: VersionOption = None,
) -> None:
    """USER_ID's top items: the API's answer, for every kind of user (recsys.serving):
    from the model that serves recommendations, folded in from their ratings when the
    model never saw them, from their profile when a model reads one, the most rated
    items with --fallback popular. With --all, every known user's top items, in chunks,
    to a file."""
    if everyone == (user_id is not None):
        raise fail("give a USER_ID or --all, not both or neither")
    if fallback not in ("none", "popular"):
        raise fail(f"--fallback is none or popular, not {fallback!r}")
    with database() as engine:
        roles = load_roles(engine, version)
        if user_id is not None:
            answer = answer_for_user(
                roles,
                engine,
                user_id,
                Page(n),
                exclude_seen,
                fallback,  # type: ignore[arg-type]  # Typer checks it is none or popular
            )
            print_answer(answer, user_id, n)
            return
        recommender = roles.recommending().recommender
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


def print_answer(answer: Answer[ServedVersion], user_id: str, n: int) -> None:
    """The answer as a table: score, item id, title; how it was found in the heading."""
    how = "" if answer.how == "known" else f", {answer.how}"
    out.print(
        f"top {n} for user {user_id} (model version {answer.served.version.id}{how}):",
        highlight=False,
    )
    if answer.popular is not None:
        frame = answer.popular.rename(columns={"n_ratings": "score"})
        print_frame(frame, {"score": "d", "item_id": "", "title": ""})
        return
    assert answer.top is not None
    frame = with_catalog(answer.top.frame(), answer.served.catalog.aligned(answer.top.item_ids))
    print_frame(frame, {"score": ".3f", "item_id": "", "title": ""})
