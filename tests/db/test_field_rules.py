"""Property tests of the field rules: hostile values in every field, in every format.

For each generated table, a small reference implementation of the rules (written
value by value, apart from the vectorised validator) says what must happen: the
whole file is refused with an error naming the file, the row and the column, and
the database is left exactly as it was; or every row is stored exactly as the
rules say. CSV, TSV, parquet and JSON bodies of the API are held to the same rules.
"""

from __future__ import annotations

import csv
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from api.main import create_app
from recsys.db.engine import make_engine
from recsys.db.ingest import ingest
from recsys.db.migrate import upgrade
from recsys.db.sources import Chunk, IngestError, open_table
from recsys.db.tables import items, ratings, users
from recsys.db.validate import AGE_RANGE, MAX_TIMESTAMP, TEXT_LIMITS, unix_seconds
from recsys.settings import Settings

INVALID = object()
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
RATING_RANGE = (0.5, 5.0)
GOOD = [("good-0", "item-0", 4.0, 1_000), ("good-1", "item-1", 2.5, 2_000)]

id_values = st.one_of(
    st.text(max_size=260),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from([" 12 ", "12.0", "\x00a", "a\x1b[31m", "", "   ", "x" * 256, "é"]),
    st.sampled_from(
        ["a\u200bb", "\u202eab", "\ufeff12", "\u0661\u0662", "\uff11\uff12", "a\u2028b", "ß"]
    ),
)
rating_values = st.one_of(
    st.floats(min_value=-10, max_value=10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10, max_value=10),
    st.booleans(),
    st.sampled_from(["abc", "", "nan", "inf", "-inf", "5.0000001", "true", "3", "4.5", "1e400"]),
)
timestamp_values = st.one_of(
    st.integers(min_value=-10, max_value=2**36),
    st.floats(min_value=-1e12, max_value=1e12),
    st.sampled_from([math.nan, math.inf, 3.0, 2.5]),
    st.booleans(),
    st.sampled_from(
        ["2001-02-03T04:05:06Z", "2001-02-03", "3500-01-01", "1969-12-31", "not a time", "", "1.5"]
    ),
)
FIELD_VALUES = {
    "user_id": id_values,
    "item_id": id_values,
    "rating": rating_values,
    "timestamp": timestamp_values,
}


# -- the reference rules, one value at a time ---------------------------------------------
def ref_id(value: object) -> object:
    if isinstance(value, bool):
        return INVALID
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer() and abs(value) < 2**53):
            return INVALID
        text = str(int(value))
    elif isinstance(value, str):
        text = value
    else:
        return INVALID
    text = text.strip()
    if not 1 <= len(text) <= 255 or CONTROL.search(text):
        return INVALID
    for character in text:  # nothing invisible, no digit but 0-9: no lookalike ids
        category = unicodedata.category(character)
        if category in ("Cf", "Zl", "Zp", "Co", "Cs", "Cn"):
            return INVALID
        if category == "Nd" and character not in "0123456789":
            return INVALID
    return text


def ref_rating(value: object) -> object:
    if isinstance(value, bool):
        return INVALID
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return INVALID
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return INVALID
    if not math.isfinite(number) or not RATING_RANGE[0] <= number <= RATING_RANGE[1]:
        return INVALID
    return number


ISO = {"2001-02-03T04:05:06Z": 981_173_106, "2001-02-03": 981_158_400}


def ref_timestamp(value: object) -> object:
    if isinstance(value, bool):
        return INVALID
    if isinstance(value, str):
        if value in ISO:
            return ISO[value]
        try:
            value = float(value)
        except ValueError:
            return INVALID
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or not number.is_integer():
        return INVALID
    if not 0 <= number <= MAX_TIMESTAMP:
        return INVALID
    return int(number)


REFERENCE = {
    "user_id": ref_id,
    "item_id": ref_id,
    "rating": ref_rating,
    "timestamp": ref_timestamp,
}


def expected(rows: list[dict]) -> tuple[str, int] | list[tuple]:
    """(column, 1-based row) of the first refusal — columns are checked in order — or the
    rows as they must be stored."""
    for column, rule in REFERENCE.items():
        for number, row in enumerate(rows, start=1):
            if rule(row[column]) is INVALID:
                return column, number
    return [tuple(rule(row[column]) for column, rule in REFERENCE.items()) for row in rows]


