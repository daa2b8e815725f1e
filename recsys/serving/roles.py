"""Which loaded model answers what: the one rule, for the API, the CLI and the notebook.

One model per objective may be active (none before the first training run):

- **recommendations** come from the ranking model, unless ``recommend_with`` is
  ``rating``; either stands in for the other when it is the only one;
- **rating predictions** come from the rating model alone: a ranking model's scores are
  not ratings (NoRatingModelError, a CapabilityError), and an active rating model that
  would not load is said to be unavailable, not missing;
- **item neighbours, explanations and the map** (similar items, "because you liked",
  explain, the explorer) come from the rating model, else the ranking one;
- **user vectors** (similar users) come from the recommending model, else the rating
  model when the recommending one has none (EASE);
- **metadata** (users known only by a profile) comes from whichever of the recommending
  and the rating model reads it, the recommending one first.

NoModelError when no model is active (or none would load).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from recsys.collab.recommender import Recommender
from recsys.jobs.model_versions import ModelVersion, recommending_objectives
from recsys.models.scorer import CapabilityError


class Served(Protocol):
    """A loaded model version: the API's ServedModel, the CLI's ServedVersion."""

    version: ModelVersion
    recommender: Recommender


S = TypeVar("S", bound=Served)


class NoModelError(LookupError):
    """No model is active yet, or none of the active ones would load."""


class ModelUnavailableError(LookupError):
    """The active model of a role would not load."""


class NoRatingModelError(CapabilityError):
    """Only a ranking model is active, and its scores are not ratings."""


class NoUserVectorsError(CapabilityError):
    """No active model has user vectors to compare users with."""


@dataclass(frozen=True)
class ModelRoles(Generic[S]):
    """The served models by objective, and which answers what (see the module docstring).

    ``broken``: objective -> (version id, why) for an active version that would not load.
    """

    models: Mapping[str, S]
    recommend_with: str = "ranking"
    broken: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def recommending(self) -> S:
        for objective in recommending_objectives(self.recommend_with):
            if objective in self.models:
                return self.models[objective]
        raise self._none()

    def rating(self) -> S:
        if "rating" in self.models:
            return self.models["rating"]
        if "rating" in self.broken:
            version_id, why = self.broken["rating"]
            raise ModelUnavailableError(
                f"the active rating model, version {version_id}, could not be loaded ({why}): "
                "retrain or activate another version"
            )
        if self.models:
            raise NoRatingModelError(
                "only a ranking model is active and its scores are not ratings: "
                "train one with `recsys train --objective rating`"
            )
        raise self._none()

    def describing(self) -> S:
        """Item neighbours, explanations and the map."""
        for objective in ("rating", "ranking"):
            if objective in self.models:
                return self.models[objective]
        raise self._none()

    def user_vectors(self) -> S:
        """Similar users: the first of the recommending and the rating model with user
        vectors; NoUserVectorsError when neither has any."""
        candidates = [self.recommending(), self.models.get("rating")]
        for served in candidates:
            if served is not None and served.recommender.has_user_vectors:
                return served
        raise NoUserVectorsError(
            "no active model has user vectors (EASE has none): train a dot or nn model"
        )

    def metadata(self) -> S | None:
        """The model that answers users known only by their profile, if any reads one."""
        candidates = [self.recommending(), self.models.get("rating")] if self.models else []
        for served in candidates:
            if served is not None and served.recommender.reads_metadata:
                return served
        return None

    def _none(self) -> NoModelError:
        if self.broken:
            listed = "; ".join(
                f"{objective} version {version_id}: {why}"
                for objective, (version_id, why) in self.broken.items()
            )
            return NoModelError(
                f"no model could be loaded ({listed}): retrain or activate another version"
            )
        return NoModelError("no model is active yet: run `recsys train`")
