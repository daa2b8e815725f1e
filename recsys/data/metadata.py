"""User and item metadata as model inputs: age buckets, gender, occupation; genres, decade.

The encoder is fitted on the training users and items and saved with the model
(plain data), so a user who registers after training is encoded the same way.
Index 0 of every field means "unknown": a missing value, or one never seen in
training. Genres are a multi-hot row over the training vocabulary, with a first
column for "no known genre".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

# MovieLens-1M's age groups: under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
AGE_EDGES = (18, 25, 35, 45, 50, 56)
USER_FIELDS = ("age", "gender", "occupation")


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _lookup(vocabulary: list[str], values: Iterable[object]) -> np.ndarray:
    index = {value: i + 1 for i, value in enumerate(vocabulary)}
    return np.array([index.get(_text(v), 0) for v in values], dtype=np.int64)  # type: ignore[arg-type]  # looked up as text


def age_bucket(values: Iterable[object]) -> np.ndarray:
    """1 + the age group of each value; 0 when missing or not a plausible age."""
    ages = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)
    buckets = np.searchsorted(AGE_EDGES, ages, side="right") + 1
    return np.where(np.isfinite(ages) & (ages > 0) & (ages < 130), buckets, 0).astype(np.int64)


def release_year(values: Iterable[object]) -> np.ndarray:
    """The year of each release date (a date, a datetime or an ISO string); NaN if none."""
    dates = pd.to_datetime(pd.Series(list(values), dtype=object), errors="coerce", format="mixed")
    return dates.dt.year.to_numpy(dtype=float, na_value=np.nan)


def _column(frame: pd.DataFrame, name: str) -> Iterable[object]:
    """A column, or all-missing values when the frame has no such column."""
    return frame[name] if name in frame else [None] * len(frame)


def _genre_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [t for g in value if (t := _text(g)) is not None]
    return []


@dataclass
class MetadataEncoder:
    """Vocabularies learned from training metadata; encodes any user or item frame."""

    genders: list[str]
    occupations: list[str]
    genres: list[str]
    decades: list[int]  # first year of each decade seen in training

    @classmethod
    def fit(cls, users: pd.DataFrame, items: pd.DataFrame) -> MetadataEncoder:
        """``users``: age, gender, occupation; ``items``: genres (lists), release_date."""

        def vocabulary(values: Iterable[object]) -> list[str]:
            return sorted({t for v in values if (t := _text(v)) is not None})

        years = release_year(items["release_date"])
        return cls(
            genders=vocabulary(users["gender"]),
            occupations=vocabulary(users["occupation"]),
            genres=sorted({g for value in items["genres"] for g in _genre_list(value)}),
            decades=sorted({int(y) // 10 * 10 for y in years[np.isfinite(years)]}),
        )

    @property
    def user_cardinalities(self) -> tuple[int, int, int]:
        """Indices per user field (age, gender, occupation), the unknown index included."""
        return len(AGE_EDGES) + 2, len(self.genders) + 1, len(self.occupations) + 1

    @property
    def n_decades(self) -> int:
        return len(self.decades) + 1

    def encode_users(self, users: pd.DataFrame) -> np.ndarray:
        """(rows, 3) int64: age bucket, gender, occupation; missing columns mean unknown."""
        return np.stack(
            [
                age_bucket(_column(users, "age")),
                _lookup(self.genders, _column(users, "gender")),
                _lookup(self.occupations, _column(users, "occupation")),
            ],
            axis=1,
        ).reshape(len(users), 3)

    def encode_user(self, profile: Mapping[str, object]) -> np.ndarray:
        """(3,) for one user given as ``{"age": 31, "gender": "F", ...}``."""
        return self.encode_users(pd.DataFrame([{k: profile.get(k) for k in USER_FIELDS}]))[0]

    @property
    def n_genre_columns(self) -> int:
        return len(self.genres) + 1

    def encode_items(self, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Genres multi-hot (rows, n_genre_columns) float32 -- column 0 marks an item with
        no known genre -- and decade index (rows,) int64."""
        lookup = {g: i + 1 for i, g in enumerate(self.genres)}
        genres = np.zeros((len(items), self.n_genre_columns), dtype=np.float32)
        for row, value in enumerate(_column(items, "genres")):
            for genre in _genre_list(value):
                if genre in lookup:
                    genres[row, lookup[genre]] = 1.0
        genres[genres.sum(axis=1) == 0, 0] = 1.0
        years = release_year(_column(items, "release_date"))
        decade_index = {d: i + 1 for i, d in enumerate(self.decades)}
        decades = np.array(
            [decade_index.get(int(y) // 10 * 10, 0) if np.isfinite(y) else 0 for y in years],
            dtype=np.int64,
        )
        return genres, decades

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MetadataEncoder:
        return cls(**state)


def aligned(frame: pd.DataFrame, id_col: str, ids: np.ndarray) -> pd.DataFrame:
    """The rows of ``frame`` for ``ids`` in order; ids without a row get missing metadata."""
    return frame.drop_duplicates(id_col).set_index(id_col).reindex(pd.Index(ids, dtype=object))
