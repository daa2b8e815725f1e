"""A model version loaded for serving: its Recommender over every rating the database
holds, hidden items left out, its approximate index when it has one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from recsys.collab.ann_index import ItemIndex, index_path
from recsys.collab.interactions import Interactions, RatingsSnapshot
from recsys.collab.recommender import Recommender, load_recommender
from recsys.data.catalog import ItemCatalog
from recsys.db.identity import read_identity
from recsys.db.item_visibility import read_hidden
from recsys.jobs.model_versions import (
    OBJECTIVES,
    CannotActivateError,
    ModelVersion,
    active_version,
)
from recsys.serving.roles import ModelRoles


def load_version(
    engine: Engine,
    version: ModelVersion,
    device: str | torch.device = "cpu",
    ratings: RatingsSnapshot | None = None,
) -> Recommender:
    """The version as a Recommender for serving: its seen items are every rating the
    database holds for its users, not only the ones it was trained on (``ratings``: a
    snapshot already read, shared by the models loaded together), and hidden items are
    never answered."""
    if version.artifact_path is None:
        raise CannotActivateError(f"model version {version.id} is {version.status}, not ready")
    recommender = load_recommender(version.artifact_path, device, read_identity(engine))
    snapshot = ratings if ratings is not None else RatingsSnapshot.read(engine)
    served = recommender.with_seen(
        Interactions.from_snapshot(snapshot, recommender.user_map, recommender.item_map)
    )
    served.hide(read_hidden(engine))
    index = index_path(version.artifact_path)
    if index.exists():  # built by the training job for a big catalog
        served.use_index(ItemIndex.load(index))
    return served


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


def load_active(engine: Engine, recommend_with: str = "ranking") -> ModelRoles[ServedVersion]:
    """Every objective's active version, loaded as the service loads it, in their roles:
    what the CLI answers from."""
    versions = {o: v for o in OBJECTIVES if (v := active_version(engine, o)) is not None}
    return load_versions(engine, versions, recommend_with)


def load_versions(
    engine: Engine, versions: Mapping[str, ModelVersion], recommend_with: str = "ranking"
) -> ModelRoles[ServedVersion]:
    """``versions`` (objective -> version) loaded with one read of the ratings and the
    catalog (hidden items included) for all, in their roles. A version that would not load
    is reported in ``broken``, as the service reports it."""
    if not versions:
        return ModelRoles({}, recommend_with)
    ratings, catalog = RatingsSnapshot.read(engine), ItemCatalog.from_database(engine)
    served: dict[str, ServedVersion] = {}
    broken: dict[str, tuple[int, str]] = {}
    for objective, version in versions.items():
        try:
            recommender = load_version(engine, version, ratings=ratings)
        except SQLAlchemyError:
            raise
        except Exception as error:  # a damaged or missing file: said, not raised
            broken[objective] = (version.id, f"{type(error).__name__}: {error}")
            continue
        served[objective] = ServedVersion(version, recommender, catalog)
    return ModelRoles(served, recommend_with, broken)
