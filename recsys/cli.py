"""The ``recsys`` command line: database, ingestion, data sets and the quickstart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from recsys.collab import load_recommender
from recsys.data.catalog import read_item_catalog, read_user_ratings, read_user_stats
from recsys.data.ratings import UnknownIdError, read_ratings
from recsys.db import movielens
from recsys.db.engine import make_engine
from recsys.db.ingest import ColumnNames, IngestReport, ingest
from recsys.db.migrate import current_revision, head_revision, upgrade
from recsys.db.sources import IngestError, open_table
from recsys.db.tables import items, ratings, users
from recsys.interpret.embeddings import (
    AmbiguousItemError,
    NoBiasesError,
    bias_ranking,
    item_pca,
    resolve_item,
    similar_items,
)
from recsys.interpret.embeddings import explain as explain_item
from recsys.interpret.plots import plot_biases, plot_item_map
from recsys.recommend import Recommender
from recsys.settings import Settings, get_settings
from recsys.training import TrainConfig, train_from_database

app = typer.Typer(
    help="recsys: ratings in a SQL database in, recommendations out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
load_app = typer.Typer(help="Load a bundled data set.", no_args_is_help=True)
ingest_app = typer.Typer(help="Ingest your own files.", no_args_is_help=True)
dataset_app = typer.Typer(help="Data sets built from the database.", no_args_is_help=True)
interpret_app = typer.Typer(help="What a trained model learned.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")
app.add_typer(ingest_app, name="ingest")
app.add_typer(dataset_app, name="dataset")
app.add_typer(interpret_app, name="interpret")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


@contextmanager
def database() -> Iterator[Engine]:
    """An engine on RECSYS_DATABASE_URL; connection failures become one clear line."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        yield engine
    except SQLAlchemyError as error:
        url = engine.url.render_as_string(hide_password=True)
        raise fail(f"database {url}: {error.__class__.__name__}: {error.orig or error}") from None
    finally:
        engine.dispose()


def progress_bar() -> Progress:
    """A progress display that shows in a terminal and stays silent in logs."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _print_report(report: IngestReport, seconds: float) -> None:
    out.print(
        f"ratings: {report.ratings_read:,} read, {report.ratings_inserted:,} new, "
        f"{report.ratings_updated:,} updated; users: {report.users_created:,} new, "
        f"{report.users_updated:,} updated; items: {report.items_created:,} new, "
        f"{report.items_updated:,} updated ({seconds:.2f} s)",
        highlight=False,
    )


def _require_schema(engine: Engine) -> None:
    if current_revision(engine) != head_revision(engine.url.render_as_string(False)):
        raise fail("the database schema is not up to date: run `recsys db upgrade` first")


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
        _require_schema(engine)
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
    if low >= high:
        raise fail(f"--min-rating ({low}) must be below --max-rating ({high})")
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
        _require_schema(engine)
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


@app.command()
def quickstart() -> None:
    """Migrate, load MovieLens-100k (when the database has no ratings), train, recommend."""
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
        artifact = settings.artifact_dir / "dot.pt"
        if artifact.is_file():
            out.print(
                f"using the trained model {artifact} (`recsys train` retrains it)", highlight=False
            )
        else:
            started = time.perf_counter()
            learn = train_from_database(engine, TrainConfig(device=settings.device))
            learn.save(artifact)
            out.print(
                f"trained DotProductBias in {time.perf_counter() - started:.1f} s, "
                f"saved {artifact}",
                highlight=False,
            )
        recommender = load_recommender(artifact)
        user_id = recommender.user_map.ids[0]
        top = recommender.recommend(user_id, n=5)
        with engine.connect() as connection:
            titles = dict(
                connection.execute(
                    select(items.c.external_id, items.c.title).where(
                        items.c.external_id.in_([str(i) for i in top["item_id"]])
                    )
                ).all()
            )
    out.print(f"top 5 for user {user_id}:", highlight=False)
    for row in top.itertuples():
        out.print(
            f"  {row.score:.2f}  {titles.get(str(row.item_id), row.item_id)}", highlight=False
        )


ModelOption = Annotated[
    str, typer.Option("--model", help="dot (DotProductBias) or nn (EmbeddingNN).")
]


def _train_config(
    settings: Settings,
    model: str,
    epochs: int | None,
    lr: float | None,
    wd: float | None,
    factors: int | None,
    batch_size: int | None,
    valid_pct: float,
    split: str,
    seed: int,
) -> TrainConfig:
    if model not in ("dot", "nn"):
        raise fail(f"--model must be dot or nn, not {model!r}")
    if split not in ("random", "temporal"):
        raise fail(f"--split must be random or temporal, not {split!r}")
    return TrainConfig(
        model=model,
        n_factors=factors,
        epochs=epochs,
        lr=lr,
        wd=wd,
        valid_pct=valid_pct,
        split=split,
        seed=seed,
        device=settings.device,
        batch_size=batch_size,
    )


@app.command()
def train(
    model: ModelOption = "dot",
    epochs: int | None = typer.Option(None, min=1, help="Epochs [tuned default]."),
    lr: float | None = typer.Option(None, help="Peak one-cycle learning rate [tuned default]."),
    wd: float | None = typer.Option(None, help="Decoupled weight decay [tuned default]."),
    factors: int | None = typer.Option(None, min=1, help="Factors (dot) [tuned default]."),
    batch_size: int | None = typer.Option(None, min=1, help="Batch size [tuned default]."),
    valid_pct: float = typer.Option(0.2, help="Fraction of ratings held out for validation."),
    split: str = typer.Option("random", help="random, or temporal (each user's latest)."),
    seed: int = typer.Option(42, help="Seed of the split and the initial weights."),
) -> None:
    """Train a collaborative model on the database's ratings and save it to the artifact folder."""
    settings = get_settings()
    config = _train_config(
        settings, model, epochs, lr, wd, factors, batch_size, valid_pct, split, seed
    )
    with database() as engine:
        _require_schema(engine)
        try:
            learn = train_from_database(engine, config)
        except ValueError as error:
            raise fail(str(error)) from None
    path = learn.save(settings.artifact_dir / f"{config.model}.pt")
    last = learn.recorder.rows[-1]
    out.print(
        f"saved {path} (valid rmse {last['rmse']:.4f}, mae {last['mae']:.4f})", highlight=False
    )


