"""Forgetting now: training again every active version whose weights still hold users
erased or items deleted after its training data was read.

Until then such a version never answers with them (recsys.serving.loading forgets them
at load and the workers follow each deletion), but its weights keep what it learned
from them; the registry says which versions do (``deleted_since_training``).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from recsys.jobs.model_versions import ModelVersion, list_versions
from recsys.jobs.training_job import TrainConfig, TrainResult, train_and_register


def carrying_deletions(engine: Engine) -> list[ModelVersion]:
    """The active versions trained before an erasure or an item deletion."""
    return [v for v in list_versions(engine) if v.is_active and v.deleted_since_training]


def requested_config(version: ModelVersion) -> TrainConfig:
    """The settings ``version`` was asked to train with (its choices on the hold-out are
    made again, on the data as it is now)."""
    known = {f.name for f in fields(TrainConfig)}
    given: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in version.hyperparameters.items()
        if k in known
    }
    return TrainConfig(**given)


def retrain_forgetting(
    engine: Engine, artifact_dir: Path, progress: bool = True
) -> list[TrainResult]:
    """Train each version of :func:`carrying_deletions` again, as it was asked to train,
    on the database as it is now, and serve the result (no gate: forgetting comes first).
    The older versions stay listed, and a rollback to one still never answers with what
    was deleted."""
    return [
        train_and_register(engine, requested_config(v), artifact_dir, progress, promote="always")
        for v in carrying_deletions(engine)
    ]
