"""The training job: hyper-parameters as a frozen dataclass, and database -> trained learner."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from sqlalchemy import Engine, func, select

from recsys.collab import CollabData, CollabLearner, collab_learner, load_recommender
from recsys.data.ratings import IdMap, read_ratings
from recsys.db.tables import ratings
from recsys.evaluate import model_scorer, ranking_metrics
from recsys.hybrid import hybrid_learner
from recsys.ranking import EASE_L2, RankingLearner, ranking_learner
from recsys.recommend import Recommender
from recsys.registry import (
    OBJECTIVES,
    active_version,
    fail_stale,
    fail_version,
    finish_version,
    start_version,
)
from recsys.train import distributed


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; None means the model's tuned default.

    ``objective`` ``rating`` fits predicted ratings (RMSE); ``ranking`` fits what
    users choose and is validated by NDCG@10 (see recsys.ranking). ``ease`` is a
    ranking model only; ``hybrid`` (metadata too, see recsys.hybrid) a rating model only.
    """

    objective: Literal["rating", "ranking"] = "rating"
    model: Literal["dot", "nn", "ease", "hybrid"] = "dot"
    n_factors: int | None = None
    layers: tuple[int, ...] | None = None
    epochs: int | None = None
    lr: float | None = None
    wd: float | None = None
    l2: float | None = None  # EASE's ridge
    batch_size: int | None = None  # None: 512 (1024 to rank), or 4096 from 1M ratings
    valid_pct: float = 0.2
    # None: random for rating models, per-user temporal for ranking models.
    split: Literal["random", "temporal"] | None = None
    seed: int = 42
    y_range: tuple[float, float] = (0.0, 5.5)
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be rating or ranking, not {self.objective!r}")
        if self.model not in ("dot", "nn", "ease", "hybrid"):
            raise ValueError(f"model must be dot, nn, ease or hybrid, not {self.model!r}")
        if self.model == "ease" and self.objective != "ranking":
            raise ValueError("ease ranks items and predicts no ratings: use objective ranking")
        if self.model == "hybrid" and self.objective != "rating":
            raise ValueError("hybrid is a rating model: use objective rating")

    @property
    def resolved_split(self) -> Literal["random", "temporal"]:
        if self.split is not None:
            return self.split
        return "temporal" if self.objective == "ranking" else "random"


def train_from_database(
    engine: Engine, config: TrainConfig, progress: bool = True
) -> CollabLearner:
    """Read all ratings, split them, and fit the configured model (one-cycle, or EASE's solve)."""
    table = read_ratings(engine, with_metadata=config.model == "hybrid")
    if len(table) == 0:
        raise ValueError("the database has no ratings: load some first (recsys load / ingest)")
    torch.manual_seed(config.seed)
    data = CollabData.from_table(
        table,
        valid_pct=config.valid_pct,
        seed=config.seed,
        split=config.resolved_split,
        batch_size=config.batch_size,
    )
    options = {"device": config.device, "progress": progress}
    if config.objective == "ranking":
        learn: CollabLearner = ranking_learner(
            data,
            model=config.model,
            n_factors=config.n_factors,
            layers=config.layers,
            l2=EASE_L2 if config.l2 is None else config.l2,
            batch_size=config.batch_size,
            **options,
        )
    elif config.model == "hybrid":
        learn = hybrid_learner(
            data,
            table.user_metadata.rename(columns={"external_id": "user_id"}),  # type: ignore[union-attr]
            table.item_metadata.rename(columns={"external_id": "item_id"}),  # type: ignore[union-attr]
            layers=config.layers,
            y_range=config.y_range,
            **options,
        )
    else:
        learn = collab_learner(
            data,
            n_factors=config.n_factors,
            y_range=config.y_range,
            use_nn=config.model == "nn",
            layers=config.layers,
            **options,
        )
    learn.fit_one_cycle(config.epochs, config.lr, config.wd)
    return learn


def data_snapshot(engine: Engine) -> dict[str, int]:
    """What the run trained on: how many ratings, up to which time."""
    with engine.connect() as connection:
        count, latest = connection.execute(
            select(func.count(), func.max(ratings.c.timestamp))
        ).one()
    return {"n_ratings": int(count), "max_timestamp": int(latest or 0)}


def library_versions() -> dict[str, str]:
    """The versions that produced an artifact, for whoever loads it later."""
    return {name: metadata.version(name) for name in ("recsys", "torch", "numpy", "pandas")} | {
        "python": platform.python_version()
    }


@dataclass(frozen=True)
class TrainResult:
    """A finished run: its version, whether it is now served, and why."""

    version_id: int
    learn: CollabLearner
    promoted: bool
    reason: str


def compare_with_active(engine: Engine, learn: CollabLearner) -> tuple[float, float, int] | None:
    """The new model's and the active one's validation score, on what both can answer.

    Rating models: RMSE on the new held-out ratings whose user and item both know
    (lower is better). Ranking models: NDCG@10 of the users both know, the active
    model unable to recommend items it never saw (higher is better). Returns None
    when no version of the learner's objective is active; the active model is
    re-evaluated on today's held-out data, so the comparison is like for like.
    The third value counts the ratings (rating) or users (ranking) compared.
    """
    version = active_version(engine, learn.objective)
    if version is None:
        return None
    active = load_recommender(version.artifact_path)
    if isinstance(learn, RankingLearner):
        return _compare_ranking(learn, active)
    x, _y = (t.cpu() for t in learn.data.dls.valid.tensors)
    users = learn.data.user_map.ids[x[:, 0].numpy()]
    items = learn.data.item_map.ids[x[:, 1].numpy()]
    known = np.array(
        [u in active.user_map and i in active.item_map for u, i in zip(users, items, strict=True)],
        dtype=bool,
    )
    if not known.any():
        return float("nan"), float("nan"), 0
    new_predictions, targets = (t.cpu().numpy() for t in learn.get_preds())
    pairs = pd.DataFrame({"user_id": users[known], "item_id": items[known]})
    old_predictions = active.predict(pairs)

    def rmse(predictions: np.ndarray) -> float:
        return float(np.sqrt(np.mean((predictions - targets[known]) ** 2)))

    return rmse(new_predictions[known]), rmse(old_predictions), int(known.sum())


