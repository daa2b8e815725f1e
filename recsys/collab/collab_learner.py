"""Rating learners: DotProductBias and EmbeddingNN fitted to ratings on the shared Learner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recsys.collab.dataset import CollabData
from recsys.collab.evaluate import compare_ratings
from recsys.collab.rating_prediction import Unknown
from recsys.collab.recommender import Recommender, recommender_from_state
from recsys.collab.recommender_state import RecommenderState
from recsys.data.loaders import DataLoaders
from recsys.models.dot_product_bias import DotProductBias, DotProductBiasConfig
from recsys.models.embedding_net import EmbeddingNN, EmbeddingNNConfig
from recsys.models.scorer import CollabScorer
from recsys.train import distributed
from recsys.train.callbacks import Callback
from recsys.train.learner import FitDefaults, Learner, Metric, resolve_device
from recsys.train.metrics import mae, rmse


@dataclass(frozen=True)
class ModelDefaults:
    """A collaborative model kind's tuned size and schedule: what its factory uses when
    not told (``n_factors`` for the factor models, ``layers`` for the deep ones)."""

    fit: FitDefaults
    n_factors: int = 0
    layers: tuple[int, ...] = ()


# Chosen by the grid in `benchmarks/collab.py --search` on MovieLens-100k (random
# 80/20 split, seed 42, mean of two weight seeds); see docs/library.md for the figures.
DOT_DEFAULTS = ModelDefaults(FitDefaults(n_epoch=8, lr_max=5e-3, wd=0.3), n_factors=50)
NN_DEFAULTS = ModelDefaults(FitDefaults(n_epoch=10, lr_max=2e-2, wd=0.5), layers=(100,))
# Above this many embedding rows, tables get sparse gradients (SparseAdamW).
SPARSE_ROWS = 50_000


class CollabLearner(Learner):
    """A Learner for collaborative models, answering in external ids.

    ``objective`` names what it fits (the registry keeps one active version per
    objective); ``selection_metric`` is the validation metric that decides between
    models, ``higher_is_better`` its direction.
    """

    objective = "rating"
    selection_metric = "rmse"
    selection_label = "RMSE"
    compared_unit = "held-out ratings"
    higher_is_better = False

    @property
    def scoring_model(self) -> CollabScorer:
        """The collaborative model inside (see ``Learner.scoring_model``)."""
        return cast(CollabScorer, super().scoring_model)

    reported_metrics: tuple[str, ...] = ("rmse", "mae", "valid_loss", "train_loss")
    summary_metrics: tuple[str, ...] = ("rmse", "mae")  # what a person is shown

    def __init__(
        self,
        data: CollabData,
        model: torch.nn.Module,
        loss_func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss,
        metrics: Sequence[Metric] = (rmse, mae),
        dls: DataLoaders[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dls or data.dls, model, loss_func, metrics=metrics, **kwargs)
        self.data = data

    def recommender(self) -> Recommender:
        """The current model as a :class:`Recommender` whose seen items are the training
        ratings (pass ``exclude=`` for any others)."""
        return recommender_from_state(self.scoring_model, self.recommender_state(), self.data.seen)

    def predict(
        self,
        pairs: pd.DataFrame,
        user_col: str = "user_id",
        item_col: str = "item_id",
        unknown: Unknown = "error",
    ) -> np.ndarray:
        """Predicted ratings for a frame of (user, item) external ids (``unknown``: see
        Recommender.predict)."""
        return self.recommender().predict(pairs, user_col, item_col, unknown=unknown).ratings

    def recommend(self, user_id: object, n: int = 10, **options: Any) -> pd.DataFrame:
        """The user's top-``n`` items (``item_id``, ``score``); see Recommender.recommend."""
        return self.recommender().recommend(user_id, n, **options).frame()

    def similar_items(self, item_id: object, n: int = 10, **options: Any) -> pd.DataFrame:
        """Items nearest to ``item_id`` by cosine similarity of their embeddings."""
        return self.recommender().similar_items(item_id, n, **options).frame()

    def served_metrics(self) -> dict[str, float]:
        """The validation results of the weights that are saved: the last epoch's."""
        last = self.recorder.rows[-1]
        return {name: last[name] for name in self.reported_metrics if name in last}

    def compare_with(
        self, active: Recommender, rows: np.ndarray | None = None
    ) -> tuple[float, float, int]:
        """This model's and ``active``'s selection metric on this learner's held-out data
        (only the validation ``rows`` marked True, when given), restricted to what both
        can answer, and how many ratings or users that was."""
        return compare_ratings(self, active, rows)

    def chosen_settings(self) -> dict[str, Any]:
        """What a refit on all the data reuses (``TrainConfig`` fields): the validated
        weights are the last epoch's, so all the epochs."""
        return {"epochs": self.n_epoch}

    def recommender_state(self) -> RecommenderState:
        """What a Recommender of this model needs beside the weights (saved with them)."""
        data = self.data
        return RecommenderState.of(data.user_map, data.item_map, data.seen, data.rating_baseline)

    def extra_state(self) -> dict[str, Any]:
        return self.recommender_state().extra()


