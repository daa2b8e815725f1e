"""Ingestion: clean files load, bad files are refused whole with their row, re-runs are no-ops."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, func, inspect, select

from recsys.db.ingest import ColumnNames, ingest
from recsys.db.sources import IngestError, from_frame, open_table
from recsys.db.tables import items, ratings, users

GOOD_ROWS = [
    ("u1", "i1", "4", "1000"),
    ("u1", "i2", "3.5", "1001"),
    ("u2", "i1", "5", "1002"),
    ("u2", "i3", "0.5", "1003"),
    ("u3", "i2", "2", "1004"),
    ("u3", "i3", "1", "1005"),
]


def write_csv(
    path: Path, rows: list[tuple[str, ...]], header: str = "user_id,item_id,rating,timestamp"
) -> Path:
    path.write_text(header + "\n" + "".join(",".join(row) + "\n" for row in rows))
    return path


def snapshot(engine: Engine) -> dict[str, object]:
    with engine.connect() as connection:
        return {
            "users": connection.execute(
                select(users.c.external_id, users.c.age).order_by(users.c.id)
            ).all(),
            "items": connection.execute(
                select(items.c.external_id, items.c.title).order_by(items.c.id)
            ).all(),
            "ratings": connection.execute(
                select(
                    ratings.c.user_id, ratings.c.item_id, ratings.c.value, ratings.c.timestamp
                ).order_by(ratings.c.user_id, ratings.c.item_id)
            ).all(),
        }


def count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_clean_csv_loads_and_creates_unknown_users_and_items(
    engine: Engine, tmp_path: Path
) -> None:
    report = ingest(engine, open_table(write_csv(tmp_path / "r.csv", GOOD_ROWS), chunk_rows=2))

    assert (report.ratings_inserted, report.users_created, report.items_created) == (6, 3, 3)
    with engine.connect() as connection:
        row = connection.execute(
            select(ratings.c.value, ratings.c.timestamp)
            .join(users, users.c.id == ratings.c.user_id)
            .join(items, items.c.id == ratings.c.item_id)
            .where(users.c.external_id == "u2", items.c.external_id == "i3")
        ).one()
    assert tuple(row) == (0.5, 1003)


def test_reingesting_the_same_file_changes_nothing_and_new_values_update(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "r.csv", GOOD_ROWS)
    ingest(engine, open_table(path, chunk_rows=4))
    before = snapshot(engine)

    again = ingest(engine, open_table(path, chunk_rows=4))
    assert (again.ratings_inserted, again.ratings_updated, again.users_created) == (0, 0, 0)
    assert snapshot(engine) == before

    changed = ingest(
        engine, open_table(write_csv(tmp_path / "c.csv", [("u1", "i1", "2", "2000")]), 4)
    )
    assert (changed.ratings_inserted, changed.ratings_updated) == (0, 1)
    assert count(engine, ratings) == 6


@pytest.mark.parametrize("bulk", [False, True], ids=["small", "bulk"])
def test_a_merge_inserts_new_updates_changed_and_leaves_unchanged_ratings_alone(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    """Both merges, the small one and the one big files take (SQLite: indexes rebuilt
    around it; PostgreSQL: a new table swapped in), store the same ratings, count them
    alike, stamp only what changed with the write's number and leave the schema as the
    migrations made it (names, keys, cascades)."""
    monkeypatch.setattr("recsys.db.merge.BULK_LOAD_ROWS", 1 if bulk else 10**9)
    with engine.connect() as connection:
        schema = _ratings_schema(connection)

    first = ingest(engine, open_table(write_csv(tmp_path / "r.csv", GOOD_ROWS), chunk_rows=4))
    first_numbers = _write_numbers(engine)
    changed_rows = [(u, i, "1", t) for u, i, _, t in GOOD_ROWS[:3]]
    unchanged_rows = GOOD_ROWS[3:]
    new_rows = [("u4", "i1", "3", "1010"), ("u1", "i3", "2.5", "1011")]
    again = ingest(
        engine,
        open_table(
            write_csv(tmp_path / "u.csv", [*new_rows, *unchanged_rows, *changed_rows]),
            chunk_rows=4,
        ),
    )

    assert (first.ratings_inserted, first.users_created, first.items_created) == (6, 3, 3)
    assert (again.ratings_inserted, again.ratings_updated, again.users_created) == (2, 3, 1)
    stored = snapshot(engine)["ratings"]
    expected = {(u, i): (float(r), int(t)) for u, i, r, t in GOOD_ROWS}
    expected.update({(u, i): (1.0, int(t)) for u, i, _, t in changed_rows})
    expected.update({(u, i): (float(r), int(t)) for u, i, r, t in new_rows})
    assert sorted(stored) == sorted(
        (_user_id(engine, u), _item_id(engine, i), *value) for (u, i), value in expected.items()
    )
    numbers = _write_numbers(engine)
    (old,) = set(first_numbers.values())
    for pair, number in numbers.items():
        unchanged = pair in {(u, i) for u, i, *_ in unchanged_rows}
        assert number == (old if unchanged else old + 1), pair
    with engine.connect() as connection:
        assert _ratings_schema(connection) == schema


def _write_numbers(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(users.c.external_id, items.c.external_id, ratings.c.seq)
            .join(users, users.c.id == ratings.c.user_id)
            .join(items, items.c.id == ratings.c.item_id)
        )
        return {(user, item): seq for user, item, seq in rows}


def _user_id(engine: Engine, external: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(users.c.id).where(users.c.external_id == external)
        ).scalar_one()


def _item_id(engine: Engine, external: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(items.c.id).where(items.c.external_id == external)
        ).scalar_one()


def _ratings_schema(connection: Connection) -> list[str]:
    inspector = inspect(connection)
    key = inspector.get_pk_constraint("ratings")
    return sorted(
        [
            f"primary key {key['name']} {key['constrained_columns']}",
            *(
                f"index {index['name']} {index['column_names']} unique={index['unique']}"
                for index in inspector.get_indexes("ratings")
            ),
            *(
                f"foreign key {foreign['name']} {foreign['constrained_columns']} -> "
                f"{foreign['referred_table']}{foreign['referred_columns']} {foreign['options']}"
                for foreign in inspector.get_foreign_keys("ratings")
            ),
        ]
    )


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        (("u9", "i9", "abc", "1010"), "rating 'abc' is not a number"),
        (("u9", "i9", "7", "1010"), "rating 7 is outside the allowed range [0.5, 5]"),
        (("u9", "i9", "0", "1010"), "rating 0 is outside the allowed range [0.5, 5]"),
        (("u9", "i9", "", "1010"), "missing value in column 'rating'"),
        (("", "i9", "3", "1010"), "empty id in column 'user_id'"),
        (("u9", " ", "3", "1010"), "empty id in column 'item_id'"),
        (("u9", "i9", "3", "yesterday"), "timestamp 'yesterday' is neither Unix seconds"),
        (("u9", "i9", "3", "1e20"), "timestamp 1e+20 is not a Unix time between 1970 and 3000"),
        (("u2", "i1", "3", "1010"), "duplicate rating of item 'i1' by user 'u2': row 3 has it"),
    ],
)
def test_a_bad_row_in_the_middle_is_reported_with_its_row_and_nothing_is_written(
    engine: Engine, tmp_path: Path, bad_row: tuple[str, ...], problem: str
) -> None:
    ingest(engine, open_table(write_csv(tmp_path / "first.csv", [("u0", "i0", "3", "1")]), 2))
    before = snapshot(engine)
    rows = [*GOOD_ROWS[:4], bad_row, *GOOD_ROWS[4:]]  # data row 5, after earlier chunks staged
    path = write_csv(tmp_path / "bad.csv", rows)

    with pytest.raises(IngestError) as raised:
        ingest(engine, open_table(path, chunk_rows=2))

    assert raised.value.row == 5
    assert str(raised.value).startswith(f"{path}: row 5: ")
    assert problem in str(raised.value)
    assert snapshot(engine) == before


def test_a_missing_column_names_the_column_and_the_columns_found(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "r.csv", [("u1", "i1", "4")], header="user_id,item_id,stars")
    with pytest.raises(
        IngestError, match=r"missing column 'rating' \(columns found: user_id, item_id, stars\)"
    ):
        ingest(engine, open_table(path, chunk_rows=10))
    assert count(engine, users) == 0


def test_the_rating_range_and_column_names_are_configurable(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "r.csv", [("a", "x", "9", "2024-05-01T12:00:00Z")], header="who,what,score,when"
    )
    columns = ColumnNames(user="who", item="what", rating="score", timestamp="when")
    ingest(engine, open_table(path, 10), columns=columns, rating_range=(1, 10))
    with engine.connect() as connection:
        assert connection.execute(select(ratings.c.value, ratings.c.timestamp)).one() == (
            9.0,
            1714564800,
        )


@pytest.mark.parametrize(
    "bounds", [(float("nan"), float("nan")), (float("nan"), 5.0), (0.5, float("inf")), (5.0, 1.0)]
)
def test_a_rating_range_that_is_empty_or_not_finite_is_refused(
    engine: Engine, bounds: tuple[float, float]
) -> None:
    frame = pd.DataFrame({"user_id": ["a"], "item_id": ["b"], "rating": [7.0]})
    with pytest.raises(ValueError, match=r"finite|must be below"):
        ingest(engine, from_frame("ratings", frame, 10), rating_range=bounds)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ratings)).scalar_one() == 0


def test_a_column_mixing_iso_times_and_huge_numbers_names_the_bad_row(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [("a", "x", "3", "2024-05-01T12:00:00Z"), ("b", "x", "3", "1e20")]
    with pytest.raises(IngestError, match="row 2: timestamp 1e\\+20 is not a Unix time"):
        ingest(engine, open_table(write_csv(tmp_path / "r.csv", rows), 10))
    assert count(engine, ratings) == 0


def test_a_file_without_timestamps_gets_the_ingestion_time(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [("a", "x", "3")], header="user_id,item_id,rating")
    ingest(engine, open_table(path, 10))
    with engine.connect() as connection:
        assert connection.execute(select(ratings.c.timestamp)).scalar_one() > 1_700_000_000


def test_metadata_files_describe_users_and_items_and_keep_unknown_columns(
    engine: Engine, tmp_path: Path
) -> None:
    ratings_path = write_csv(tmp_path / "r.csv", GOOD_ROWS)
    users_path = tmp_path / "users.csv"
    users_path.write_text(
        "user_id,age,gender,occupation,zip_code,plan\nu1,31,F,writer,02139,pro\nu2,,M,,,free\n"
    )
    items_path = tmp_path / "items.parquet"
    pd.DataFrame(
        {
            "item_id": ["i1", "i2"],
            "title": ["Heat (1995)", "Fargo (1996)"],
            "genres": ["Action|Crime", "Crime|Drama"],
            "release_date": ["1995-12-15", None],
        }
    ).to_parquet(items_path)

    ingest(
        engine,
        open_table(ratings_path, 4),
        users_source=open_table(users_path, 4),
        items_source=open_table(items_path, 4),
    )

    with engine.connect() as connection:
        u1 = connection.execute(select(users).where(users.c.external_id == "u1")).one()
        u2 = connection.execute(select(users).where(users.c.external_id == "u2")).one()
        i1 = connection.execute(select(items).where(items.c.external_id == "i1")).one()
        i3 = connection.execute(select(items).where(items.c.external_id == "i3")).one()
    assert (u1.age, u1.gender, u1.occupation, u1.zip_code, u1.attributes) == (
        31,
        "F",
        "writer",
        "02139",
        {"plan": "pro"},
    )
    assert (u2.age, u2.occupation) == (None, None)
    assert (i1.title, i1.genres, str(i1.release_date)) == (
        "Heat (1995)",
        ["Action", "Crime"],
        "1995-12-15",
    )
    assert i3.title is None  # created on the fly from a rating


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("user_id,age\nu1,30\nu2,thirty\n", "row 2: age 'thirty' is not a whole number"),
        ("user_id,age\nu1,30\nu1,31\n", "row 2: duplicate user 'u1': row 1 has it already"),
    ],
)
def test_bad_metadata_rejects_the_whole_ingestion(
    engine: Engine, tmp_path: Path, content: str, problem: str
) -> None:
    users_path = tmp_path / "users.csv"
    users_path.write_text(content)
    with pytest.raises(IngestError, match=problem):
        ingest(
            engine,
            open_table(write_csv(tmp_path / "r.csv", GOOD_ROWS), 10),
            users_source=open_table(users_path, 10),
        )
    assert count(engine, ratings) == count(engine, users) == 0


def test_parquet_with_integer_ids_is_read_in_chunks(engine: Engine, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 10],
            "item_id": [7, 8, 7, 8],
            "rating": [1, 2, 3, 4],
            "timestamp": [1, 2, 3, 4],
        }
    )
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    source = open_table(path, chunk_rows=3)
    assert source.total_rows == 4

    ingest(engine, source)
    with engine.connect() as connection:
        assert connection.execute(
            select(users.c.external_id).order_by(users.c.id)
        ).scalars().all() == ["1", "2", "10"]


def test_chunks_never_exceed_the_chunk_size(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", GOOD_ROWS * 5)
    chunks = list(open_table(path, chunk_rows=4).chunks)
    assert max(len(c.frame) for c in chunks) == 4
    assert [c.first_row for c in chunks][:3] == [1, 5, 9]
    assert sum(len(c.frame) for c in chunks) == 30


def test_unreadable_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="file not found"):
        open_table(tmp_path / "missing.csv", 10)
    (tmp_path / "r.xlsx").write_text("x")
    with pytest.raises(IngestError, match="unsupported file type"):
        open_table(tmp_path / "r.xlsx", 10)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(IngestError, match="not a readable parquet file"):
        open_table(tmp_path / "bad.parquet", 10)


def test_in_memory_frames_ingest_like_files(engine: Engine) -> None:
    frame = pd.DataFrame({"user_id": ["a"], "item_id": ["b"], "rating": [4.0], "timestamp": [5]})
    assert ingest(engine, from_frame("frame", frame, 10)).ratings_inserted == 1


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("age", "1000", "age 1000 is outside the allowed range [1, 129]"),
        ("age", "-5", "age -5 is outside the allowed range [1, 129]"),
        ("gender", "g" * 100, "gender is longer than 32 characters"),
        ("occupation", "nurse\x1b[31m", "contains a control character"),
    ],
)
def test_metadata_files_follow_the_api_rules_on_every_database(
    engine: Engine, tmp_path: Path, column: str, value: str, problem: str
) -> None:
    path = tmp_path / "users.csv"
    pd.DataFrame({"user_id": ["a", "b"], column: ["30" if column == "age" else "x", value]}).to_csv(
        path, index=False
    )
    with pytest.raises(IngestError) as refused:
        ingest(engine, users_source=open_table(path, 10))
    assert str(refused.value).startswith(f"{path}: row 2: ")
    assert problem in str(refused.value)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(users)).scalar_one() == 0


def test_ids_that_are_not_ids_are_refused_in_parquet(engine: Engine, tmp_path: Path) -> None:
    for ids, problem in (
        ([1e19, 2.0], "user_id 1e+19 is not an exact id"),
        ([9.3e18, 2.0], "user_id 9.3e+18 is not an exact id"),
        ([float("inf"), 2.0], "user_id inf is not an exact id"),
        ([[1, 2], [3]], "is a ndarray, not a text or integer id"),
        ([b"\x00\x01", b"x"], "not a text or integer id"),
    ):
        path = tmp_path / "ratings.parquet"
        frame = pd.DataFrame({"user_id": ids, "item_id": ["i", "j"], "rating": [3.0, 4.0]})
        frame.to_parquet(path)
        with pytest.raises(IngestError, match="row 1: ") as refused:
            ingest(engine, open_table(path, 10))
        assert problem in str(refused.value)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(users)).scalar_one() == 0


def test_a_column_named_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating,rating\na,b,3,4\n")
    with pytest.raises(IngestError, match="column 'rating' appears twice in the header"):
        open_table(path, 10)


def test_reingesting_a_file_without_timestamps_changes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating\na,b,3\nc,d,4\n")
    ingest(engine, open_table(path, 10))
    again = ingest(engine, open_table(path, 10))
    assert (again.ratings_inserted, again.ratings_updated) == (0, 0)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("item_id", "film\u200b1", "invisible or formatting character (U+200B)"),
        ("item_id", "\u202efilm", "invisible or formatting character (U+202E)"),
        ("item_id", "\ufeff12", "invisible or formatting character (U+FEFF)"),
        ("item_id", "\u0661\u0662", "a digit other than 0-9"),
        ("item_id", "\uff11\uff12", "a digit other than 0-9"),
        ("title", "Alien\u202e", "invisible or formatting character (U+202E)"),
        ("title", "x" * 1_001, "longer than 1000 characters"),
        ("genres", "Drama|" + "x" * 65, "a genre is 1 to 64 characters"),
        ("genres", "|".join(f"g{k}" for k in range(51)), "over 50 genres"),
    ],
)
def test_lookalike_or_oversize_item_fields_are_refused_in_files(
    engine: Engine, tmp_path: Path, column: str, value: str, problem: str
) -> None:
    row = {"item_id": "film1", "title": "Alien", "genres": "Drama", column: value}
    path = tmp_path / "items.parquet"
    pd.DataFrame([row]).to_parquet(path)
    with pytest.raises(IngestError, match=re.escape(problem)):
        ingest(engine, items_source=open_table(path, 10))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(items)).scalar_one() == 0


def test_titles_keep_the_joiners_scripts_need(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "item_id,title\nfilm1,\u0645\u06cc\u200c\u0631\u0648\u0645 \U0001f469\u200d\U0001f52c\n"
    )
    assert ingest(engine, items_source=open_table(path, 10)).items_created == 1
