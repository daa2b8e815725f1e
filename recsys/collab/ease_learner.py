"""EASE behind the learner interface: its "fit" is one d x d solve (recsys.models.ease),
and what it chooses on the hold-out is its ridge and the half-life of the recency
weighting it scores with."""

from __future__ import annotations

import time
from typing import Any, cast

from recsys.collab.dataset import CollabData
from recsys.collab.ranking_learner import LOW_RATING_WEIGHT, SolvedRankingLearner
from recsys.data.ids import LIKED_AT
from recsys.models.ease import EASE, EASEConfig, History, fit_ease, interaction_gram

# The ridges tried on the hold-out (each one solve of the same Gram matrix), and the one
# used when there is nothing to choose on.
EASE_L2S, EASE_L2 = (100.0, 250.0, 500.0, 1000.0), 250.0
# EASE's scoring rows: half-lives (in ratings; 0 = no decay) tried on the hold-out,
# and the one used when there is nothing to choose on.
HALF_LIVES, EASE_HALF_LIFE = (0.0, 5.0, 10.0, 20.0, 40.0), 10.0


class EASELearner(SolvedRankingLearner):
    """EASE behind the learner interface. It is solved in closed form, so there is
    nothing to schedule: ``fit()`` / ``fit_one_cycle()`` solve it, and asking for
    epochs, a learning rate, weight decay, callbacks or ``lr_find`` is an error
    rather than silently ignored. Its settings are the ridge ``l2`` and the
    ``half_life`` of its recency-weighted scoring rows; each left None is chosen on the
    hold-out (every pair of ``EASE_L2S`` and ``HALF_LIVES``, the best NDCG kept), or
    takes its default without one (ratings without times are scored without decay)."""

    def __init__(
        self,
        data: CollabData,
        l2: float | None = None,
        k: int = 10,
        half_life: float | None = None,
        **kwargs: Any,
    ) -> None:
        placeholder = EASE(EASEConfig(data.n_users, data.n_items, 0, EASE_L2 if l2 is None else l2))
        super().__init__(data, placeholder, metrics=(), **kwargs)
        self.l2 = l2
        self.k = k
        self.half_life = half_life

    solver, solved_by = "EASE", "in closed form"
    settings_hint = " (its settings are l2 and half_life)"

    def solve(self, n_epoch: int | None) -> None:
        """Solve for the item-item weights with each ridge, and choose the ridge and the
        half-life on the hold-out."""
        if n_epoch is not None:
            self.refuse_schedule({"epochs": n_epoch})
        started = time.perf_counter()
        history = training_history(self.data)
        half_lives = recency_half_lives(self.half_life, self.data)
        has_valid = len(self.data.dls.valid) > 0  # none in a refit on all the data
        if self.l2 is not None:
            l2s: tuple[float, ...] = (self.l2,)
        else:
            l2s = EASE_L2S if has_valid else (EASE_L2,)
        gram = interaction_gram(history, self.data.n_items)
        best: dict[str, Any] = {}
        for l2 in l2s:
            model = fit_ease(history, self.data.n_items, l2, half_lives[0], LOW_RATING_WEIGHT, gram)
            self.model = self.train_model = model.to(self.device)
            for half_life in half_lives:
                model.reweight(history, half_life, LOW_RATING_WEIGHT)
                results = self.ranking_metrics(self.k) if has_valid else {}
                row = {"epoch": 0.0, "l2": l2, "half_life": half_life, **results}
                if not best or row.get("ndcg", 0.0) > best.get("ndcg", 0.0):
                    best, kept = row, model
        del gram
        kept.reweight(history, best["half_life"], LOW_RATING_WEIGHT)
        self.model = self.train_model = kept
        self.valid_results = {name: value for name, value in best.items() if name != "epoch"}
        self.recorder.rows = [{**best, "time": time.perf_counter() - started}]

    def chosen_settings(self) -> dict[str, Any]:
        """The ridge and half-life chosen on the hold-out, for the solve on every rating."""
        config = cast(EASE, self.model).config
        return {"l2": config.l2, "half_life": config.half_life}


def training_history(data: CollabData) -> History:
    """Each user's training ratings, newest first, with which were liked: what EASE's
    scoring rows and iALS's recency-weighted user solve weigh."""
    x, y = (t.cpu().numpy() for t in data.dls.train.tensors)
    return History.from_ratings(
        x[:, 0], x[:, 1], data.n_users, liked=y >= LIKED_AT, timestamps=data.train_times
    )


def recency_half_lives(given: float | None, data: CollabData) -> tuple[float, ...]:
    """The half-lives to try: the one ``given``; none (0) for ratings without times;
    every one of ``HALF_LIVES`` when there is a hold-out to choose on; else the default."""
    if given is not None:
        return (given,)
    if data.train_times is None:
        return (0.0,)
    return HALF_LIVES if len(data.dls.valid) > 0 else (EASE_HALF_LIFE,)