def default_sparse(data: CollabData, device: str | torch.device = "auto") -> bool:
    """Sparse embedding gradients on the CPU when users + items exceed 50,000.

    Sparse updates win on the CPU; on a GPU the fused dense AdamW measured faster
    even at 1M x 100k (see the README's benchmark figures). Under torchrun the
    tables stay dense: DDP averages dense gradients.
    """
    on_cpu = resolve_device(device).type == "cpu"
    single = distributed.current() is None
    return on_cpu and single and data.n_users + data.n_items > SPARSE_ROWS


def collab_learner(
    data: CollabData,
    n_factors: int | None = None,
    y_range: tuple[float, float] = (0.0, 5.5),
    use_nn: bool = False,
    layers: tuple[int, ...] | list[int] | None = None,
    sparse: bool | None = None,
    **kwargs: Any,
) -> CollabLearner:
    """A DotProductBias (or, with ``use_nn``, an EmbeddingNN) learner with MSE loss, RMSE/MAE.

    Unset arguments take the tuned defaults, and so does ``fit_one_cycle()``.
    ``sparse`` trains embeddings with sparse gradients; by default on the CPU when users +
    items exceed 50,000.
    """
    if sparse is None:
        sparse = default_sparse(data, kwargs.get("device", "auto"))
    model: CollabScorer
    if use_nn:
        model = EmbeddingNN(
            EmbeddingNNConfig(
                data.n_users,
                data.n_items,
                layers=tuple(layers or NN_DEFAULTS.layers),
                y_range=y_range,
                sparse=sparse,
            )
        )
        defaults = NN_DEFAULTS.fit
    else:
        model = DotProductBias(
            DotProductBiasConfig(
                data.n_users,
                data.n_items,
                n_factors or DOT_DEFAULTS.n_factors,
                y_range,
                sparse,
            )
        )
        defaults = DOT_DEFAULTS.fit
    kwargs.setdefault("fit_defaults", defaults)  # its wd too, unless given (see Learner)
    return CollabLearner(data, model, **kwargs)


class SolvedFit(CollabLearner):
    """For learners whose model is solved (in closed form, by alternating solves, or from
    members fitted already) rather than trained by gradient steps: there is no learning
    rate, weight decay or callback to give, and asking for one (or for ``lr_find``) is an
    error rather than silently ignored. ``fit()`` and ``fit_one_cycle()`` both call
    :meth:`solve`. Put it before the learner class in the bases."""

    solver, solved_by, settings_hint = "this model", "", ""

    def fit(
        self,
        n_epoch: int | None = None,
        lr: float | None = None,
        wd: float | None = None,
        cbs: Sequence[Any] = (),
    ) -> None:
        given = {"lr": lr, "wd": wd, "callbacks": cbs or None}
        self.refuse_schedule({name: value for name, value in given.items() if value is not None})
        self.solve(n_epoch)

    def fit_one_cycle(
        self,
        n_epoch: int | None = None,
        lr_max: float | None = None,
        wd: float | None = None,
        pct_start: float | None = None,
        div: float | None = None,
        div_final: float | None = None,
        moms: tuple[float, float] | None = None,
        cbs: Sequence[Callback] = (),
    ) -> None:
        """The same solve as :meth:`fit`; there is no cycle to run."""
        given = {
            "lr": lr_max,
            "wd": wd,
            "pct_start": pct_start,
            "div": div,
            "div_final": div_final,
            "moms": moms,
            "callbacks": cbs or None,
        }
        self.refuse_schedule({name: value for name, value in given.items() if value is not None})
        self.solve(n_epoch)

    def solve(self, n_epoch: int | None) -> None:
        """Fit the model (``n_epoch``: sweeps, where the solver has them)."""
        raise NotImplementedError

    def lr_find(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(
            f"{self.solver} is solved {self.solved_by}: it has no learning rate to find"
        )

    def refuse_schedule(self, given: dict[str, Any]) -> None:
        if given:
            raise ValueError(
                f"{self.solver} is solved {self.solved_by}; "
                f"{', '.join(given)} do not apply{self.settings_hint}"
            )