@app.command()
def evaluate(
    model: ModelOption = "dot",
    valid_pct: float = typer.Option(0.2, help="Each user's latest fraction held out."),
    k: int = typer.Option(10, min=1, help="Length of the recommendation lists."),
    seed: int = typer.Option(42, help="Seed of the initial weights."),
) -> None:
    """Train on a per-user temporal split; report RMSE/MAE and top-k metrics beside popularity."""
    from recsys.evaluate import evaluate as evaluate_learner

    settings = get_settings()
    config = _train_config(
        settings, model, None, None, None, None, None, valid_pct, "temporal", seed
    )
    with database() as engine:
        _require_schema(engine)
        try:
            learn = train_from_database(engine, config)
        except ValueError as error:
            raise fail(str(error)) from None
    results = evaluate_learner(learn, k=k)
    names = ["rmse", "mae", "precision", "recall", "ndcg", "map", "hit_rate", "coverage"]
    headers = [f"{n}@{k}" if n in ("precision", "recall", "ndcg", "map") else n for n in names]
    out.print(f"per-user temporal split ({valid_pct:.0%} held out), top-{k}", highlight=False)
    out.print(f"{'model':<16}" + "".join(f"{h:>13}" for h in headers), highlight=False)
    for model_name, metrics in results.items():
        cells = "".join(f"{metrics[n]:>13.4f}" if n in metrics else f"{'-':>13}" for n in names)
        out.print(f"{model_name:<16}{cells}", highlight=False)
    users = int(next(iter(results.values()))["users"])
    out.print(f"{users} users with a held-out rating >= 4 were ranked", highlight=False)


def _load_model(settings: Settings, model: str) -> Recommender:
    path = settings.artifact_dir / f"{model}.pt"
    if not path.is_file():
        raise fail(f"no trained model at {path}: run `recsys train --model {model}` first")
    return load_recommender(path)


def _print_frame(frame: pd.DataFrame, columns: dict[str, str]) -> None:
    """Print chosen columns as aligned plain text; ``columns`` maps name -> format spec
    (an empty spec: text, left-aligned)."""
    texts = {
        name: [format(v, spec) if pd.notna(v) else "-" for v in frame[name]]
        for name, spec in columns.items()
    }
    widths = {name: max([len(name), *map(len, values)]) for name, values in texts.items()}
    rows = [[name.rjust(widths[name]) for name in columns]]
    for i in range(len(frame)):
        rows.append(
            [
                texts[name][i].ljust(widths[name])
                if spec == ""
                else texts[name][i].rjust(widths[name])
                for name, spec in columns.items()
            ]
        )
    for cells in rows:
        out.print("  ".join(cells).rstrip(), highlight=False)


def _resolve(catalog: pd.DataFrame, query: str) -> object:
    try:
        return resolve_item(catalog, query)
    except (UnknownIdError, AmbiguousItemError) as error:
        raise fail(f"{error}") from None


