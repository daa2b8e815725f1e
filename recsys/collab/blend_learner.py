"""Blends behind the learner interface: fit each member on the same data (each choosing
its own settings on the hold-out), then choose the weights on the hold-out too.

A weight may be 0: a blend whose best weights leave one member alone serves that
member by itself, so ``auto`` — a blend of the candidates — picks between them and a
mixture of them by the hold-out alone.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recsys.collab.collab_learner import CollabLearner, SolvedFit
from recsys.collab.dataset import CollabData
from recsys.collab.ranking_learner import RankingLearner
from recsys.models.blend import Blend, BlendConfig
from recsys.models.factory import model_config
from recsys.models.scorer import CollabScorer
from recsys.train.metrics import mae, rmse

WEIGHT_STEP = 0.1  # weights tried: every split of 1 into steps of this size
SCALE_USERS = 1_000  # a ranking member's score spread is measured on this many users


@dataclass(frozen=True)
class Member:
    """A member: its model name (``TrainConfig.model``), its learner (not fitted yet),
    and the arguments of its ``fit_one_cycle``."""

    name: str
    learner: CollabLearner
    fit: dict[str, Any]


class BlendFit(SolvedFit):
    """Fits the members, then weighs them (see the module docstring). ``weights`` given:
    those, without choosing."""

    solver, solved_by = "a blend", "from its members"
    settings_hint = " (its members take their own)"

    def __init__(
        self,
        data: CollabData,
        members: Sequence[Member],
        weights: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not members:
            raise ValueError("a blend needs at least one member")
        if weights is not None and len(weights) != len(members):
            raise ValueError(f"{len(members)} members need {len(members)} weights")
        self.members = list(members)
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        first = members[0].learner.scoring_model
        super().__init__(data, first, metrics=(), **kwargs)

    def solve(self, n_epoch: int | None) -> None:
        if n_epoch is not None:
            self.refuse_schedule({"epochs": n_epoch})
        started = time.perf_counter()
        for member in self.members:
            member.learner.fit_one_cycle(**member.fit)
        models = [member.learner.scoring_model.eval() for member in self.members]
        scales = tuple(self.scale(model) for model in models)
        has_valid = len(self.data.dls.valid) > 0
        if self.weights is not None:
            candidates: list[tuple[float, ...]] = [self.weights]
        elif has_valid:
            candidates = weight_grid(len(models))
        else:
            candidates = [tuple(1.0 / len(models) for _ in models)]
        best: dict[str, Any] = {}
        for weights in candidates:
            self.model = self.train_model = self.blend(models, weights, scales)
            row: dict[str, Any] = {"epoch": 0.0, "weights": weights}
            if has_valid:
                row |= self.measure()
            if not best or self.better(row, best):
                best = row
        self.model = self.train_model = self.blend(models, best["weights"], scales)
        self.chosen_weights = best["weights"]
        self.valid_results = {k: v for k, v in best.items() if k not in ("epoch", "weights")}
        self.recorder.rows = [
            {k: v for k, v in best.items() if k != "weights"}
            | {"time": time.perf_counter() - started}
        ]

    def blend(
        self, models: list[CollabScorer], weights: tuple[float, ...], scales: tuple[float, ...]
    ) -> CollabScorer:
        """The blend of the members with a weight above 0, or the one member alone."""
        kept = [i for i, weight in enumerate(weights) if weight > 0]
        if len(kept) == 1:
            return models[kept[0]]
        config = BlendConfig(
            self.data.n_users,
            self.data.n_items,
            tuple(model_config(models[i]) for i in kept),  # type: ignore[misc]  # registered models: never None
            tuple(weights[i] for i in kept),
            tuple(scales[i] for i in kept),
        )
        return Blend(config, [models[i] for i in kept])

    def scale(self, model: CollabScorer) -> float:
        return 1.0

    def measure(self) -> dict[str, float]:
        raise NotImplementedError

    def better(self, row: dict[str, Any], best: dict[str, Any]) -> bool:
        raise NotImplementedError

    def chosen_settings(self) -> dict[str, Any]:
        """The members with a weight above 0, their own settings, and the weights: one
        member alone is served as itself (``model`` is its name)."""
        kept = [i for i, weight in enumerate(self.chosen_weights) if weight > 0]
        settings = [self.members[i].learner.chosen_settings() for i in kept]
        if len(kept) == 1:
            return {"model": self.members[kept[0]].name, **settings[0]}
        return {
            "model": "blend",
            "members": tuple(self.members[i].name for i in kept),
            "blend_weights": tuple(self.chosen_weights[i] for i in kept),
            "member_settings": tuple(settings),
        }


class RankingBlendLearner(BlendFit, RankingLearner):
    """A blend of ranking models, weighed by NDCG@10 on the hold-out; each member's scores
    are divided by their spread over the training users."""

    def scale(self, model: CollabScorer) -> float:
        users = np.arange(self.data.n_users)
        if len(users) > SCALE_USERS:
            users = np.sort(np.random.default_rng(0).choice(users, SCALE_USERS, replace=False))
        with torch.no_grad():
            scores = model.score_all_items(torch.from_numpy(users).to(self.device))
        return float(scores.float().std().clamp_min(1e-12))

    def measure(self) -> dict[str, float]:
        return self.ranking_metrics()

    def better(self, row: dict[str, Any], best: dict[str, Any]) -> bool:
        return bool(row["ndcg"] > best["ndcg"])


class RatingBlendLearner(BlendFit, CollabLearner):
    """A weighted average of rating models' predictions, weighed by RMSE on the hold-out."""

    def measure(self) -> dict[str, float]:
        predictions, targets = self.get_preds()
        return {"rmse": float(rmse(predictions, targets)), "mae": float(mae(predictions, targets))}

    def better(self, row: dict[str, Any], best: dict[str, Any]) -> bool:
        return bool(row["rmse"] < best["rmse"])


def weight_grid(n_members: int, step: float = WEIGHT_STEP) -> list[tuple[float, ...]]:
    """Every way to split 1 into ``n_members`` weights in steps of ``step`` (0 included)."""
    units = round(1 / step)
    return [
        tuple(count / units for count in (*counts, units - sum(counts)))
        for counts in itertools.product(range(units + 1), repeat=n_members - 1)
        if sum(counts) <= units
    ]
