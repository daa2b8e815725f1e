"""The bundled MovieLens-100k data set (GroupLens), shaped for :func:`ingest`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd
from rich.progress import Progress
from sqlalchemy import Engine

from recsys.db.ingest import ColumnNames, IngestReport, ingest
from recsys.db.sources import TableSource, from_frame

BUNDLE = Path(str(files("recsys") / "bundled" / "movielens-100k"))
COLUMNS = ColumnNames(user="user_id", item="item_id", rating="rating", timestamp="timestamp")
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


def ratings_source(chunk_rows: int) -> TableSource:
    frame = pd.read_parquet(BUNDLE / "ratings.parquet").rename(columns={"movie_id": "item_id"})
    return from_frame("movielens-100k/ratings.parquet", frame, chunk_rows)


def users_source(chunk_rows: int) -> TableSource:
    return from_frame(
        "movielens-100k/users.parquet", pd.read_parquet(BUNDLE / "users.parquet"), chunk_rows
    )


def items_source(chunk_rows: int) -> TableSource:
    return from_frame("movielens-100k/items.parquet", items_frame(), chunk_rows)


def items_frame() -> pd.DataFrame:
    """Films with a list of genres and an ISO release date, as they go into the database."""
    raw = pd.read_parquet(BUNDLE / "items.parquet")
    flags = raw[list(GENRES)].to_numpy(dtype=bool)
    frame = pd.DataFrame(
        {
            "item_id": raw["movie_id"],
            "title": raw["movie_title"],
            "release_date": pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce"),
            # Nineteen 0/1 columns become one list per film: ["Action", "Sci-Fi"].
            "genres": [[g for g, on in zip(GENRES, row, strict=True) if on] for row in flags],
            "imdb_url": raw["IMDb_URL"],
        }
    )
    frame["release_date"] = frame["release_date"].dt.strftime("%Y-%m-%d").fillna("")
    return frame


def load(engine: Engine, chunk_rows: int, progress: Progress | None = None) -> IngestReport:
    """Ingest ratings, users and items in one transaction; a second load changes nothing."""
    return ingest(
        engine,
        ratings_source(chunk_rows),
        users_source=users_source(chunk_rows),
        items_source=items_source(chunk_rows),
        columns=COLUMNS,
        rating_range=(1.0, 5.0),
        progress=progress,
    )
