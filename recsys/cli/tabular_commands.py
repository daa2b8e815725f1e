"""``recsys tabular``: train a tabular model on a CSV/Parquet file, predict rows with it."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import typer

from recsys.cli.console import fail, out, print_frame
from recsys.settings import get_settings
from recsys.tabular.processing import SchemaError

tabular_app = typer.Typer(
    help="Tabular models: categorical embeddings + continuous columns.", no_args_is_help=True
)

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet}


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; a clear error for anything else."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise fail(f"{path}: expected a .csv or .parquet file")
    if not path.is_file():
        raise fail(f"{path}: no such file")
    try:
        return reader(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise fail(f"{path}: cannot read it: {error}") from None


def _names(values: list[str] | None) -> list[str] | None:
    """``--cat a --cat b`` and ``--cat a,b`` both give ``[a, b]``."""
    if values is None:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _model_path(model: Path | None) -> Path:
    return model if model is not None else get_settings().tabular_model_path


@tabular_app.command("train")
def tabular_train(
    file: Path = typer.Argument(..., help="Training rows: a .csv or .parquet file."),
    target: str = typer.Option(..., "--target", help="The column to predict."),
    cat: list[str] | None = typer.Option(
        None, help="Categorical columns (repeat or comma-separate) [the non-numeric ones]."
    ),
    cont: list[str] | None = typer.Option(
        None, help="Continuous columns (repeat or comma-separate) [the numeric ones]."
    ),
    regression: bool = typer.Option(
        False, help="Predict a number (MSE) instead of a class [classes unless a float target]."
    ),
    epochs: int | None = typer.Option(None, min=1, help="Epochs [tuned default]."),
    lr: float | None = typer.Option(None, help="Peak one-cycle learning rate [tuned default]."),
    valid_pct: float = typer.Option(0.2, help="Fraction of rows held out for validation."),
    seed: int = typer.Option(42, help="Seed of the split and the initial weights."),
    model: Path | None = typer.Option(
        None, "--model", help="Where to write the model [RECSYS_TABULAR_MODEL]."
    ),
) -> None:
    """Fit pre-processing and a TabularModel on FILE; report validation metrics; save."""
    import torch

    from recsys.tabular.tabular_learner import TabularData, tabular_learner

    frame = read_table(file)
    if target not in frame.columns:
        raise fail(f"{file}: no column {target!r} (columns: {', '.join(map(str, frame.columns))})")
    torch.manual_seed(seed)
    try:
        data = TabularData.from_df(
            frame,
            target,
            cat_names=_names(cat),
            cont_names=_names(cont),
            valid_pct=valid_pct,
            seed=seed,
            classification=False if regression else None,
        )
    except (SchemaError, ValueError) as error:
        raise fail(f"{file}: {error}") from None
    learn = tabular_learner(data, device=get_settings().device, progress=sys.stderr.isatty())
    learn.fit_one_cycle(epochs, lr)
    path = learn.save(_model_path(model), metadata={"source": str(file), "target": target})
    hidden = ("epoch", "time", "train_loss")
    metrics = {k: v for k, v in learn.recorder.rows[-1].items() if k not in hidden}
    shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    processor = data.processor
    kind = f"classes {', '.join(processor.classes)}" if processor.classification else "regression"
    out.print(
        f"trained on {len(frame):,} rows of {file} ({kind}); categorical: "
        f"{', '.join(processor.cat_names) or '-'}; continuous: "
        f"{', '.join(processor.cont_names) or '-'}",
        highlight=False,
    )
    out.print(f"validation: {shown}; saved to {path}", highlight=False)


@tabular_app.command("predict")
def tabular_predict(
    file: Path = typer.Argument(..., help="Rows to predict: a .csv or .parquet file."),
    model: Path | None = typer.Option(
        None, "--model", help="A model from `recsys tabular train` [RECSYS_TABULAR_MODEL]."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Write the predictions as CSV here instead of printing them."
    ),
) -> None:
    """Predict every row of FILE: the prediction, and class probabilities when classifying."""
    from recsys.tabular.tabular_learner import load_tabular

    path = _model_path(model)
    if not path.is_file():
        raise fail(f"no tabular model at {path}: run `recsys tabular train` first")
    frame = read_table(file)
    try:
        predictions = load_tabular(path).predict(frame)
    except SchemaError as error:
        raise fail(f"{file}: {error}") from None
    if output is not None:
        predictions.to_csv(output, index=False)
        out.print(f"{len(predictions):,} predictions written to {output}", highlight=False)
        return
    shown = predictions.reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype
    print_frame(shown, {name: ".4f" if numeric(shown[name]) else "" for name in shown.columns})


@tabular_app.command("sample")
def tabular_sample(
    path: Path = typer.Argument(..., help="Where to write it: a .csv or .parquet file."),
) -> None:
    """Write the bundled census-income data (48,842 rows; target ``income``) to try with."""
    from recsys.tabular.tabular_learner import ADULT

    frame = pd.read_parquet(ADULT)
    if path.suffix.lower() not in READERS:
        raise fail(f"{path}: expected a .csv or .parquet file")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    out.print(f"{len(frame):,} census-income rows written to {path}", highlight=False)
