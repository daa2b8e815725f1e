"""The training job: hyper-parameters as a frozen dataclass, and database -> trained learner."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from sqlalchemy import Engine

from recsys.collab import CollabData, CollabLearner, collab_learner
from recsys.data.ratings import read_ratings
from recsys.registry import fail_version, finish_version, start_version


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


def train_and_register(
    engine: Engine, config: TrainConfig, artifact_dir: Path, progress: bool = True
) -> tuple[int, CollabLearner]:
    """Train, save the weights as a new model version and make it the active one.

    The version row is written first (``training``) so that a run that dies is
    visible as ``failed`` afterwards; the weights file is written atomically.
    """
    version_id = start_version(engine, config.model, asdict(config))
    try:
        learn = train_from_database(engine, config, progress)
        path = learn.save(artifact_dir / "versions" / f"{version_id}-{config.model}.pt")
        last = learn.recorder.rows[-1]
        metrics = {name: last[name] for name in ("rmse", "mae", "valid_loss", "train_loss")}
        metrics["n_train"] = learn.data.dls.train.n_rows
        metrics["n_valid"] = learn.data.dls.valid.n_rows
        finish_version(engine, version_id, metrics, path)
    except BaseException as error:
        fail_version(engine, version_id, f"{type(error).__name__}: {error}")
        raise
    return version_id, learn
