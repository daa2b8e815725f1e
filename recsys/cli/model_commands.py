"""Commands for model versions: list, activate, roll back, snapshot, forget."""

from __future__ import annotations

import typer

from recsys.cli.console import ObjectiveOption, database, fail, out, require_schema
from recsys.jobs.forgetting import retrain_forgetting
from recsys.jobs.model_versions import (
    ActivationError,
    ModelVersion,
    activate,
    list_versions,
    rollback,
)
from recsys.serving.loading import rebuild_snapshots
from recsys.settings import get_settings

models_app = typer.Typer(
    help="Model versions: list, activate, roll back; rebuild serving snapshots.",
    no_args_is_help=True,
)


def _describe(version: ModelVersion) -> str:
    metrics = ", ".join(
        f"{k} {v:.4f}"
        for k, v in version.metrics.items()
        if k in ("rmse", "mae", "ndcg", "coverage") and isinstance(v, float)
    )
    marker = "*" if version.is_active else " "
    when = version.created_at.strftime("%Y-%m-%d %H:%M")
    detail = metrics or (version.error or "")
    if version.deleted_since_training:
        detail += f"  (holds {version.deleted_since_training:,} erased users/deleted items)"
    return (
        f"{marker} {version.id:>4}  {version.objective:<7} {version.kind:<4} "
        f"{version.status:<8} {when}  {detail}"
    )


@models_app.command("list")
def models_list() -> None:
    """Every version, newest first; * marks the active one of each objective."""
    with database() as engine:
        require_schema(engine)
        versions = list_versions(engine)
    if not versions:
        out.print("no model versions yet: run `recsys train`", highlight=False)
    for version in versions:
        out.print(_describe(version), highlight=False)


@models_app.command("activate")
def models_activate(version_id: int = typer.Argument(..., help="The version to serve.")) -> None:
    """Serve VERSION_ID for its objective (its weights are loaded first; a damaged file is
    refused)."""
    with database() as engine:
        require_schema(engine)
        try:
            version = activate(engine, version_id)
        except ActivationError as error:
            raise fail(f"{error}; the active version is unchanged") from None
    out.print(f"{version.objective} model version {version.id} is active", highlight=False)


@models_app.command("rollback")
def models_rollback(objective: ObjectiveOption = "rating") -> None:
    """Serve the newest ready version of OBJECTIVE older than its active one."""
    with database() as engine:
        require_schema(engine)
        try:
            version = rollback(engine, objective)
        except ActivationError as error:
            raise fail(f"{error}; the active version is unchanged") from None
    out.print(f"rolled back: {objective} model version {version.id} is active", highlight=False)


@models_app.command("snapshot")
def models_snapshot() -> None:
    """Write the serving snapshot of every active version again from the database as it
    is now, without retraining: after a big ingest, workers then start without reading
    every rating (see docs/serving.md)."""
    with database() as engine:
        require_schema(engine)
        written = rebuild_snapshots(engine)
    if not written:
        out.print("no active model versions: run `recsys train`", highlight=False)
    for version, path in written:
        out.print(f"{version.objective} model version {version.id}: {path}", highlight=False)


@models_app.command("forget")
def models_forget() -> None:
    """Train again every active version whose weights hold users erased or items deleted
    since its training, as it was asked to train, and serve the result: nothing served
    carries them any more."""
    with database() as engine:
        require_schema(engine)
        results = retrain_forgetting(engine, get_settings().artifact_dir)
    if not results:
        out.print("no active version holds an erased user or a deleted item", highlight=False)
    for result in results:
        out.print(f"model version {result.version_id} is active: {result.reason}", highlight=False)
