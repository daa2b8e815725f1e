"""iALS behind the learner interface: sweeps of alternating solves (recsys.models.ials),
with the sweep count, ridge and confidence scale chosen on the hold-out."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch

from recsys.collab.dataset import LARGE_DATA_ROWS, CollabData
from recsys.collab.ease_learner import recency_half_lives, training_history
from recsys.collab.ranking_learner import LOW_RATING_WEIGHT, SolvedRankingLearner
from recsys.models.ials import CG_STEPS, IALS, IALSConfig, Rows, solve_side

# Tried on the hold-out below a million training ratings (every combination, each for up
# to IALS_SWEEPS sweeps, the best sweep kept); the defaults above it and without one.
IALS_FACTOR_COUNTS, IALS_FACTORS = (64, 128), 64
IALS_L2S, IALS_ALPHAS = (10.0, 30.0, 100.0), (10.0, 30.0, 100.0)
IALS_L2, IALS_ALPHA = 30.0, 30.0
IALS_SWEEPS = 15
INIT_SCALE = 0.01


class IALSLearner(SolvedRankingLearner):
    """iALS on the training ratings: each rating is a choice, weighted as in the other
    ranking learners (a liked item 1, the rest ``LOW_RATING_WEIGHT``). ``fit(n)`` runs
    ``n`` sweeps (users then items); with a hold-out and ``n`` None, up to
    ``IALS_SWEEPS`` and the best-NDCG sweep is kept. ``n_factors``, ``l2``, ``alpha`` and
    ``half_life`` left None are chosen on the hold-out (the first three below a million
    ratings) or take their defaults."""

    solver, solved_by = "iALS", "by alternating least squares"
    settings_hint = " (its settings are epochs = sweeps, l2 and alpha)"

    def __init__(
        self,
        data: CollabData,
        n_factors: int | None = None,
        l2: float | None = None,
        alpha: float | None = None,
        half_life: float | None = None,
        k: int = 10,
        **kwargs: Any,
    ) -> None:
        config = IALSConfig(data.n_users, data.n_items, n_factors or IALS_FACTORS)
        super().__init__(data, IALS(config), metrics=(), **kwargs)
        self.n_factors, self.l2, self.alpha = n_factors, l2, alpha
        self.half_life, self.k = half_life, k

    def solve(self, n_epoch: int | None) -> None:
        started = time.perf_counter()
        has_valid = len(self.data.dls.valid) > 0
        choose = has_valid and self.data.dls.train.n_rows < LARGE_DATA_ROWS
        if self.n_factors is not None:
            factor_counts: tuple[int, ...] = (self.n_factors,)
        else:
            factor_counts = IALS_FACTOR_COUNTS if choose else (IALS_FACTORS,)
        l2s = (self.l2,) if self.l2 is not None else IALS_L2S if choose else (IALS_L2,)
        alphas = (
            (self.alpha,) if self.alpha is not None else IALS_ALPHAS if choose else (IALS_ALPHA,)
        )
        half_lives = recency_half_lives(self.half_life, self.data)
        sweeps = n_epoch or IALS_SWEEPS
        history = training_history(self.data)
        users = np.repeat(np.arange(self.data.n_users), np.diff(history.indptr))
        weights = history.weights(0.0, LOW_RATING_WEIGHT)
        sample = self.validation_sample() if has_valid else None
        init = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
        start = {
            (name, d): torch.randn(n, d, generator=init) * INIT_SCALE
            for d in factor_counts
            for name, n in (("users", self.data.n_users), ("items", self.data.n_items))
        }
        best: dict[str, Any] = {}
        for n_factors, l2, alpha in itertools.product(factor_counts, l2s, alphas):
            confidence = 1.0 + alpha * weights
            by_user = Rows.of(users, history.indices, confidence, self.data.n_users)
            by_item = Rows.of(history.indices, users, confidence, self.data.n_items)
            user_chunks, item_chunks = by_user.chunks(self.device), by_item.chunks(self.device)
            model = self._model(n_factors, l2, alpha)
            model.user_factors.copy_(start["users", n_factors])
            model.item_factors.copy_(start["items", n_factors])
            swept: dict[str, Any] = {}
            for sweep in range(sweeps):
                solve_side(model.user_factors, model.item_factors, user_chunks, l2)
                solve_side(model.item_factors, model.user_factors, item_chunks, l2)
                row = {"epoch": float(sweep), "n_factors": n_factors, "l2": l2, "alpha": alpha}
                if has_valid:
                    row |= self.ranking_metrics(self.k, users=sample)
                if not swept or row.get("ndcg", 0.0) > swept.get("ndcg", 0.0) or not has_valid:
                    swept, vectors = row, _copied(model)
            model.load_state_dict(vectors)  # the best sweep's
            plain_users = model.user_factors.clone()
            for half_life in half_lives:
                # Each user's vector solved again from their history weighted by recency,
                # as EASE weights its scoring rows (recsys.models.ease); items stay.
                model.user_factors.copy_(plain_users)
                if half_life > 0:
                    recent = 1.0 + alpha * history.weights(half_life, LOW_RATING_WEIGHT)
                    chunks = Rows.of(users, history.indices, recent, self.data.n_users)
                    solve_side(
                        model.user_factors,
                        model.item_factors,
                        chunks.chunks(self.device),
                        l2,
                        2 * CG_STEPS,
                    )
                row = {**swept, "half_life": half_life}
                if has_valid:
                    row |= self.ranking_metrics(self.k, users=sample)
                if not best or row.get("ndcg", 0.0) > best.get("ndcg", 0.0):
                    best = row
                    kept = replace(model.config, half_life=half_life), _copied(model)
        config, state = kept
        self.model = self.train_model = IALS(config).to(self.device)
        self.model.load_state_dict(state)
        if has_valid and sample is not None:  # measured on every validation user
            best |= {"ndcg_sample": best["ndcg"], **self.ranking_metrics(self.k)}
        self.valid_results = {name: value for name, value in best.items() if name != "epoch"}
        self.recorder.rows = [{**best, "time": time.perf_counter() - started}]

    def _model(self, n_factors: int, l2: float, alpha: float) -> IALS:
        config = replace(
            cast(IALS, self.model).config,
            n_factors=n_factors,
            l2=l2,
            alpha=alpha,
            low_weight=LOW_RATING_WEIGHT,
        )
        self.model = self.train_model = IALS(config).to(self.device)
        return self.model

    def chosen_settings(self) -> dict[str, Any]:
        """The sweep count, factors, ridge, confidence scale and half-life chosen on the
        hold-out."""
        row = self.recorder.rows[-1]
        return {
            "epochs": int(row["epoch"]) + 1,
            "n_factors": row["n_factors"],
            "l2": row["l2"],
            "alpha": row["alpha"],
            "half_life": row["half_life"],
        }


def _copied(model: IALS) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}