# -- the system under test -----------------------------------------------------------------
@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'recsys.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> list[tuple]:
    query = select(
        users.c.external_id, items.c.external_id, ratings.c.value, ratings.c.timestamp
    ).select_from(
        ratings.join(users, users.c.id == ratings.c.user_id).join(
            items, items.c.id == ratings.c.item_id
        )
    )
    with engine.connect() as connection:
        return sorted((tuple(row) for row in connection.execute(query)), key=str)


def empty(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (ratings, users, items):
            connection.execute(table.delete())


def refusal(load: Callable[[], object]) -> IngestError | None:
    """The IngestError ``load`` raised, or None when it loaded."""
    try:
        load()
    except IngestError as error:
        return error
    return None


def table_rows(field: str, value: object) -> list[dict]:
    rows = [dict(zip(REFERENCE, good, strict=True)) for good in GOOD]
    hostile = {"user_id": "good-2", "item_id": "item-2", "rating": 3.0, "timestamp": 3_000}
    hostile[field] = value
    return [rows[0], hostile, rows[1]]


def read_back(path: Path) -> list[dict]:
    """What the file holds, as plain Python values: the format decides (a parquet float
    column turns True into 1.0; CSV holds text)."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path).astype(object)
        return [
            {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
            for row in frame.to_dict("records")
        ]
    sep = "\t" if path.suffix == ".tsv" else ","
    options = {"dtype": str, "keep_default_na": False, "skipinitialspace": True}
    return pd.read_csv(path, sep=sep, **options).to_dict("records")


def write(rows: list[dict], path: Path) -> None:
    if path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    else:  # every value as str() writes it
        text = pd.DataFrame([{key: str(value) for key, value in row.items()} for row in rows])
        sep = "\t" if path.suffix == ".tsv" else ","
        text.to_csv(path, sep=sep, index=False, quoting=csv.QUOTE_ALL)


PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
@pytest.mark.parametrize("field", list(REFERENCE))
@PROPERTY
@given(data=st.data())
def test_a_hostile_value_in_a_file_is_refused_with_its_row_or_stored_exactly(
    database: Engine, tmp_path: Path, suffix: str, field: str, data: st.DataObject
) -> None:
    value = data.draw(FIELD_VALUES[field])
    rows = table_rows(field, value)
    path = tmp_path / f"ratings{suffix}"
    try:
        write(rows, path)
    except (ValueError, TypeError, UnicodeEncodeError, OverflowError):
        return  # the file format itself cannot hold this value (e.g. parquet mixed types)
    empty(database)
    outcome = expected(read_back(path))
    error = refusal(lambda: ingest(database, open_table(path, 2), rating_range=RATING_RANGE))
    if error is not None:
        assert isinstance(outcome, tuple), (value, error, outcome)
        column, row = outcome
        message = str(error)
        assert message.startswith(str(path)), message
        assert error.row is not None, message
        if "malformed CSV" not in message:
            assert (error.row, column) == (row, column), (value, message)
            assert column in message, message
        assert stored(database) == []  # nothing written
        return
    assert isinstance(outcome, list), (value, outcome)
    assert stored(database) == sorted(outcome, key=str)


@pytest.fixture(scope="module")
def api(database: Engine) -> Iterator[TestClient]:
    settings_ = Settings(database_url=str(database.url), model_poll_seconds=0)
    with TestClient(create_app(settings_)) as client:
        yield client


@pytest.mark.parametrize("field", list(REFERENCE))
@PROPERTY
@given(data=st.data())
def test_a_hostile_value_in_a_json_body_is_refused_or_stored_exactly(
    database: Engine, api: TestClient, field: str, data: st.DataObject
) -> None:
    value = data.draw(FIELD_VALUES[field])
    rows = table_rows(field, value)
    empty(database)
    # NaN and infinities as the NaN / Infinity tokens a lenient JSON writer emits.
    body = json.dumps({"ratings": rows}, allow_nan=True)
    response = api.post("/ratings", content=body, headers={"content-type": "application/json"})
    # JSON has types: ids must be JSON strings, ratings and times JSON numbers.
    typed = (
        all(isinstance(r["user_id"], str) and isinstance(r["item_id"], str) for r in rows)
        and all(isinstance(r["rating"], int | float) for r in rows)
        and all(isinstance(r["timestamp"], int | float) for r in rows)
    )
    outcome = expected(rows) if typed else ("type", 0)
    if response.status_code == 422:
        assert response.json()["error"]["code"] in ("invalid_request", "invalid_rating")
        assert isinstance(outcome, tuple), (value, response.text)
        assert stored(database) == []
        return
    assert response.status_code == 200, response.text
    assert isinstance(outcome, list), (value, outcome)
    assert stored(database) == sorted(outcome, key=str)


META_VALUES = {
    "age": st.one_of(
        st.integers(min_value=-(2**40), max_value=2**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.sampled_from(["", "30", "thirty", "30.5"]),
    ),
    "gender": st.one_of(st.text(max_size=40), st.sampled_from(["F", "\x1b[2J", " M "])),
    "occupation": st.one_of(st.text(max_size=70), st.integers()),
}


def ref_meta(field: str, value: object) -> object:
    """None for a blank value; INVALID for a refused one."""
    if field == "age":
        if isinstance(value, bool):
            return INVALID
        text = str(value).strip() if not isinstance(value, float) else value
        if text == "" or (isinstance(text, float) and math.isnan(text)):
            return None
        try:
            number = float(text)
        except ValueError:
            return INVALID
        if not number.is_integer() or not AGE_RANGE[0] <= number <= AGE_RANGE[1]:
            return INVALID
        return int(number)
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    text = text.strip()
    if text == "":
        return None
    if len(text) > TEXT_LIMITS[field] or CONTROL.search(text):
        return INVALID
    return text


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("field", list(META_VALUES))
@PROPERTY
@given(data=st.data())
def test_a_hostile_value_in_a_users_file_is_refused_with_its_row_or_stored_exactly(
    database: Engine, tmp_path: Path, suffix: str, field: str, data: st.DataObject
) -> None:
    value = data.draw(META_VALUES[field])
    rows = [{"user_id": "a", field: GOOD_META[field]}, {"user_id": "b", field: value}]
    path = tmp_path / f"users{suffix}"
    try:
        write(rows, path)
    except (ValueError, TypeError, UnicodeEncodeError, OverflowError):
        return
    empty(database)
    want = ref_meta(field, read_back(path)[1][field])
    error = refusal(lambda: ingest(database, users_source=open_table(path, 5)))
    if error is not None:
        assert want is INVALID, (value, str(error))
        assert str(error).startswith(f"{path}: row 2: "), str(error)
        assert field in str(error)
        with database.connect() as connection:
            assert connection.execute(select(users.c.id)).all() == []
        return
    assert want is not INVALID, value
    with database.connect() as connection:
        got = connection.execute(
            select(users.c[field]).where(users.c.external_id == "b")
        ).scalar_one()
    assert got == want, (value, got, want)


GOOD_META = {"age": 30, "gender": "F", "occupation": "writer"}


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=5))]),
    ),
    spec=st.sampled_from(["seconds", "microseconds", "minutes"]),
)
@settings(max_examples=300, deadline=None)
def test_any_iso_time_is_stored_exactly_or_refused_in_one_line(moment: datetime, spec: str) -> None:
    """Times near and past what pandas holds (2262) were a pandas crash inside ingestion."""
    text = moment.isoformat(timespec=spec)
    chunk = Chunk(pd.DataFrame({"timestamp": [text]}, dtype=object), first_row=1)
    written = datetime.fromisoformat(text)
    seconds = math.floor((written if written.tzinfo else written.replace(tzinfo=UTC)).timestamp())
    valid = 1970 <= written.year < 3000 and 0 <= seconds <= MAX_TIMESTAMP
    if valid:
        assert unix_seconds(chunk, "t.csv", "timestamp").tolist() == [seconds]
    else:
        with pytest.raises(IngestError, match=r"^t\.csv: row 1: timestamp"):
            unix_seconds(chunk, "t.csv", "timestamp")
