"""The follower applies ratings and tombstones in the order they were written, whatever
pages the ratings come in: what it ends with is what the database holds."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import pandas as pd
import pytest
from sqlalchemy import Engine

from recsys.data import ratings as ratings_module
from recsys.db.deletion import delete_item, delete_ratings, erase_users
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.serving import following
from recsys.serving.following import follow_writes


class Seen:
    def __init__(self) -> None:
        self.through = 0


class Recorder:
    """A follower that keeps the pairs it was told of, as a served model would."""

    def __init__(self) -> None:
        self.seen = Seen()
        self.pairs: set[tuple[str, str]] = set()
        self.forgotten: set[str] = set()

    def add_feedback(self, ratings: pd.DataFrame) -> None:
        self.pairs |= set(zip(ratings["user_id"], ratings["item_id"], strict=True))

    def remove_feedback(self, pairs: pd.DataFrame) -> None:
        self.pairs -= set(zip(pairs["user_id"], pairs["item_id"], strict=True))

    def forget(self, user_ids: Iterable[object] = (), item_ids: Iterable[object] = ()) -> None:
        gone = {str(i) for i in [*user_ids, *item_ids]}
        self.forgotten |= gone
        self.pairs = {p for p in self.pairs if not gone & set(p)}


def write(engine: Engine, *pairs: str) -> None:
    rows = pd.DataFrame(
        [(p.split(":")[0], p.split(":")[1], 4.0) for p in pairs],
        columns=["user_id", "item_id", "rating"],
    )
    ingest(engine, from_frame("ratings", rows, 100))


def take_back(engine: Engine, *pairs: str) -> None:
    rows = pd.DataFrame([p.split(":") for p in pairs], columns=["user_id", "item_id"])
    delete_ratings(engine, from_frame("deletions", rows, 100))


def stored(engine: Engine) -> set[tuple[str, str]]:
    table = ratings_module.read_ratings(engine).frame()
    return set(zip(table["user_id"], table["item_id"], strict=True))


def test_writes_and_deletions_are_applied_in_write_order_across_pages(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = partial(ratings_module.read_rating_changes, page_rows=2)  # pages cut writes
    monkeypatch.setattr(following, "read_rating_changes", pages)
    early, late = Recorder(), Recorder()

    write(engine, "a:x", "a:y", "b:x", "c:z")
    follow_writes(engine, [late])  # one follower is ahead of the other
    take_back(engine, "a:x", "c:z")
    write(engine, "a:x", "b:y", "c:y")  # a:x again, after its deletion: it stays
    take_back(engine, "b:x", "b:y", "nobody:x")
    write(engine, "b:x")
    take_back(engine, "b:x")  # the deletion is the later write: it goes
    follow_writes(engine, [early, late])
    assert early.pairs == late.pairs == stored(engine) == {("a", "x"), ("a", "y"), ("c", "y")}

    erase_users(engine, ["a"])
    assert delete_item(engine, "y") is not None
    write(engine, "d:z")
    assert follow_writes(engine, [early, late]) == 3  # two tombstones and a rating
    assert early.forgotten == late.forgotten == {"a", "y"}
    assert early.pairs == late.pairs == stored(engine) == {("d", "z")}
    assert follow_writes(engine, [early, late]) == 0  # nothing new