BIAS_COLUMNS = {"bias": ".3f", "n_ratings": "d", "mean_rating": ".2f"}


@interpret_app.command("biases")
def interpret_biases(
    n: int = typer.Option(10, "-n", min=1, help="How many at each end."),
    model: ModelOption = "dot",
    users_too: bool = typer.Option(False, "--users", help="Also list user biases."),
    plot: Path | None = typer.Option(None, help="Write a bar chart of the item biases (PNG)."),
) -> None:
    """Items everyone rates above (or below) what their taste vectors predict."""
    settings = get_settings()
    recommender = _load_model(settings, model)
    with database() as engine:
        catalog = read_item_catalog(engine)
        user_stats = read_user_stats(engine) if users_too else None
    try:
        lowest, highest = bias_ranking(recommender, catalog, n)
    except NoBiasesError as error:
        raise fail(str(error)) from None
    for heading, frame in (("lowest item biases", lowest), ("highest item biases", highest)):
        out.print(heading, highlight=False)
        _print_frame(frame, {**BIAS_COLUMNS, "item_id": "", "title": ""})
    if user_stats is not None:
        lowest, highest = bias_ranking(recommender, user_stats, n, side="user")
        for heading, frame in (("lowest user biases", lowest), ("highest user biases", highest)):
            out.print(heading, highlight=False)
            _print_frame(frame, {**BIAS_COLUMNS, "user_id": ""})
    if plot is not None:
        out.print(
            f"wrote {plot_biases(*bias_ranking(recommender, catalog, n), plot)}", highlight=False
        )


@interpret_app.command("pca")
def interpret_pca(
    components: int = typer.Option(3, min=1, help="Principal components to keep."),
    min_ratings: int = typer.Option(20, min=0, help="Fit on items with this many ratings."),
    n: int = typer.Option(5, "-n", min=1, help="Items shown at each end of a component."),
    model: ModelOption = "dot",
    plot: Path | None = typer.Option(None, help="Write the PC1/PC2 map of items (PNG)."),
) -> None:
    """Principal components of the item embeddings, and the items at both ends of each."""
    settings = get_settings()
    recommender = _load_model(settings, model)
    with database() as engine:
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


@app.command()
def similar(
    item: str = typer.Argument(..., help="Item id, or part of its title."),
    n: int = typer.Option(10, "-n", min=1, help="How many neighbours."),
    min_ratings: int = typer.Option(0, min=0, help="Leave out neighbours with fewer ratings."),
    model: ModelOption = "dot",
) -> None:
    """Items nearest to ITEM by cosine similarity of their embeddings."""
    settings = get_settings()
    recommender = _load_model(settings, model)
    with database() as engine:
        catalog = read_item_catalog(engine)
    item_id = _resolve(catalog, item)
    try:
        neighbours = similar_items(recommender, item_id, n, catalog, min_ratings)
    except UnknownIdError:
        raise fail(f"item {item_id!r} has no ratings in the model's training data") from None
    title = catalog.loc[catalog["item_id"] == item_id, "title"].iloc[0]
    out.print(f"nearest to {item_id}: {title}", highlight=False)
    _print_frame(neighbours, {"score": ".3f", "n_ratings": "d", "item_id": "", "title": ""})


@app.command()
def explain(
    user_id: str = typer.Argument(..., help="External user id."),
    item: str = typer.Argument(..., help="Item id, or part of its title."),
    n: int = typer.Option(3, "-n", min=1, help="How many reasons."),
    model: ModelOption = "dot",
) -> None:
    """Why ITEM suits USER_ID: the user's liked items most similar to it."""
    settings = get_settings()
    recommender = _load_model(settings, model)
    with database() as engine:
        catalog = read_item_catalog(engine)
        user_ratings = read_user_ratings(engine, user_id)
    item_id = _resolve(catalog, item)
    if user_id not in recommender.user_map:
        raise fail(f"unknown user id {user_id!r}")
    try:
        reasons = explain_item(recommender, user_ratings, item_id, n, catalog=catalog)
        score = recommender.predict(pd.DataFrame({"user_id": [user_id], "item_id": [item_id]}))[0]
    except UnknownIdError:
        raise fail(f"item {item_id!r} has no ratings in the model's training data") from None
    title = catalog.loc[catalog["item_id"] == item_id, "title"].iloc[0]
    out.print(f"{title} for user {user_id}: predicted {score:.2f}", highlight=False)
    if reasons.empty:
        out.print("the user has no liked items the model knows", highlight=False)
    else:
        out.print("because they liked:", highlight=False)
        _print_frame(reasons, {"similarity": ".3f", "rating": ".1f", "item_id": "", "title": ""})


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn  # the server is only needed by this command

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers)
