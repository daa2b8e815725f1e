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

from recsys.data.catalog import UnknownGenreError
from recsys.data.ids import UnknownIdError
from recsys.db.engine import WRITER_WAIT_SECONDS, is_busy, make_engine
from recsys.db.migrate import current_revision, head_revision
from recsys.interpret.embeddings import AmbiguousItemError, resolve_item
from recsys.jobs.model_versions import ActivationError, get_version
from recsys.models.scorer import CapabilityError
from recsys.serving.loading import ServedVersion, load_active, load_versions
from recsys.serving.roles import ModelRoles, ModelUnavailableError, NoModelError
from recsys.settings import get_settings

# The library's refusals, said in one line by every command (the API answers each with
# its status: api.errors).
LIBRARY_ERRORS = (
    UnknownIdError,
    UnknownGenreError,
    NoModelError,
    ModelUnavailableError,
    CapabilityError,
    ActivationError,
)

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
        raise fail(
            f"database {url}: {error.__class__.__name__}: {getattr(error, 'orig', None) or error}"
        ) from None
    except LIBRARY_ERRORS as error:
        raise fail(str(error)) from None
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
        help="auto (dot to rate; to rank, ease and ials blended with weights chosen on the "
        "hold-out, ials past 30,000 items), dot (DotProductBias), nn (EmbeddingNN), ease or "
        "ials (ranking only), blend (--members, weighed on the hold-out), or hybrid (rating "
        "only: also reads user and item metadata, answers for new users).",
    ),
]
ObjectiveOption = Annotated[
    str,
    typer.Option(
        "--objective",
        help="rating: predict ratings (RMSE); ranking: recommend what users pick (NDCG@10).",
    ),
]


def load_roles(engine: Engine, version_id: int | None = None) -> ModelRoles[ServedVersion]:
    """The models to answer from, in their roles (recsys.serving.roles), loaded as the
    service loads them: the active versions, or only version ``version_id`` (in every
    role it can play)."""
    if version_id is None:
        return load_active(engine, get_settings().recommend_with)
    version = get_version(engine, version_id)
    if version is None or version.artifact_path is None:
        raise fail(f"no ready model version {version_id}: run `recsys train` first")
    return load_versions(engine, {version.objective: version}, get_settings().recommend_with)


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
