"""Ratings written since a served model was loaded — by another worker, another replica
or `recsys ingest` — folded into its seen items: the one follower, run by a worker's
poll and by every load (from its snapshot's write number)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from recsys.collab.recommender import Recommender
from recsys.data.ratings import read_rating_changes


def follow_ratings(engine: Engine, recommenders: Sequence[Recommender]) -> int:
    """Fold every rating written after each recommender's write number into its seen
    items; returns how many were read. One query (a page per 100,000 ratings) from the
    oldest number; a recommender's number moves on only once every page is in."""
    if not recommenders:
        return 0
    after = min(recommender.seen.through for recommender in recommenders)
    n_read, latest = 0, after
    for changes in read_rating_changes(engine, after=after):
        for recommender in recommenders:
            recommender.add_feedback(changes[changes["seq"] > recommender.seen.through])
        latest = int(changes["seq"].iloc[-1])
        n_read += len(changes)
    for recommender in recommenders:
        recommender.seen.through = max(recommender.seen.through, latest)
    return n_read
