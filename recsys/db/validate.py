"""The one set of field rules, for files and API bodies alike: clean typed values, or
which row and column is wrong and why.

Every column function takes a chunk and returns a pandas Series aligned with it; on
the first bad value it raises :class:`IngestError` naming the source, the 1-based
data row, the column and the problem. Nothing is written before a whole file
validates. The API's request bodies go through the same ingestion, and its schemas
use the same limits and :func:`check_id`.

The rules:

- **Ids** are text or integers, stored as text, trimmed of surrounding whitespace,
  1 to 255 characters, without control characters. A float id is accepted only
  when it is a whole number that a float holds exactly (below 2**53: ``12.0`` is
  ``"12"``); booleans, lists, bytes, NaN and infinities are refused. Ids that look
  like other ids are refused too: no invisible or formatting characters (zero-width
  spaces and joiners, bidi controls, byte-order marks: Unicode Cf, Zl, Zp, Co, Cs, Cn)
  and no digits other than 0-9 (``"١٢"`` would read as 12).
- **Titles** are at most 1,000 characters (files and API alike), with no control
  characters and no invisible or formatting characters but the zero-width joiner and
  non-joiner, which some scripts and emoji need.
- **Genres** are at most 50 per item, each at most 64 characters, with no ``|`` (the
  files' separator: such a genre could never be asked for) and no invisible
  characters.
- **Ratings** are finite numbers (not booleans) within the configured range.
- **Timestamps** are whole Unix seconds or ISO-8601 times between 1970 and 3000.
- **Metadata**: age a whole number from 1 to 129; gender, occupation and zip code
  at most 32 / 64 / 32 characters; no field holds control characters.
"""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pandas as pd

from recsys.db.sources import Chunk, IngestError

MAX_TIMESTAMP = 32_503_680_000  # 3000-01-01 in Unix seconds
MAX_ID_LENGTH = 255
AGE_RANGE = (1, 129)
TEXT_LIMITS = {"gender": 32, "occupation": 64, "zip_code": 32}
EXACT_FLOAT = 2**53  # every whole number below this is exactly a float
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NON_ASCII = re.compile(r"[^\x00-\x7f]")
MAX_TITLE_LENGTH = 1_000
MAX_GENRE_LENGTH = 64
MAX_GENRES = 50
GENRE_SEPARATOR = "|"
INVISIBLE = {"Cf", "Zl", "Zp", "Co", "Cs", "Cn"}  # Unicode categories never shown as such
JOINERS = {"\u200c", "\u200d"}  # zero-width non-joiner and joiner: needed in titles


def lookalike(text: str, title: bool = False) -> str | None:
    """What makes ``text`` look like other text, or None: an invisible or formatting
    character, or (unless a title) a digit other than 0-9."""
    if text.isascii():  # nothing of either kind (ASCII controls are CONTROL's)
        return None
    for character in text:
        category = unicodedata.category(character)
        if category in INVISIBLE and not (title and character in JOINERS):
            return f"an invisible or formatting character (U+{ord(character):04X})"
        if category == "Nd" and not title and not character.isascii():
            return f"a digit other than 0-9 ({character!r})"
    return None


