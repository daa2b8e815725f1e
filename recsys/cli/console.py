"""What every command shares: consoles, errors, the database, tables of text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from recsys.collab.recommender import Recommender
from recsys.data.ratings import UnknownIdError
from recsys.db.engine import WRITER_WAIT_SECONDS, is_busy, make_engine
from recsys.db.migrate import current_revision, head_revision
from recsys.interpret.embeddings import AmbiguousItemError, resolve_item
from recsys.jobs.model_versions import (
    active_version,
    get_version,
    load_version,
    recommending_version,
)
from recsys.settings import get_settings

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
        if is_busy(error):
            raise fail(
                f"database {url} is busy: another process (an ingest, a training run or the "
                f"API) held its write lock for over {WRITER_WAIT_SECONDS:.0f} s; nothing was "
                "written: run this again when it has finished"
            ) from None
        raise fail(f"database {url}: {error.__class__.__name__}: {error.orig or error}") from None
    except OSError as error:  # a file: full disk, no permission, gone
        where = f" ({error.filename})" if error.filename else ""
        raise fail(f"{error.strerror or error}{where}; nothing half-written was kept") from None
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


def require_schema(engine: Engine) -> None:
    if current_revision(engine) != head_revision(engine.url.render_as_string(False)):
        raise fail("the database schema is not up to date: run `recsys db upgrade` first")


ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help="auto (dot to rate; ease to rank, dot past 30,000 items), dot (DotProductBias), "
        "nn (EmbeddingNN), ease (ranking only), or hybrid (rating only: also reads user and "
        "item metadata, answers for new users).",
    ),
]
ObjectiveOption = Annotated[
    str,
    typer.Option(
        "--objective",
        help="rating: predict ratings (RMSE); ranking: recommend what users pick (NDCG@10).",
    ),
]


def served_recommender(
    engine: Engine, version_id: int | None = None, recommending: bool = False
) -> Recommender:
    """Model version ``version_id`` — by default the active rating version, or with
    ``recommending`` the one that answers recommendations (the active ranking version,
    else the rating one) — loaded as the service loads it: every rating in the database
    counts as seen."""
    if version_id is not None:
        version = get_version(engine, version_id)
    elif recommending:
        version = recommending_version(engine, get_settings().recommend_with)
    else:
        version = active_version(engine, "rating")
    if version is None or version.artifact_path is None:
        if version_id is not None:
            which = f"no ready model version {version_id}"
        else:
            which = f"no {'' if recommending else 'rating '}model version is active"
        raise fail(f"{which}: run `recsys train` first")
    return load_version(engine, version)


VersionOption = Annotated[
    int | None, typer.Option("--version", help="Model version id [the active one].")
]


def print_frame(frame: pd.DataFrame, columns: dict[str, str]) -> None:
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


def resolve_item_query(catalog: pd.DataFrame, query: str) -> object:
    try:
        return resolve_item(catalog, query)
    except (UnknownIdError, AmbiguousItemError) as error:
        raise fail(f"{error}") from None
