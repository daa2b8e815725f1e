"""Commands that train and evaluate models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import typer

from recsys.cli.console import (
    ModelOption,
    ObjectiveOption,
    database,
    fail,
    out,
    require_schema,
)
from recsys.collab.dataset import SplitName
from recsys.jobs.training_job import (
    Promote,
    TrainConfig,
    describe_settings,
    fit_and_test,
    read_training_table,
    train_and_register,
)
from recsys.jobs.training_metrics import write_training_metrics
from recsys.settings import Settings, get_settings
from recsys.train import distributed


def _train_config(settings: Settings, split: str, **options: Any) -> TrainConfig:
    if split not in ("cutoff", "time", "temporal", "random"):
        raise fail(f"--split must be cutoff, time, temporal or random, not {split!r}")
    try:
        return TrainConfig(split=cast(SplitName, split), device=settings.device, **options)
    except ValueError as error:
        message = str(error).replace("objective ", "--objective ").replace("model ", "--model ")
        raise fail(message) from None


def train(
    objective: ObjectiveOption = "rating",
    model: ModelOption = "auto",
    epochs: int | None = typer.Option(None, min=1, help="Epochs [tuned default]."),
    lr: float | None = typer.Option(None, help="Peak one-cycle learning rate [tuned default]."),
    wd: float | None = typer.Option(None, help="Decoupled weight decay [tuned default]."),
    factors: int | None = typer.Option(None, min=1, help="Factors [tuned default]."),
    l2: float | None = typer.Option(
        None, min=0.0, help="EASE's or iALS's ridge [chosen on the hold-out]."
    ),
    alpha: float | None = typer.Option(
        None, min=0.0, help="iALS's confidence scale [chosen on the hold-out]."
    ),
    half_life: float | None = typer.Option(
        None,
        min=0.0,
        help="EASE's or iALS's recency half-life in ratings; 0: none [chosen on the hold-out].",
    ),
    members: str | None = typer.Option(
        None, help="A blend's models, comma-separated [ease,ials to rank; dot,nn to rate]."
    ),
    batch_size: int | None = typer.Option(
        None,
        min=1,
        help="Batch size [tuned default; from 1M ratings the rating dot model chooses 4096 "
        "or 16384 on the hold-out].",
    ),
    negatives: int | None = typer.Option(
        None,
        min=1,
        help="Sampled negatives per batch of the ranking dot and nn models [chosen on the "
        "hold-out: 512 or 128].",
    ),
    valid_pct: float = typer.Option(0.1, help="Fraction of ratings held out to choose on."),
    split: str = typer.Option(
        "cutoff",
        help="Hold-out: cutoff (each user's ratings after one time, else their latest), "
        "time (the latest ratings of all), temporal (each user's latest) or random.",
    ),
    refit: bool = typer.Option(
        True, help="Refit on every rating with the epochs chosen on the hold-out."
    ),
    seed: int = typer.Option(42, help="Seed of the split and the initial weights."),
    promote: str = typer.Option(
        "auto", help="auto: activate only if it beats the active version; always; never."
    ),
    metrics_file: Path | None = typer.Option(
        None, help="Also write the run's figures there for Prometheus' textfile collector."
    ),
) -> None:
    """Train a collaborative model on the database's ratings; register it, maybe promote it."""
    settings = get_settings()
    config = _train_config(
        settings,
        split,
        objective=objective,
        model=model,
        epochs=epochs,
        lr=lr,
        wd=wd,
        l2=l2,
        alpha=alpha,
        half_life=half_life,
        members=None if members is None else tuple(m.strip() for m in members.split(",")),
        n_factors=factors,
        batch_size=batch_size,
        n_negatives=negatives,
        valid_pct=valid_pct,
        refit=refit,
        seed=seed,
    )
    if promote not in ("auto", "always", "never"):
        raise fail(f"--promote must be auto, always or never, not {promote!r}")
    with database() as engine:
        require_schema(engine)
        try:
            result = train_and_register(
                engine, config, settings.artifact_dir, promote=cast(Promote, promote)
            )
        except ValueError as error:
            raise fail(str(error)) from None
    selected = result.fitted.selected
    if selected.context is not None:
        distributed.finish()
        if not selected.context.is_main:
            return
    if metrics_file is not None:
        write_training_metrics(metrics_file, result)
    metrics = selected.served_metrics()
    shown = selected.summary_metrics
    state = "is now active" if result.promoted else "was not promoted"
    refitted = (
        f"; refitted on all {result.fitted.served.data.dls.train.n_rows:,} ratings"
        if result.fitted.served is not selected
        else ""
    )
    out.print(
        f"{config.objective} model version {result.version_id} {state}: {result.reason} "
        f"(hold-out {', '.join(f'{name} {metrics[name]:.4f}' for name in shown)}{refitted})",
        highlight=False,
    )


def evaluate(
    objective: ObjectiveOption = "rating",
    model: ModelOption = "auto",
    valid_pct: float = typer.Option(0.2, help="Each user's latest fraction: the test part."),
    k: int = typer.Option(10, min=1, help="Length of the recommendation lists."),
    seed: int = typer.Option(42, help="Seed of the initial weights."),
) -> None:
    """Per-user temporal split: the pipeline of `recsys train` on the training part, then
    RMSE/MAE and top-k metrics on the test part, beside popularity."""
    from recsys.collab.evaluate import evaluate as evaluate_learner

    settings = get_settings()
    # Choose as `recsys train` does, on a hold-out of the training part; refit on all of it.
    config = _train_config(settings, TrainConfig.split, objective=objective, model=model, seed=seed)
    with database() as engine:
        require_schema(engine)
        try:
            table = read_training_table(engine, config)
            fitted, test = fit_and_test(table, config, valid_pct)
        except ValueError as error:
            raise fail(str(error)) from None
    results = evaluate_learner(fitted.served, k=k, test=test)
    names = ["rmse", "mae", "precision", "recall", "ndcg", "map", "hit_rate", "coverage"]
    headers = [f"{n}@{k}" if n in ("precision", "recall", "ndcg", "map") else n for n in names]
    chosen = describe_settings(fitted.settings)
    out.print(
        f"per-user temporal split ({valid_pct:.0%} of each user's ratings are the test part); "
        f"{config.model} chose {chosen} on a hold-out carved from the training part, "
        f"then refitted on all of it; top-{k}",
        highlight=False,
    )
    out.print(f"{'model':<16}" + "".join(f"{h:>13}" for h in headers), highlight=False)
    for model_name, metrics in results.items():
        cells = "".join(f"{metrics[n]:>13.4f}" if n in metrics else f"{'-':>13}" for n in names)
        out.print(f"{model_name:<16}{cells}", highlight=False)
    users = int(next(iter(results.values()))["users"])
    out.print(f"{users} users with a test rating >= 4 were ranked", highlight=False)
