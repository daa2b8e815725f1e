"""Commands for the database and data: schema, loading, ingestion, the quickstart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine, func, select

from recsys.cli.console import (
    database,
    fail,
    load_roles,
    out,
    progress_bar,
    require_schema,
)
from recsys.cli.recommend_command import print_answer
from recsys.cli.serve_command import serve
from recsys.data.ratings import read_ratings
from recsys.db import movielens
from recsys.db.deletion import delete_ratings
from recsys.db.ingest import ColumnNames, IngestReport, ingest
from recsys.db.migrate import current_revision, upgrade
from recsys.db.sources import IngestError, open_table
from recsys.db.tables import items, ratings, users
from recsys.db.validate import check_rating_range
from recsys.jobs.model_versions import active_version
from recsys.jobs.training_job import TrainConfig, train_and_register
from recsys.serving.answers import Page, answer_for_user
from recsys.settings import get_settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
load_app = typer.Typer(help="Load a bundled data set.", no_args_is_help=True)
ingest_app = typer.Typer(help="Ingest your own files.", no_args_is_help=True)
dataset_app = typer.Typer(help="Data sets built from the database.", no_args_is_help=True)


def _print_report(report: IngestReport, seconds: float) -> None:
    out.print(
        f"ratings: {report.ratings_read:,} read, {report.ratings_inserted:,} new, "
        f"{report.ratings_updated:,} updated; users: {report.users_created:,} new, "
        f"{report.users_updated:,} updated; items: {report.items_created:,} new, "
        f"{report.items_updated:,} updated ({seconds:.2f} s)",
        highlight=False,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the schema (idempotent)."""
    with database() as engine:
        upgrade(engine.url.render_as_string(hide_password=False), revision)
        out.print(f"database at revision {current_revision(engine)}", highlight=False)


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    with database() as engine:
        out.print(current_revision(engine) or "not migrated", highlight=False)


@load_app.command("movielens-100k")
def load_movielens() -> None:
    """Load the bundled MovieLens-100k (GroupLens): 100,000 ratings, 943 users, 1,682 films."""
    settings = get_settings()
    with database() as engine:
        require_schema(engine)
        _load_movielens(engine, settings.ingest_chunk_rows)


def _load_movielens(engine: Engine, chunk_rows: int) -> None:
    started = time.perf_counter()
    with progress_bar() as progress:
        report = movielens.load(engine, chunk_rows, progress)
    _print_report(report, time.perf_counter() - started)


@ingest_app.command("ratings")
def ingest_ratings(
    ratings_file: Annotated[Path, typer.Argument(help="CSV, TSV or parquet file of ratings.")],
    users_file: Annotated[Path | None, typer.Option("--users", help="User metadata file.")] = None,
    items_file: Annotated[Path | None, typer.Option("--items", help="Item metadata file.")] = None,
    user_col: str = typer.Option("user_id", help="User id column (ratings and users files)."),
    item_col: str = typer.Option("item_id", help="Item id column (ratings and items files)."),
    rating_col: str = typer.Option("rating", help="Rating column."),
    timestamp_col: str = typer.Option(
        "timestamp", help="Time column (Unix seconds or ISO-8601); if absent, now."
    ),
    title_col: str = typer.Option("title", help="Item title column."),
    genres_col: str = typer.Option("genres", help="Item genres column ('|'-separated)."),
    release_date_col: str = typer.Option("release_date", help="Item release date column."),
    min_rating: float | None = typer.Option(None, help="Lowest valid rating [RECSYS_RATING_MIN]."),
    max_rating: float | None = typer.Option(None, help="Highest valid rating [RECSYS_RATING_MAX]."),
) -> None:
    """Validate and load ratings (and optional user/item metadata), all or nothing."""
    settings = get_settings()
    low = settings.rating_min if min_rating is None else min_rating
    high = settings.rating_max if max_rating is None else max_rating
    try:
        check_rating_range(low, high)
    except ValueError as error:
        raise fail(f"--min-rating/--max-rating: {error}") from None
    columns = ColumnNames(
        user=user_col,
        item=item_col,
        rating=rating_col,
        timestamp=timestamp_col,
        title=title_col,
        genres=genres_col,
        release_date=release_date_col,
    )
    chunk_rows = settings.ingest_chunk_rows
    started = time.perf_counter()
    with database() as engine:
        require_schema(engine)
        try:
            with progress_bar() as progress:
                report = ingest(
                    engine,
                    open_table(ratings_file, chunk_rows),
                    users_source=open_table(users_file, chunk_rows) if users_file else None,
                    items_source=open_table(items_file, chunk_rows) if items_file else None,
                    columns=columns,
                    rating_range=(low, high),
                    progress=progress,
                )
        except IngestError as error:
            raise fail(f"{error} (nothing was written)") from None
    _print_report(report, time.perf_counter() - started)


