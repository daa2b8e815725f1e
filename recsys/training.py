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
from recsys.data.ratings import read_ratings
from recsys.db.tables import ratings
from recsys.registry import (
    active_version,
    fail_stale,
    fail_version,
    finish_version,
    start_version,
)
from recsys.train import distributed


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; None means the model's tuned default."""

    model: Literal["dot", "nn"] = "dot"
    n_factors: int | None = None
    layers: tuple[int, ...] | None = None
    epochs: int | None = None
    lr: float | None = None
    wd: float | None = None
    batch_size: int | None = None  # None: 512, or 4096 from 1M training ratings
    valid_pct: float = 0.2
    split: Literal["random", "temporal"] = "random"
    seed: int = 42
    y_range: tuple[float, float] = (0.0, 5.5)
    device: str = "auto"


def train_from_database(
    engine: Engine, config: TrainConfig, progress: bool = True
) -> CollabLearner:
    """Read all ratings, split them, and fit the configured model with one-cycle."""
    table = read_ratings(engine)
    if len(table) == 0:
        raise ValueError("the database has no ratings: load some first (recsys load / ingest)")
    torch.manual_seed(config.seed)
    data = CollabData.from_table(
        table,
        valid_pct=config.valid_pct,
        seed=config.seed,
        split=config.split,
        batch_size=config.batch_size,
    )
    learn = collab_learner(
        data,
        n_factors=config.n_factors,
        y_range=config.y_range,
        use_nn=config.model == "nn",
        layers=config.layers,
        device=config.device,
        progress=progress,
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
    """RMSE of the new model and of the active one on the new validation rows both can score.

    Returns None when no version is active. The active model is re-evaluated on
    today's held-out ratings, so the comparison is like for like.
    """
    version = active_version(engine)
    if version is None:
        return None
    active = load_recommender(version.artifact_path)
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


def train_and_register(
    engine: Engine,
    config: TrainConfig,
    artifact_dir: Path,
    progress: bool = True,
    promote: Literal["auto", "always", "never"] = "always",
) -> TrainResult:
    """Train, save the weights as a new model version, and promote it per ``promote``.

    ``auto`` activates the new version only if its validation RMSE beats the active
    version's on the same held-out ratings; ``always`` and ``never`` do what they say.
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
    version_id = start_version(engine, config.model, asdict(config))
    try:
        snapshot = data_snapshot(engine)
        learn = train_from_database(engine, config, progress)
        metadata = {
            "version_id": version_id,
            "config": asdict(config),
            "data": snapshot,
            "libraries": library_versions(),
        }
        path = learn.save(artifact_dir / "versions" / f"{version_id}-{config.model}.pt", metadata)
        last = learn.recorder.rows[-1]
        metrics = {name: last[name] for name in ("rmse", "mae", "valid_loss", "train_loss")}
        metrics["n_train"] = learn.data.dls.train.n_rows
        metrics["n_valid"] = learn.data.dls.valid.n_rows
        metrics.update(snapshot)
        promoted, reason = _decide(engine, learn, promote, metrics)
        finish_version(engine, version_id, metrics, path, activate=promoted)
    except BaseException as error:
        fail_version(engine, version_id, f"{type(error).__name__}: {error}")
        raise
    return TrainResult(version_id, learn, promoted, reason)


def _decide(
    engine: Engine, learn: CollabLearner, promote: str, metrics: dict[str, float]
) -> tuple[bool, str]:
    if promote == "always":
        return True, "--promote always"
    if promote == "never":
        return False, "--promote never"
    comparison = compare_with_active(engine, learn)
    if comparison is None:
        return True, "no version was active"
    new, old, n_rows = comparison
    metrics["active_rmse_on_this_split"] = old
    if n_rows == 0:
        return True, "the active version knows none of the validation users and items"
    verdict = "beats" if new < old else "does not beat"
    return new < old, (
        f"valid RMSE {new:.4f} {verdict} the active version's {old:.4f} on the same "
        f"{n_rows} held-out ratings"
    )