def check_id(value: str) -> str:
    """One id from an API body or path: trimmed; ValueError says what is wrong."""
    text = value.strip()
    if not text:
        raise ValueError("an id must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"an id is at most {MAX_ID_LENGTH} characters")
    if CONTROL.search(text):
        raise ValueError("an id must not contain control characters")
    if (problem := lookalike(text)) is not None:
        raise ValueError(f"an id must not contain {problem}")
    return text


def check_path_id(value: str) -> str:
    """One id from a URL path or query: the id rule, and already trimmed (trimming would
    name another resource than the one asked for: ``/users/u0%0D`` is not u0)."""
    if value != value.strip():
        raise ValueError("an id must not start or end with whitespace")
    return check_id(value)


def check_genre(value: str) -> str:
    """One genre from an API body: trimmed; ValueError says what is wrong."""
    text = value.strip()
    if not text or len(text) > MAX_GENRE_LENGTH:
        raise ValueError(f"a genre is 1 to {MAX_GENRE_LENGTH} characters")
    if GENRE_SEPARATOR in text:
        raise ValueError(f"a genre must not contain {GENRE_SEPARATOR!r} (the files' separator)")
    if CONTROL.search(text):
        raise ValueError("a genre must not contain a control character")
    if (problem := lookalike(text)) is not None:
        raise ValueError(f"a genre must not contain {problem}")
    return text


def check_rating_range(low: float, high: float) -> tuple[float, float]:
    """The range every rating must fall in: two finite numbers, the lowest below the
    highest; ValueError otherwise (NaN compares false with everything, so a plain
    ``low >= high`` check once let a NaN bound accept any rating)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"the rating range must be two finite numbers, not {low} to {high}")
    if not low < high:
        raise ValueError(f"the lowest rating ({low:g}) must be below the highest ({high:g})")
    return low, high


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


def _shown(value: object) -> str:
    """A number as written, never rounded: 9, 5.0000001, 1e+20."""
    number = float(value)  # type: ignore[arg-type]  # a number or numeric text (the caller checks)
    if not np.isfinite(number):
        return str(number)
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number)


def _fail(chunk: Chunk, source: str, position: int, problem: str) -> IngestError:
    return IngestError(source, problem, chunk.first_row + position)


def _id_text(chunk: Chunk, source: str, column: str) -> pd.Series:
    """Ids as text before trimming; values that are not text or exact integers fail."""
    raw = chunk.frame[column]
    missing = raw.isna().to_numpy()
    if missing.any():  # a null in a text column (parquet), NaN in a float one
        raise _fail(chunk, source, _first_bad(missing), f"missing id in column {column!r}")
    kind = pd.api.types.infer_dtype(raw, skipna=False)
    if kind in ("string", "empty"):
        # Arrow-backed text: the string checks below then run in pyarrow, not per value.
        return raw.astype("str")
    if pd.api.types.is_bool_dtype(raw) or kind == "boolean":
        raise _fail(chunk, source, 0, f"{column} {raw.iloc[0]!r} is a boolean, not an id")
    if pd.api.types.is_integer_dtype(raw):
        return raw.astype(str).astype(object)
    if pd.api.types.is_float_dtype(raw):
        values = raw.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        whole = np.zeros(len(values), dtype=bool)
        whole[finite] = values[finite] % 1 == 0
        inexact = ~whole | (np.abs(values) >= EXACT_FLOAT)
        if inexact.any():
            position = _first_bad(inexact)
            raise _fail(
                chunk,
                source,
                position,
                f"{column} {_shown(values[position])} is not an exact id: use text or whole "
                "numbers below 2**53",
            )
        return pd.Series(values.astype(np.int64).astype(str), index=raw.index, dtype=object)
    # Mixed or other objects: check each value.
    for position, value in enumerate(raw.tolist()):
        if isinstance(value, bool) or not isinstance(value, str | int | np.integer | float):
            raise _fail(
                chunk,
                source,
                position,
                f"{column} {value!r} is a {type(value).__name__}, not a text or integer id",
            )
        if isinstance(value, float) and not (
            np.isfinite(value) and value % 1 == 0 and abs(value) < EXACT_FLOAT
        ):
            raise _fail(chunk, source, position, f"{column} {_shown(value)} is not an exact id")
    return pd.Series(
        [str(int(v)) if isinstance(v, float) else str(v) for v in raw.tolist()],
        index=raw.index,
        dtype=object,
    )


def ids(chunk: Chunk, source: str, column: str) -> pd.Series:
    """External ids as trimmed, non-empty strings (see the module docstring)."""
    raw = chunk.frame[column]
    if pd.api.types.is_integer_dtype(raw) and not raw.isna().any():
        # Whole numbers written out: never blank, long or with control characters.
        # Skipping the text checks per value is most of the time a large file takes.
        return _id_text(chunk, source, column)
    values = _id_text(chunk, source, column).str.strip()
    empty = (values == "").to_numpy()
    if empty.any():
        raise _fail(chunk, source, _first_bad(empty), f"empty id in column {column!r}")
    too_long = (values.str.len() > MAX_ID_LENGTH).to_numpy()
    if too_long.any():
        raise _fail(
            chunk,
            source,
            _first_bad(too_long),
            f"id in column {column!r} is longer than {MAX_ID_LENGTH} characters",
        )
    _refuse_control_characters(chunk, source, column, values)
    _refuse_lookalikes(chunk, source, column, values)
    return values


def _refuse_control_characters(chunk: Chunk, source: str, column: str, text: pd.Series) -> None:
    bad = text.astype("str").str.contains(CONTROL.pattern).fillna(False).to_numpy(dtype=bool)
    if bad.any():
        position = _first_bad(bad)
        raise _fail(
            chunk,
            source,
            position,
            f"{column} {text.iloc[position]!r} contains a control character",
        )


def _refuse_lookalikes(
    chunk: Chunk, source: str, column: str, text: pd.Series, title: bool = False
) -> None:
    """See :func:`lookalike`; only the rows with non-ASCII text are looked at one by one."""
    wide = text.astype("str").str.contains(NON_ASCII.pattern).fillna(False).to_numpy(dtype=bool)
    for position in np.flatnonzero(wide).tolist():
        value = text.iloc[position]
        if isinstance(value, str) and (problem := lookalike(value, title)) is not None:
            raise _fail(chunk, source, position, f"{column} {value!r} contains {problem}")


def _refuse_booleans(chunk: Chunk, source: str, column: str) -> None:
    raw = chunk.frame[column]
    if pd.api.types.is_bool_dtype(raw):
        raise _fail(chunk, source, 0, f"{column} {raw.iloc[0]!r} is a boolean, not a number")
    if raw.dtype == object:
        flags = np.array([isinstance(v, bool | np.bool_) for v in raw.tolist()], dtype=bool)
        if flags.any():
            position = _first_bad(flags)
            raise _fail(
                chunk,
                source,
                position,
                f"{column} {raw.iloc[position]!r} is a boolean, not a number",
            )


def _to_numbers(raw: pd.Series) -> pd.Series:
    """Numbers, NaN where a value is not one: pyarrow's cast for text read from a file
    (a column at a time), pandas' parser when that refuses a value."""
    if raw.dtype == "str":
        try:
            return raw.astype("float64")
        except (ValueError, TypeError):
            pass
    return pd.to_numeric(raw, errors="coerce")


def numbers(chunk: Chunk, source: str, column: str, low: float, high: float) -> pd.Series:
    """Numeric values within [low, high]; text, booleans, blanks, NaN, infinities and
    out-of-range values fail."""
    _refuse_booleans(chunk, source, column)
    raw = chunk.frame[column]
    values = _to_numbers(raw).astype("float64")
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
            f"{column} {_shown(values.iloc[position])} is outside the allowed range "
            f"[{low:g}, {high:g}] (change it with --min-rating/--max-rating or "
            "RECSYS_RATING_MIN/MAX)",
            chunk.first_row + position,
        )
    return values


