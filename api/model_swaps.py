"""Which model version answers what, and swapping to newly activated versions.

One model per objective (none before the first training run); which of them answers
what is recsys.serving.roles' rule (``ServiceState.roles``).

Swapping is one dictionary assignment: a request holds the ServedModel it started
with, so requests in flight finish on the old model and new ones get the new one;
nothing waits and nothing fails during a swap.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from api.metrics import MODEL_VERSION, REFUSED, SWAPS
from api.served_model import ServedModel
from recsys.db.item_visibility import read_hidden
from recsys.jobs.model_versions import OBJECTIVES, active_version
from recsys.serving.following import follow_writes
from recsys.serving.loading import DatabaseReads
from recsys.serving.roles import ModelRoles, NoModelError

logger = logging.getLogger("recsys.api")


class ServiceState:
    """The served models, one per objective, following the registry."""

    def __init__(self, recommend_with: str = "ranking") -> None:
        self.models: dict[str, ServedModel] = {}
        self.recommend_with = recommend_with
        self.refused: set[int] = set()  # versions whose weights did not load
        # objective -> (version id, why): the active version that could not be served.
        self.broken: dict[str, tuple[int, str]] = {}
        self.hidden: frozenset[str] = frozenset()  # as the served models apply them
        # Writes and hidden items are applied one pass at a time (the poll and the
        # routes that write both apply them): two passes interleaved could leave a
        # pair as an older write says, after the follower has moved past the newer.
        self._applying = threading.Lock()

    @property
    def roles(self) -> ModelRoles[ServedModel]:
        """Which served model answers what (recsys.serving.roles: the one rule)."""
        return ModelRoles(self.models, self.recommend_with, self.broken)

    def load_active(self, engine: Engine) -> None:
        """Load each objective's active version; one that does not load is reported (see
        ``broken``) and the others are served all the same."""
        self.models = {}
        self.follow_registry(engine)

    def follow_registry(self, engine: Engine) -> bool:
        """Load each objective's active version if it is not the one served; True if swapped.

        A version whose weights fail to load is logged, remembered in ``broken`` and
        not tried again; the current model of its objective (if any) keeps serving.
        """
        swapped = False
        # Each table read at most once per pass; id maps shared with the models served.
        reads = DatabaseReads(engine, [m.recommender for m in self.models.values()])
        for objective in OBJECTIVES:
            version = active_version(engine, objective)
            current = self.models.get(objective)
            served = current.version.id if current is not None else None
            if version is None or version.id == served or version.id in self.refused:
                continue
            try:
                self.models[objective] = ServedModel.load(engine, version, reads)
            except SQLAlchemyError:
                raise  # the database, not the version: try again at the next poll
            except Exception as error:
                self.refused.add(version.id)
                self.broken[objective] = (version.id, f"{type(error).__name__}: {error}")
                REFUSED.labels(objective).inc()
                logger.exception(
                    "%s model version %s could not be loaded; still serving %s",
                    objective,
                    version.id,
                    served,
                )
                continue
            self.broken.pop(objective, None)
            SWAPS.labels(objective).inc()
            MODEL_VERSION.labels(objective).set(version.id)
            logger.info("now serving %s model version %s (was %s)", objective, version.id, served)
            swapped = True
        if swapped:
            self._build_answer_parts()
        return swapped

    def _build_answer_parts(self) -> None:
        """Build, before requests need them, the recommendation fragments of the model
        that recommends and the map of the one that describes (the rest at first use)."""
        with contextlib.suppress(NoModelError):  # no model serves yet
            _ = self.roles.recommending().fragments
            _ = self.roles.describing().explorer

    def follow_hidden(self, engine: Engine) -> bool:
        """Apply the database's hidden items to every served model if they changed since
        the last look; True when they did."""
        with self._applying:
            hidden = read_hidden(engine)
            if hidden == self.hidden:
                return False
            for model in list(self.models.values()):
                model.hide(hidden)
            self.hidden = hidden
            return True

    def follow_writes(self, engine: Engine) -> int:
        """Apply the writes since each model was loaded — ratings added and deleted, items
        deleted, users erased (see recsys.serving.following); returns how many were read.
        The routes that write call it too: their write counts in this worker at once, in
        its place in the write order."""
        with self._applying:
            return follow_writes(engine, list(self.models.values()))
