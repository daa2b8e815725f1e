"""A training run's figures for Prometheus' node-exporter textfile collector.

A batch job is not scraped while it runs; the textfile collector reads files a
job leaves behind (``--collector.textfile.directory``). `recsys train
--metrics-file DIR/recsys_train.prom` writes one, atomically, so a scrape never
sees half of it. The same figures are stored with the model version.
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from recsys.jobs.training_job import TrainResult


def write_training_metrics(path: Path, result: TrainResult) -> None:
    """Duration, ratings, hold-out metrics and the verdict of ``result``, labelled with
    the objective (one file per objective keeps both)."""
    config = result.fitted.config
    labels = {"objective": config.objective, "model": config.model}
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, value: float, **extra: str) -> None:
        metric = Gauge(name, documentation, [*labels, *extra], registry=registry)
        metric.labels(**labels, **extra).set(value)

    gauge(
        "recsys_training_last_success_timestamp_seconds",
        "When the last training run ended.",
        time.time(),
    )
    gauge("recsys_training_version", "Model version the run registered.", result.version_id)
    gauge("recsys_training_promoted", "1 when the run's version became active.", result.promoted)
    numbers = {
        name: float(value)
        for name, value in result.metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    gauge(
        "recsys_training_duration_seconds",
        "Wall time of the run: read, select, refit, save, gate.",
        numbers.pop("duration_seconds", 0.0),
    )
    gauge("recsys_training_ratings", "Ratings the run read.", numbers.pop("n_ratings", 0.0))
    metric = Gauge(
        "recsys_training_metric",
        "The run's hold-out metrics and settings, by name.",
        [*labels, "name"],
        registry=registry,
    )
    for name, value in sorted(numbers.items()):
        metric.labels(**labels, name=name).set(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
