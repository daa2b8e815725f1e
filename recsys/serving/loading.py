"""A model version loaded for serving: its Recommender over every rating the database
holds, hidden items left out, its approximate index when it has one, and the catalog
around it.

A version's seen items and the catalog's rating counts come from its serving snapshot
(recsys.serving.snapshot: memory-mapped, no pass over the ratings table), then the
ratings written since the snapshot's number. A version without a usable snapshot
(older artifacts, a damaged or mismatched file) is served from one read of every
rating instead, and the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from recsys.collab.ann_index import ItemIndex, index_path
from recsys.collab.interactions import Interactions, RatingsSnapshot
from recsys.collab.recommender import Recommender, load_recommender
from recsys.data.catalog import ItemCatalog, read_items
from recsys.data.ids import SharedIdMaps
from recsys.data.ratings import latest_write, read_deletions
from recsys.db.identity import read_identity
from recsys.jobs.model_versions import (
    OBJECTIVES,
    CannotActivateError,
    ModelVersion,
    active_version,
)
from recsys.serving.following import follow_writes
from recsys.serving.roles import ModelRoles
from recsys.serving.snapshot import (
    ItemAggregates,
    ServingSnapshot,
    SnapshotUnusable,
    snapshot_path,
    write_snapshot,
)

logger = logging.getLogger("recsys.serving")


class DatabaseReads:
    """What the versions loaded together read from the database, each at most once: the
    items table (small), and every rating — only for a version without a usable
    snapshot; and the id maps they share (``serving``: the models served already)."""

    def __init__(self, engine: Engine, serving: Sequence[Recommender] = ()) -> None:
        self.engine = engine
        # Whole maps: a served one leaves out what its model forgot, which another may know.
        self.maps = SharedIdMaps(m.full for r in serving for m in (r.user_map, r.item_map))
        self._items: pd.DataFrame | None = None
        self._ratings: RatingsSnapshot | None = None

    def items(self) -> pd.DataFrame:
        if self._items is None:
            self._items = read_items(self.engine)
        return self._items

    def ratings(self) -> RatingsSnapshot:
        if self._ratings is None:
            self._ratings = RatingsSnapshot.read(self.engine)
        return self._ratings

    def forgotten(self, after: int) -> pd.DataFrame:
        """The users erased and items deleted after write ``after``: their tombstones."""
        return read_deletions(self.engine, after, latest_write(self.engine), ("user", "item"))


@dataclass
class ServedVersion:
    """A loaded version with the catalog around it: what the roles hand out (the API's
    ServedModel has the same attributes, plus what its answers are made of)."""

    version: ModelVersion
    recommender: Recommender
    catalog: ItemCatalog

    def genre_mask(self, genres: Sequence[str] | None) -> torch.Tensor | None:
        """The model items of any of ``genres`` (None or empty: no filter)."""
        if not genres:
            return None
        return torch.from_numpy(self.catalog.genre_mask(genres, self.recommender.item_map.ids))

    # What the write log's follower (recsys.serving.following) applies to a served version.
    @property
    def seen(self) -> Interactions:
        return self.recommender.seen

    def add_feedback(self, ratings: pd.DataFrame) -> None:
        self.recommender.add_feedback(ratings)

    def remove_feedback(self, pairs: pd.DataFrame) -> None:
        self.recommender.remove_feedback(pairs)

    def forget(self, user_ids: Iterable[object] = (), item_ids: Iterable[object] = ()) -> None:
        """Erased users and deleted items leave the model's answers and the catalog."""
        item_ids = list(item_ids)
        self.recommender.forget(user_ids, item_ids)
        self.catalog.forget(item_ids)


