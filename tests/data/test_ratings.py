"""Reading the database into index tensors and id maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sqlalchemy import Engine

from recsys.data.ids import IdMap, UnknownIdError
from recsys.data.ratings import read_rating_changes, read_ratings
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame


def load(engine: Engine, frame: pd.DataFrame, **sources: object) -> None:
    ingest(engine, from_frame("ratings", frame, chunk_rows=2), **sources)  # type: ignore[arg-type]


def test_ratings_become_contiguous_indices_with_maps_back_to_external_ids(engine: Engine) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["bob", "ann", "bob", "cid"],
            "item_id": ["x", "y", "y", "z"],
            "rating": [1.0, 2.0, 3.0, 4.5],
            "timestamp": [10, 20, 30, 40],
        }
    )
    load(engine, frame)

    table = read_ratings(engine, chunk_rows=3)

    assert (len(table), table.n_users, table.n_items) == (4, 3, 3)
    assert table.users.dtype == torch.int64
    assert table.ratings.dtype == torch.float32
    rebuilt = {
        (table.user_map.ids[u], table.item_map.ids[i], float(r), int(t))
        for u, i, r, t in zip(
            table.users, table.items, table.ratings, table.timestamps, strict=True
        )
    }
    assert rebuilt == {
        ("bob", "x", 1.0, 10),
        ("ann", "y", 2.0, 20),
        ("bob", "y", 3.0, 30),
        ("cid", "z", 4.5, 40),
    }
    assert table.user_map.index("cid") == list(table.user_map.ids).index("cid")


def test_reading_twice_gives_identical_tensors(engine: Engine) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 30, 200).astype(str),
            "item_id": rng.integers(0, 40, 200).astype(str),
            "rating": rng.integers(1, 6, 200),
            "timestamp": np.arange(200),
        }
    ).drop_duplicates(["user_id", "item_id"])
    load(engine, frame)
    first, second = read_ratings(engine, chunk_rows=7), read_ratings(engine)
    for name in ("users", "items", "ratings", "timestamps"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert list(first.item_map.ids) == list(second.item_map.ids)


def test_metadata_rows_line_up_with_indices(engine: Engine) -> None:
    frame = pd.DataFrame(
        {"user_id": ["u2", "u1"], "item_id": ["b", "a"], "rating": [3, 4], "timestamp": [1, 2]}
    )
    users = pd.DataFrame(
        {"user_id": ["u1", "u2", "u3"], "age": [20, 30, 40], "occupation": ["a", "b", "c"]}
    )
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "genres": ["x|y", "y"]})
    load(
        engine,
        frame,
        users_source=from_frame("users", users, 2),
        items_source=from_frame("items", items, 2),
    )

    table = read_ratings(engine, with_metadata=True)

    assert table.user_metadata is not None
    assert table.item_metadata is not None
    assert list(table.user_metadata["external_id"]) == list(table.user_map.ids)  # u3 has no ratings
    assert dict(
        zip(table.user_metadata["external_id"], table.user_metadata["age"], strict=True)
    ) == {"u1": 20, "u2": 30}
    assert dict(
        zip(table.item_metadata["external_id"], table.item_metadata["genres"], strict=True)
    ) == {
        "a": ["x", "y"],
        "b": ["y"],
    }


def test_an_empty_database_gives_an_empty_table(engine: Engine) -> None:
    table = read_ratings(engine)
    assert (len(table), table.n_users, table.n_items) == (0, 0, 0)


def test_id_maps_name_unknown_ids() -> None:
    id_map = IdMap("user", np.array([2, 10, 33], dtype=object))
    assert list(id_map.indices([33, 2])) == [2, 0]
    with pytest.raises(UnknownIdError, match="unknown user id 7"):
        id_map.indices([2, 7])


def test_changes_are_read_in_pages_to_the_end_of_every_write(engine: Engine) -> None:
    """Every rating of one write carries the same number: a page that ends inside a
    write must not lose the rest of it."""
    first = pd.DataFrame(
        {"user_id": [f"u{n}" for n in range(7)], "item_id": "a", "rating": 3.0, "timestamp": 1}
    )
    second = first.assign(item_id="b")
    load(engine, first)
    load(engine, second)

    pages = list(read_rating_changes(engine, after=0, page_rows=3))

    assert [len(page) for page in pages] == [3, 3, 3, 3, 2]
    read = pd.concat(pages)
    assert sorted(zip(read["user_id"], read["item_id"], strict=True)) == sorted(
        (f"u{n}", item) for n in range(7) for item in "ab"
    )
    assert read["seq"].is_monotonic_increasing
    after_first = int(read["seq"].iloc[0])
    assert sum(len(page) for page in read_rating_changes(engine, after_first, 3)) == 7