def unix_seconds(chunk: Chunk, source: str, column: str) -> pd.Series:
    """Timestamps as integer Unix seconds, from whole numbers or ISO-8601 text, between
    1970 and 3000."""
    _refuse_booleans(chunk, source, column)
    raw = chunk.frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
    else:
        numeric = _to_numbers(raw)
        # Checked before any conversion: 1e20 seconds would overflow pandas' datetimes.
        outside = (numeric.notna() & ((numeric < 0) | (numeric > MAX_TIMESTAMP))).to_numpy()
        if outside.any():
            position = _first_bad(outside)
            raise _fail(
                chunk,
                source,
                position,
                f"{column} {_shown(numeric.iloc[position])} is not a Unix time "
                "between 1970 and 3000",
            )
        fractional = (numeric.notna() & (numeric % 1 != 0)).to_numpy()
        if fractional.any():
            position = _first_bad(fractional)
            raise _fail(
                chunk,
                source,
                position,
                f"{column} {_shown(numeric.iloc[position])} is not a whole number of seconds",
            )
        if numeric.notna().all():
            return numeric.astype("int64")
        # Times as text, one by one into seconds: after 2262 pandas gives a Timestamp of
        # another resolution, which a nanosecond Series cannot hold.
        text = _text(raw.where(numeric.isna()))
        seconds = numeric.to_numpy(dtype=np.float64, na_value=np.nan).copy()
        for position in np.flatnonzero(numeric.isna().to_numpy()).tolist():
            seconds[position] = _iso_seconds(chunk, source, column, position, text.iloc[position])
        return pd.Series(seconds.astype(np.int64), index=raw.index)
    bad = parsed.isna().to_numpy()
    if bad.any():
        position = _first_bad(bad)
        raise _fail(
            chunk,
            source,
            position,
            f"{column} {str(raw.iloc[position])!r} is neither Unix seconds nor an ISO-8601 time",
        )
    # Subtracting the epoch works whatever resolution (ns, us, s) pandas chose.
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("int64")