def load_version(
    engine: Engine,
    version: ModelVersion,
    device: str | torch.device = "cpu",
    reads: DatabaseReads | None = None,
) -> ServedVersion:
    """The version as served: its seen items are every rating the database holds for
    its users, not only the ones it was trained on, and hidden items are never
    answered (``reads``: shared with the versions loaded at the same time)."""
    if version.artifact_path is None:
        raise CannotActivateError(f"model version {version.id} is {version.status}, not ready")
    reads = reads if reads is not None else DatabaseReads(engine)
    database = read_identity(engine)
    recommender = load_recommender(version.artifact_path, device, database, reads.maps)
    snapshot = serving_snapshot(reads, version, recommender, database)
    served = recommender.with_seen(snapshot.seen)
    served.use_unit_items(snapshot.unit_items)
    served.use_similarity_table(snapshot.item_similarity)
    loaded = ServedVersion(version, served, item_catalog(reads.items(), snapshot.items))
    loaded.recommender.hide(loaded.catalog.hidden)
    # Erased and deleted since training (the snapshot may be newer than the weights),
    # then every write since the snapshot's number.
    forgotten = reads.forgotten(version.trained_through)
    loaded.forget(forgotten["user_id"].dropna(), forgotten["item_id"].dropna())
    follow_writes(engine, [loaded])
    index = index_path(version.artifact_path)
    if index.exists():  # built by the training job for a big catalog
        served.use_index(ItemIndex.at(index))  # read at its first search
    return loaded


def serving_snapshot(
    reads: DatabaseReads, version: ModelVersion, recommender: Recommender, database: str
) -> ServingSnapshot:
    """The version's snapshot file, or — without a usable one — the same built from
    every rating in the database (logged: a worker then starts slower)."""
    assert version.artifact_path is not None
    path = snapshot_path(version.artifact_path)
    maps = (recommender.user_map, recommender.item_map)
    if path.exists():
        try:
            return ServingSnapshot.load(path, *maps, version_id=version.id, database=database)
        except (OSError, SnapshotUnusable) as error:
            logger.warning(
                "model version %s: serving snapshot unusable (%s); reading the ratings from "
                "the database instead (`recsys models snapshot` writes a new one)",
                version.id,
                error,
            )
    else:
        logger.warning(
            "model version %s has no serving snapshot; reading the ratings from the "
            "database instead (`recsys models snapshot` writes one)",
            version.id,
        )
    return ServingSnapshot.build(reads.ratings(), recommender)


def item_catalog(items: pd.DataFrame, aggregates: ItemAggregates) -> ItemCatalog:
    """Every item (``items``: id, title, genres, hidden) with its number of ratings and
    mean rating as of the snapshot (0 and NaN for an item nobody had rated)."""
    rated = pd.DataFrame(
        {"n_ratings": aggregates.n_ratings, "mean_rating": aggregates.mean_ratings},
        index=pd.Index(aggregates.item_ids, dtype=object),
    )
    frame = items.join(rated, on="item_id")
    frame["n_ratings"] = frame["n_ratings"].fillna(0).astype("int64")
    frame["mean_rating"] = frame["mean_rating"].astype("float64")
    return ItemCatalog(frame)


def load_active(engine: Engine, recommend_with: str = "ranking") -> ModelRoles[ServedVersion]:
    """Every objective's active version, loaded as the service loads it, in their roles:
    what the CLI answers from."""
    versions = {o: v for o in OBJECTIVES if (v := active_version(engine, o)) is not None}
    return load_versions(engine, versions, recommend_with)


def load_versions(
    engine: Engine, versions: Mapping[str, ModelVersion], recommend_with: str = "ranking"
) -> ModelRoles[ServedVersion]:
    """``versions`` (objective -> version) loaded together, in their roles. A version
    that would not load is reported in ``broken``, as the service reports it."""
    reads = DatabaseReads(engine)
    served: dict[str, ServedVersion] = {}
    broken: dict[str, tuple[int, str]] = {}
    for objective, version in versions.items():
        try:
            served[objective] = load_version(engine, version, reads=reads)
        except SQLAlchemyError:
            raise
        except Exception as error:  # a damaged or missing file: said, not raised
            broken[objective] = (version.id, f"{type(error).__name__}: {error}")
    return ModelRoles(served, recommend_with, broken)


def rebuild_snapshots(engine: Engine) -> list[tuple[ModelVersion, Path]]:
    """Write the serving snapshot of every active version again from the database as it
    is now (after a big ingest: workers then start without reading it all), without
    retraining; one read of the ratings for all."""
    versions = [v for o in OBJECTIVES if (v := active_version(engine, o)) is not None]
    if not versions:
        return []
    ratings, database = RatingsSnapshot.read(engine), read_identity(engine)
    return [
        (version, write_snapshot(ratings, version.artifact_path, version.id, database))
        for version in versions
        if version.artifact_path is not None
    ]
