"""Turn raw columns into clean, typed ones, or say which row is wrong and why.

Every function takes a chunk and returns a pandas Series aligned with it; on the
first bad value it raises :class:`IngestError` naming the source, the 1-based
data row and the problem. Nothing is written before a whole file validates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.db.sources import Chunk, IngestError

MAX_TIMESTAMP = 32_503_680_000  # 3000-01-01 in Unix seconds


def _first_bad(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def require_columns(source: str, present: list[str], required: list[str]) -> None:
    """Fail with the missing column's name and the columns that were found."""
    missing = [column for column in required if column not in present]
    if missing:
        raise IngestError(
            source,
            f"missing column {missing[0]!r} (columns found: {', '.join(map(str, present))}); "
            "name the right column with the --*-col options",
        )


def _text(series: pd.Series) -> pd.Series:
    """Values as stripped strings; missing values become empty strings."""
    if pd.api.types.is_float_dtype(series):
        # Parquet gives integer ids as floats when a column has nulls: 12.0 -> "12".
        integral = series.notna() & (series % 1 == 0)
        text = series.astype(str)
        text[integral] = series[integral].astype("int64").astype(str)
        text[series.isna()] = ""
        return text
    return series.astype("string").fillna("").str.strip().astype(object)


def ids(chunk: Chunk, source: str, column: str) -> pd.Series:
    """External ids as non-empty strings."""
    values = _text(chunk.frame[column])
    empty = (values == "").to_numpy()
    if empty.any():
        row = chunk.first_row + _first_bad(empty)
        raise IngestError(source, f"empty id in column {column!r}", row)
    too_long = (values.str.len() > 255).to_numpy()
    if too_long.any():
        row = chunk.first_row + _first_bad(too_long)
        raise IngestError(source, f"id in column {column!r} is longer than 255 characters", row)
    return values


def numbers(chunk: Chunk, source: str, column: str, low: float, high: float) -> pd.Series:
    """Numeric values within [low, high]; text, blanks, NaN and out-of-range values fail."""
    raw = chunk.frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy())
    if bad.any():
        position = _first_bad(bad)
        text = str(raw.iloc[position]).strip()
        problem = (
            f"missing value in column {column!r}"
            if text in {"", "nan", "None", "<NA>"}
            else f"{column} {text!r} is not a number"
        )
        raise IngestError(source, problem, chunk.first_row + position)
    outside = ((values < low) | (values > high)).to_numpy()
    if outside.any():
        position = _first_bad(outside)
        raise IngestError(
            source,
            f"{column} {values.iloc[position]:g} is outside the allowed range [{low:g}, {high:g}] "
            "(change it with --min-rating/--max-rating or RECSYS_RATING_MIN/MAX)",
            chunk.first_row + position,
        )
    return values


def unix_seconds(chunk: Chunk, source: str, column: str) -> pd.Series:
    """Timestamps as integer Unix seconds, from numbers or ISO-8601 text."""
    raw = chunk.frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
    else:
        numeric = pd.to_numeric(raw, errors="coerce")
        # Checked before any conversion: 1e20 seconds would overflow pandas' datetimes.
        outside = (numeric.notna() & ((numeric < 0) | (numeric > MAX_TIMESTAMP))).to_numpy()
        if outside.any():
            position = _first_bad(outside)
            raise IngestError(
                source,
                f"{column} {numeric.iloc[position]:g} is not a Unix time between 1970 and 3000",
                chunk.first_row + position,
            )
        if numeric.notna().all():
            return numeric.astype("int64")
        parsed = pd.to_datetime(
            raw.where(numeric.isna()), utc=True, errors="coerce", format="ISO8601"
        )
        parsed = parsed.where(numeric.isna(), pd.to_datetime(numeric, unit="s", utc=True))
    bad = parsed.isna().to_numpy()
    if bad.any():
        position = _first_bad(bad)
        raise IngestError(
            source,
            f"{column} {str(raw.iloc[position])!r} is neither Unix seconds nor an ISO-8601 time",
            chunk.first_row + position,
        )
    # Subtracting the epoch works whatever resolution (ns, us, s) pandas chose.
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("int64")


def optional_integers(chunk: Chunk, source: str, column: str) -> pd.Series:
    """Whole numbers where given, None where blank."""
    raw = chunk.frame[column]
    text = _text(raw)
    values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
    bad = ((text != "") & (values.isna() | (values % 1 != 0))).to_numpy()
    if bad.any():
        position = _first_bad(bad)
        raise IngestError(
            source,
            f"{column} {text.iloc[position]!r} is not a whole number",
            chunk.first_row + position,
        )
    return pd.Series(
        [None if pd.isna(v) else int(v) for v in values], index=raw.index, dtype=object
    )


def optional_text(chunk: Chunk, source: str, column: str) -> pd.Series:
    """Text where given, None where blank."""
    text = _text(chunk.frame[column])
    return text.where(text != "", None)


def optional_dates(chunk: Chunk, source: str, column: str) -> pd.Series:
    """ISO dates (YYYY-MM-DD) where given, None where blank; unparseable dates fail."""
    raw = chunk.frame[column]
    text = _text(raw)
    parsed = pd.to_datetime(text.replace("", None), errors="coerce", format="mixed")
    bad = ((text != "") & parsed.isna()).to_numpy()
    if bad.any():
        position = _first_bad(bad)
        raise IngestError(
            source, f"{column} {text.iloc[position]!r} is not a date", chunk.first_row + position
        )
    return pd.Series(
        [None if pd.isna(v) else v.date().isoformat() for v in parsed],
        index=raw.index,
        dtype=object,
    )


def genre_lists(chunk: Chunk, source: str, column: str) -> pd.Series:
    """Genres as lists: a list already, or text separated by '|'."""
    raw = chunk.frame[column]
    return pd.Series(
        [
            [str(g) for g in value]
            if isinstance(value, list | tuple | np.ndarray)
            else [g.strip() for g in str(value).split("|") if g.strip()]
            if isinstance(value, str)
            else None
            for value in raw
        ],
        index=raw.index,
        dtype=object,
    )
