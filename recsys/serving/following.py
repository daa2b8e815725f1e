"""Writes since a served model was loaded — ratings added and deleted, items deleted, users
erased, by another worker, another replica, `recsys ingest` or `recsys delete` — applied
to it: the one follower, run by a worker's poll and by every load (from its snapshot's
write number).

Ratings and tombstones (recsys.db.deletion) share one sequence of write numbers, so
they are applied in that order: for the same pair, the later write wins, as in the
database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import pandas as pd
from sqlalchemy import Engine

from recsys.collab.interactions import Interactions
from recsys.data.ratings import latest_write, read_deletions, read_rating_changes


class Follower(Protocol):
    """What follows the writes: a Recommender, or a served version (its Recommender and
    its catalog)."""

    @property
    def seen(self) -> Interactions: ...

    def add_feedback(self, ratings: pd.DataFrame) -> None: ...

    def remove_feedback(self, pairs: pd.DataFrame) -> None: ...

    def forget(self, user_ids: Iterable[object] = (), item_ids: Iterable[object] = ()) -> None: ...


def follow_writes(engine: Engine, followers: Sequence[Follower]) -> int:
    """Apply every write numbered after each follower's number, up to the latest (every
    write up to it has committed: numbers are taken in commit order); returns how many
    ratings and tombstones were read. One pass from the oldest number (ratings in pages
    of 100,000); a follower's number moves on only once every page is in."""
    if not followers:
        return 0
    after = min(follower.seen.through for follower in followers)
    through = latest_write(engine)
    if through <= after:
        return 0
    tombstones = read_deletions(engine, after, through)
    n_read = len(tombstones)
    for changes in read_rating_changes(engine, after, through):
        # The tombstones numbered up to this page's last write; no write holds both.
        due = tombstones["seq"] <= changes["seq"].iloc[-1]
        _apply(followers, changes, tombstones[due])
        tombstones = tombstones[~due]
        n_read += len(changes)
    if len(tombstones):
        _apply(followers, tombstones.iloc[:0].reindex(columns=["seq"]), tombstones)
    for follower in followers:
        follower.seen.through = max(follower.seen.through, through)
    return n_read


def _apply(followers: Sequence[Follower], written: pd.DataFrame, removed: pd.DataFrame) -> None:
    """Ratings ``written`` and tombstones ``removed``, in the order of their numbers: each
    run of one kind at once, to each follower that has not seen it."""
    if removed.empty:  # the usual poll, and every POST /ratings: ratings alone, in order
        for follower in followers:
            new = written[written["seq"] > follower.seen.through]
            if not new.empty:
                follower.add_feedback(new)
        return
    events = pd.concat([written.assign(kind="write"), removed], ignore_index=True)
    events = events.sort_values("seq", kind="stable")
    action = events["kind"].replace({"user": "forget", "item": "forget"})
    runs = (action != action.shift()).cumsum()
    for _, run in events.groupby(runs.to_numpy(), sort=True):
        kind = run["kind"].iloc[0]
        for follower in followers:
            new = run[run["seq"] > follower.seen.through]
            if new.empty:
                continue
            if kind == "write":
                follower.add_feedback(new)
            elif kind == "rating":
                follower.remove_feedback(new)
            else:
                follower.forget(
                    user_ids=new["user_id"][new["kind"] == "user"].tolist(),
                    item_ids=new["item_id"][new["kind"] == "item"].tolist(),
                )
