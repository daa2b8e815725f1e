"""Commands for model versions: list, activate, roll back."""

from __future__ import annotations

import typer

from recsys.cli.common import database, fail, out, require_schema
from recsys.registry import ActivationError, ModelVersion, activate, list_versions, rollback

models_app = typer.Typer(help="Model versions: list, activate, roll back.", no_args_is_help=True)


def _describe(version: ModelVersion) -> str:
    metrics = ", ".join(
        f"{k} {v:.4f}"
        for k, v in version.metrics.items()
        if k in ("rmse", "mae") and isinstance(v, float)
    )
    marker = "*" if version.is_active else " "
    when = version.created_at.strftime("%Y-%m-%d %H:%M")
    detail = metrics or (version.error or "")
    return f"{marker} {version.id:>4}  {version.kind:<4} {version.status:<8} {when}  {detail}"


@models_app.command("list")
def models_list() -> None:
    """Every version, newest first; * marks the active one."""
    with database() as engine:
        require_schema(engine)
        versions = list_versions(engine)
    if not versions:
        out.print("no model versions yet: run `recsys train`", highlight=False)
    for version in versions:
        out.print(_describe(version), highlight=False)


@models_app.command("activate")
def models_activate(version_id: int = typer.Argument(..., help="The version to serve.")) -> None:
    """Serve VERSION_ID (its weights are loaded first; a damaged file is refused)."""
    with database() as engine:
        require_schema(engine)
        try:
            version = activate(engine, version_id)
        except ActivationError as error:
            raise fail(f"{error}; the active version is unchanged") from None
    out.print(f"model version {version.id} is active", highlight=False)


@models_app.command("rollback")
def models_rollback() -> None:
    """Serve the newest ready version older than the active one."""
    with database() as engine:
        require_schema(engine)
        try:
            version = rollback(engine)
        except ActivationError as error:
            raise fail(f"{error}; the active version is unchanged") from None
    out.print(f"rolled back: model version {version.id} is active", highlight=False)
