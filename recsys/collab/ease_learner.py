"""EASE behind the learner interface: its "fit" is one d x d solve (recsys.models.ease),
and what it chooses on the hold-out is the half-life of the recency weighting it
scores with."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from recsys.collab.dataset import CollabData
from recsys.collab.ranking_learner import LOW_RATING_WEIGHT, RankingLearner
from recsys.data.ratings import LIKED_AT
from recsys.models.ease import EASE, EASEConfig, History, fit_ease
from recsys.train.callbacks import Callback

EASE_L2 = 250.0
# EASE's scoring rows: half-lives (in ratings; 0 = no decay) tried on the hold-out,
# and the one used when there is nothing to choose on.
HALF_LIVES, EASE_HALF_LIFE = (0.0, 5.0, 10.0, 20.0, 40.0), 10.0


class EASELearner(RankingLearner):
    """EASE behind the learner interface. It is solved in closed form, so there is
    nothing to schedule: ``fit()`` / ``fit_one_cycle()`` solve it, and asking for
    epochs, a learning rate, weight decay, callbacks or ``lr_find`` is an error
    rather than silently ignored. Its settings are the ridge ``l2`` and the
    ``half_life`` of its recency-weighted scoring rows; with ``half_life=None`` and a
    hold-out, each of ``HALF_LIVES`` is tried and the best NDCG kept (ratings
    without times are scored without decay)."""

    def __init__(
        self,
        data: CollabData,
        l2: float = EASE_L2,
        k: int = 10,
        half_life: float | None = None,
        **kwargs: Any,
    ) -> None:
        placeholder = EASE(EASEConfig(data.n_users, data.n_items, 0, l2))
        super().__init__(data, placeholder, metrics=(), **kwargs)
        self.l2 = l2
        self.k = k
        self.half_life = half_life

    def fit(  # type: ignore[override]
        self,
        n_epoch: int | None = None,
        lr: float | None = None,
        wd: float | None = None,
        cbs: Sequence[Callback] = (),
    ) -> None:
        """Solve for the item-item weights, then choose the half-life on the hold-out."""
        given = {"epochs": n_epoch, "lr": lr, "wd": wd, "callbacks": cbs or None}
        _refuse_schedule({name: value for name, value in given.items() if value is not None})
        started = time.perf_counter()
        x, y = (t.cpu().numpy() for t in self.data.dls.train.tensors)
        times = self.data.train_times
        history = History.from_ratings(
            x[:, 0], x[:, 1], self.data.n_users, liked=y >= LIKED_AT, timestamps=times
        )
        has_valid = len(self.data.dls.valid) > 0  # none in a refit on all the data
        if self.half_life is not None:
            candidates: tuple[float, ...] = (self.half_life,)
        elif times is None:
            candidates = (0.0,)
        else:
            candidates = HALF_LIVES if has_valid else (EASE_HALF_LIFE,)
        model = fit_ease(history, self.data.n_items, self.l2, candidates[0], LOW_RATING_WEIGHT)
        self.model = self.train_model = model.to(self.device)
        rows = []
        for half_life in candidates:
            model.reweight(history, half_life, LOW_RATING_WEIGHT)
            results = self.ranking_metrics(self.k) if has_valid else {}
            rows.append({"epoch": 0.0, "half_life": half_life, **results})
        best = max(rows, key=lambda row: row.get("ndcg", 0.0))
        model.reweight(history, best["half_life"], LOW_RATING_WEIGHT)
        self.valid_results = {name: value for name, value in best.items() if name != "epoch"}
        self.recorder.rows = [{**best, "time": time.perf_counter() - started}]

    def fit_one_cycle(  # type: ignore[override]
        self,
        n_epoch: int | None = None,
        lr_max: float | None = None,
        wd: float | None = None,
        **schedule: Any,
    ) -> None:
        """The same solve as :meth:`fit`; there is no cycle to run."""
        given = {"epochs": n_epoch, "lr": lr_max, "wd": wd, **schedule}
        _refuse_schedule({name: value for name, value in given.items() if value is not None})
        self.fit()

    def lr_find(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("EASE is solved in closed form: it has no learning rate to find")

    def chosen_settings(self) -> dict[str, Any]:
        """The half-life chosen on the hold-out; the solve is the same on more data."""
        return {"half_life": self.model.config.half_life}


def _refuse_schedule(given: dict[str, Any]) -> None:
    if given:
        raise ValueError(
            f"EASE is solved in closed form; {', '.join(given)} do not apply "
            "(its one hyper-parameter is l2)"
        )