@ingest_app.command("deletions")
def ingest_deletions(
    pairs_file: Annotated[
        Path, typer.Argument(help="CSV, TSV or parquet file of (user, item) pairs.")
    ],
    user_col: str = typer.Option("user_id", help="User id column."),
    item_col: str = typer.Option("item_id", help="Item id column."),
) -> None:
    """Delete the ratings of the file's (user, item) pairs, all or nothing: validated like
    `ingest ratings`; pairs without a rating, and repeats, change nothing."""
    started = time.perf_counter()
    with database() as engine:
        require_schema(engine)
        try:
            with progress_bar() as progress:
                report = delete_ratings(
                    engine,
                    open_table(pairs_file, get_settings().ingest_chunk_rows),
                    ColumnNames(user=user_col, item=item_col),
                    progress,
                )
        except IngestError as error:
            raise fail(f"{error} (nothing was deleted)") from None
    out.print(
        f"pairs: {report.pairs_read:,} read; ratings: {report.ratings_deleted:,} deleted "
        f"({time.perf_counter() - started:.2f} s)",
        highlight=False,
    )


@dataset_app.command("info")
def dataset_info(
    metadata: bool = typer.Option(False, help="Also read user and item metadata."),
) -> None:
    """Build the training data set from the database and say how big it is and how long it took."""
    with database() as engine:
        started = time.perf_counter()
        table = read_ratings(engine, with_metadata=metadata)
        seconds = time.perf_counter() - started
    out.print(
        f"{len(table):,} ratings, {table.n_users:,} users, {table.n_items:,} items "
        f"built in {seconds:.3f} s",
        highlight=False,
    )


def quickstart(
    serve_api: bool = typer.Option(True, "--serve/--no-serve", help="End by serving the API."),
    host: str = typer.Option("127.0.0.1", help="Interface to serve on."),
    port: int = typer.Option(8000, help="Port to serve on."),
) -> None:
    """Migrate, load MovieLens-100k (when the database has no ratings), train, recommend, serve."""
    settings = get_settings()
    with database() as engine:
        url = engine.url.render_as_string(hide_password=False)
        upgrade(url)
        out.print(
            f"database {engine.url.render_as_string(hide_password=True)} "
            f"at revision {current_revision(engine)}",
            highlight=False,
        )
        with engine.connect() as connection:
            n_ratings = connection.execute(select(func.count()).select_from(ratings)).scalar_one()
            n_users = connection.execute(select(func.count()).select_from(users)).scalar_one()
            n_items = connection.execute(select(func.count()).select_from(items)).scalar_one()
        if n_ratings:
            out.print(
                f"database already holds {n_ratings:,} ratings, {n_users:,} users and "
                f"{n_items:,} items: not loading MovieLens-100k again",
                highlight=False,
            )
        else:
            _load_movielens(engine, settings.ingest_chunk_rows)
        started = time.perf_counter()
        table = read_ratings(engine)
        out.print(
            f"data set: {len(table):,} ratings, {table.n_users:,} users, {table.n_items:,} items "
            f"({time.perf_counter() - started:.2f} s)",
            highlight=False,
        )
        for objective in ("rating", "ranking"):
            version = active_version(engine, objective)
            if version is not None:
                out.print(
                    f"serving {objective} model version {version.id} ({version.kind}); "
                    "`recsys train` retrains",
                    highlight=False,
                )
                continue
            started = time.perf_counter()
            result = train_and_register(
                engine,
                TrainConfig(objective=objective, device=settings.device),
                settings.artifact_dir,
            )
            out.print(
                f"trained {result.fitted.config.model} ({objective}) in "
                f"{time.perf_counter() - started:.1f} s: "
                f"model version {result.version_id} is active",
                highlight=False,
            )
        roles = load_roles(engine)
        first = str(roles.recommending().recommender.user_map.ids[0])
        print_answer(answer_for_user(roles, engine, first, Page(5)), first, 5)
    if serve_api:
        out.print(
            f"serving on http://{host}:{port} (explorer: /explorer, API docs: /docs); Ctrl-C stops",
            highlight=False,
        )
        serve(host=host, port=port, workers=1, insecure=False, access_log=False)