def _compare_ranking(learn: RankingLearner, active: Recommender) -> tuple[float, float, int]:
    data = learn.data

    def lookup(ids: np.ndarray, id_map: IdMap) -> np.ndarray:
        return np.array([id_map.index(i) if i in id_map else -1 for i in ids], dtype=np.int64)

    user_lookup = lookup(data.user_map.ids, active.user_map)
    item_lookup = torch.from_numpy(lookup(data.item_map.ids, active.item_map))
    known_items = item_lookup >= 0
    x, y = (t.cpu() for t in data.dls.valid.tensors)
    keep = user_lookup[x[:, 0].numpy()] >= 0
    valid = (x[keep, 0].numpy(), x[keep, 1].numpy(), y[keep].numpy())

    def old_scores(users: torch.Tensor) -> torch.Tensor:
        theirs = active.model.score_all_items(torch.from_numpy(user_lookup[users.numpy()]))
        scores = torch.full((len(users), data.n_items), -torch.inf)
        scores[:, known_items] = theirs.float()[:, item_lookup[known_items]]
        return scores

    new, old = (
        ranking_metrics(scorer, data.seen, *valid, data.n_items)
        for scorer in (model_scorer(learn), old_scores)
    )
    return new["ndcg"], old["ndcg"], int(new["users"])


def train_and_register(
    engine: Engine,
    config: TrainConfig,
    artifact_dir: Path,
    progress: bool = True,
    promote: Literal["auto", "always", "never"] = "always",
) -> TrainResult:
    """Train, save the weights as a new model version, and promote it per ``promote``.

    ``auto`` activates the new version only if it beats the active version of its
    objective on the same held-out data (RMSE for rating, NDCG@10 for ranking);
    ``always`` and ``never`` do what they say.
    The version row is written first (``training``) so that a run that dies is
    visible as ``failed`` afterwards; the weights file is written atomically.
    Under ``torchrun`` every rank trains its shard and rank 0 alone evaluates,
    writes the weights and registers the version.
    """
    context = distributed.current()
    if context is not None and not context.is_main:
        # Under torchrun, the other ranks only train their shard; rank 0 does the rest.
        return TrainResult(
            0,
            train_from_database(engine, config, progress=False),
            False,
            f"rank {context.rank} trains; rank 0 registers",
        )
    fail_stale(engine)
    version_id = start_version(engine, config.model, asdict(config), config.objective)
    try:
        snapshot = data_snapshot(engine)
        learn = train_from_database(engine, config, progress)
        metadata = {
            "version_id": version_id,
            "config": asdict(config),
            "data": snapshot,
            "libraries": library_versions(),
        }
        name = f"{version_id}-{config.objective}-{config.model}.pt"
        path = learn.save(artifact_dir / "versions" / name, metadata)
        metrics = validation_metrics(learn)
        metrics["n_train"] = learn.data.dls.train.n_rows
        metrics["n_valid"] = learn.data.dls.valid.n_rows
        metrics.update(snapshot)
        promoted, reason = _decide(engine, learn, promote, metrics)
        finish_version(engine, version_id, metrics, path, activate=promoted)
    except BaseException as error:
        fail_version(engine, version_id, f"{type(error).__name__}: {error}")
        raise
    return TrainResult(version_id, learn, promoted, reason)


RATING_METRICS = ("rmse", "mae", "valid_loss", "train_loss")
RANKING_METRICS = ("ndcg", "precision", "recall", "map", "hit_rate", "coverage")


def validation_metrics(learn: CollabLearner) -> dict[str, float]:
    """The served weights' validation results: the last epoch of a rating model, the
    best-NDCG epoch (the one ranking learners keep) of a ranking model."""
    rows = learn.recorder.rows
    if learn.objective == "rating":
        return {name: rows[-1][name] for name in RATING_METRICS}
    best = max(rows, key=lambda row: row["ndcg"])
    names = (*RANKING_METRICS, "valid_loss", "train_loss")
    return {name: best[name] for name in names if name in best} | {"epoch": best["epoch"]}


def _decide(
    engine: Engine, learn: CollabLearner, promote: str, metrics: dict[str, float]
) -> tuple[bool, str]:
    if promote == "always":
        return True, "--promote always"
    if promote == "never":
        return False, "--promote never"
    comparison = compare_with_active(engine, learn)
    if comparison is None:
        return True, f"no {learn.objective} version was active"
    new, old, n_compared = comparison
    ranking = learn.objective == "ranking"
    name, unit = ("NDCG@10", "users") if ranking else ("RMSE", "held-out ratings")
    metrics[f"active_{'ndcg' if ranking else 'rmse'}_on_this_split"] = old
    if n_compared == 0:
        return True, "the active version knows none of the validation users and items"
    better = new > old if ranking else new < old
    verdict = "beats" if better else "does not beat"
    return better, (
        f"valid {name} {new:.4f} {verdict} the active version's {old:.4f} on the same "
        f"{n_compared} {unit}"
    )