def _iso_seconds(chunk: Chunk, source: str, column: str, position: int, text: str) -> int:
    """One ISO-8601 time as Unix seconds, refused outside 1970-3000."""
    match = re.match(r"^\s*([+-]?\d{4,})-", text)
    if match and not 1970 <= int(match.group(1)) < 3000:
        raise _fail(
            chunk, source, position, f"{column} {text!r} is not a time between 1970 and 3000"
        )
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    if pd.isna(parsed):
        raise _fail(
            chunk,
            source,
            position,
            f"{column} {text!r} is neither Unix seconds nor an ISO-8601 time",
        )
    seconds = math.floor(parsed.timestamp())
    if not 0 <= seconds <= MAX_TIMESTAMP:
        raise _fail(
            chunk, source, position, f"{column} {text!r} is not a time between 1970 and 3000"
        )
    return seconds


def optional_integers(
    chunk: Chunk, source: str, column: str, low: int | None = None, high: int | None = None
) -> pd.Series:
    """Whole numbers within [low, high] where given, None where blank."""
    _refuse_booleans(chunk, source, column)
    raw = chunk.frame[column]
    text = _text(raw)
    values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
    bad = ((text != "") & (values.isna() | (values % 1 != 0))).to_numpy()
    if bad.any():
        position = _first_bad(bad)
        raise _fail(
            chunk, source, position, f"{column} {text.iloc[position]!r} is not a whole number"
        )
    outside = np.zeros(len(values), dtype=bool)
    if low is not None:
        outside |= (values < low).to_numpy()
    if high is not None:
        outside |= (values > high).to_numpy()
    if outside.any():
        position = _first_bad(outside)
        raise _fail(
            chunk,
            source,
            position,
            f"{column} {text.iloc[position]} is outside the allowed range [{low}, {high}]",
        )
    return pd.Series(
        [None if pd.isna(v) else int(v) for v in values], index=raw.index, dtype=object
    )


def optional_text(
    chunk: Chunk, source: str, column: str, max_length: int | None = None, title: bool = False
) -> pd.Series:
    """Text where given (at most ``max_length`` characters, no control characters; for a
    ``title``, no invisible ones either: see :func:`lookalike`), None where blank."""
    raw = chunk.frame[column]
    if raw.dtype == object:
        odd = [not isinstance(v, str | int | float | type(None)) for v in raw.tolist()]
        if any(odd):
            position = odd.index(True)
            value = raw.iloc[position]
            raise _fail(chunk, source, position, f"{column} {value!r} is not text")
    text = _text(raw)
    if max_length is not None:
        too_long = (text.str.len() > max_length).to_numpy()
        if too_long.any():
            position = _first_bad(too_long)
            raise _fail(chunk, source, position, f"{column} is longer than {max_length} characters")
    _refuse_control_characters(chunk, source, column, text)
    if title:
        _refuse_lookalikes(chunk, source, column, text, title=True)
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
    """Genres as lists of text: a list already, or text separated by '|' (see the module
    docstring for what a genre may hold)."""
    raw = chunk.frame[column]
    lists = []
    for position, value in enumerate(raw.tolist()):
        if isinstance(value, list | tuple | np.ndarray):
            genres = [str(g).strip() for g in value if str(g).strip()]
        elif isinstance(value, str):
            genres = [g.strip() for g in value.split(GENRE_SEPARATOR) if g.strip()]
        else:
            genres = None
        if genres and len(genres) > MAX_GENRES:
            raise _fail(chunk, source, position, f"{column} has over {MAX_GENRES} genres")
        for genre in genres or ():
            try:
                check_genre(genre)
            except ValueError as error:
                raise _fail(chunk, source, position, f"{column} {value!r}: {error}") from None
        lists.append(genres)
    return pd.Series(lists, index=raw.index, dtype=object)
