"""``recsys vision``: image folders, training a CNN, predicting, and cleaning a data set."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer

from recsys.cli.console import fail, out, print_frame
from recsys.settings import get_settings

if TYPE_CHECKING:
    from recsys.vision.vision_learner import ImagePredictor

vision_app = typer.Typer(
    help="Image classification: folders of images, one sub-folder per class.",
    no_args_is_help=True,
)


def _model_path(model: Path | None) -> Path:
    return model if model is not None else get_settings().vision_model_path


def _load(model: Path | None) -> ImagePredictor:
    from recsys.vision.vision_learner import load_vision

    path = _model_path(model)
    if not path.is_file():
        raise fail(f"no vision model at {path}: run `recsys vision train` first")
    return load_vision(path)


@vision_app.command("digits")
def vision_digits(
    folder: Path = typer.Argument(..., help="Where to write the image folder."),
    size: int = typer.Option(32, min=8, max=512, help="Image side in pixels."),
) -> None:
    """Write scikit-learn's handwritten digits as an image folder (one sub-folder per digit)."""
    from recsys.vision.digits import write_digits

    n = write_digits(folder, size)
    out.print(f"{n:,} digit images ({size}x{size} PNG) written to {folder}", highlight=False)


@vision_app.command("verify")
def vision_verify(
    folder: Path = typer.Argument(..., help="An image folder."),
    delete: bool = typer.Option(False, help="Delete the broken files after listing them."),
) -> None:
    """List image files that do not decode (empty, truncated, not an image); optionally delete."""
    from recsys.vision.data import verify_images

    if not folder.is_dir():
        raise fail(f"{folder}: no such folder")
    broken = verify_images(folder, delete=delete)
    for item in broken:
        out.print(f"{item.path}: {item.reason}", highlight=False)
    verb = "deleted" if delete else "found"
    out.print(f"{len(broken)} broken image file(s) {verb}", highlight=False)


@vision_app.command("train")
def vision_train(
    folder: Path = typer.Argument(..., help="Class sub-folders (or train/ and valid/)."),
    size: int = typer.Option(64, min=8, max=1024, help="Image side in pixels after resizing."),
    mode: str = typer.Option("RGB", help="RGB, or L for grey images."),
    flip: bool = typer.Option(True, help="Random horizontal flips (off for digits and text)."),
    augment: bool = typer.Option(True, help="Random resized crops (and flips) in training."),
    arch: str = typer.Option(
        "resnet",
        help="resnet (the built-in small CNN), resnet18/resnet34/resnet50 (torchvision's "
        "layout), or a timm model name.",
    ),
    weights: Path | None = typer.Option(
        None,
        help="Pretrained weights for the body: a torchvision-format state dict (or, for a "
        "timm model, its weights file). Then the head trains first, then everything with "
        "discriminative learning rates (fine_tune).",
    ),
    epochs: int | None = typer.Option(None, min=1, help="Epochs [tuned default]."),
    lr: float | None = typer.Option(None, help="Peak one-cycle learning rate [tuned default]."),
    batch_size: int = typer.Option(64, min=2, help="Images per batch."),
    valid_pct: float = typer.Option(0.2, help="Validation share, without train/ and valid/."),
    seed: int = typer.Option(42, help="Seed of the split and the initial weights."),
    model: Path | None = typer.Option(
        None, "--model", help="Where to write the model [RECSYS_VISION_MODEL]."
    ),
    report: Path | None = typer.Option(
        None, help="Folder for the confusion matrix and top losses (PNG and CSV)."
    ),
) -> None:
    """Train a CNN on FOLDER, from scratch or fine-tuned from --weights; report validation
    accuracy; save the model."""
    import torch

    from recsys.vision.data import Augment, ImageData
    from recsys.vision.image_plots import plot_top_losses
    from recsys.vision.vision_learner import vision_learner

    if mode not in ("RGB", "L"):
        raise fail(f"--mode must be RGB or L, not {mode!r}")
    torch.manual_seed(seed)
    try:
        data = ImageData.from_folder(
            folder,
            valid_pct=valid_pct,
            seed=seed,
            size=size,
            batch_size=batch_size,
            augment=Augment(flip=flip) if augment else None,
            mode=mode,
        )
        learn = vision_learner(
            data,
            arch=arch,
            weights=weights,
            device=get_settings().device,
            progress=sys.stderr.isatty(),
        )
    except (FileNotFoundError, ValueError, ImportError) as error:
        raise fail(str(error)) from None
    if weights is None:
        learn.fit_one_cycle(epochs, lr)
    else:  # fastai's recipe for a pretrained body: the head first, then everything
        learn.fine_tune(epochs or learn.fit_defaults.n_epoch, lr or 2e-3)
    metadata = {"source": str(folder), "arch": arch, "weights": str(weights) if weights else None}
    path = learn.save(_model_path(model), metadata=metadata)
    row = learn.recorder.rows[-1]
    out.print(
        f"{len(data.train_files):,} training and {len(data.valid_files):,} validation images, "
        f"classes {', '.join(data.classes)}",
        highlight=False,
    )
    out.print(f"valid accuracy {row['accuracy']:.4f}; saved to {path}", highlight=False)
    if report is not None:
        interpretation = learn.interpret()
        interpretation.plot_confusion_matrix(report / "confusion.png")
        interpretation.top_losses().to_csv(report / "top_losses.csv", index=False)
        plot_top_losses(interpretation, data.transform, report / "top_losses.png", 16)
        out.print(f"confusion matrix and top losses in {report}", highlight=False)


@vision_app.command("predict")
def vision_predict(
    files: list[Path] = typer.Argument(..., help="Image files."),
    model: Path | None = typer.Option(None, "--model", help="[RECSYS_VISION_MODEL]"),
) -> None:
    """Class probabilities of each image, in the saved class order."""
    from PIL import UnidentifiedImageError

    predictor = _load(model)
    try:
        predictions = predictor.predict_files(files)
    except (OSError, UnidentifiedImageError) as error:
        raise fail(f"cannot read an image: {error}") from None
    print_frame(predictions, {c: "" if c in ("file", "prediction") else ".4f" for c in predictions})


@vision_app.command("clean")
def vision_clean(
    folder: Path = typer.Argument(..., help="The image folder the model was trained on."),
    model: Path | None = typer.Option(None, "--model", help="[RECSYS_VISION_MODEL]"),
    top: int = typer.Option(20, min=1, help="Top-loss files listed per split."),
    listing: Path | None = typer.Option(
        None, "--list", help="Write the listing as a CSV to fill in (action, label)."
    ),
    apply: Path | None = typer.Option(
        None, "--apply", help="Apply a filled-in listing: keep, delete, or move with a label."
    ),
    interactive: bool = typer.Option(False, help="Decide file by file at a prompt."),
    valid_pct: float = typer.Option(0.2, help="As in training, without train/ and valid/."),
    seed: int = typer.Option(42, help="As in training."),
) -> None:
    """List the highest-loss files of train and valid; then delete or relabel (move) them.

    Nothing is touched without being listed first: ``--apply`` accepts only files the
    current listing holds, and checks every decision before changing anything.
    """
    from recsys.vision.clean import (
        CleaningError,
        apply_decisions,
        check_decisions,
        top_loss_listing,
    )

    if not folder.is_dir():
        raise fail(f"{folder}: no such folder")
    predictor = _load(model)
    try:
        listed = top_loss_listing(predictor, folder, top, valid_pct, seed)
    except CleaningError as error:
        raise fail(str(error)) from None
    shown = listed.drop(columns=["action", "label"])
    print_frame(
        shown,
        {
            "file": "",
            "split": "",
            "actual": "",
            "predicted": "",
            "probability": ".3f",
            "loss": ".3f",
        },
    )
    if listing is not None:
        listed.to_csv(listing, index=False)
        out.print(f"listing written to {listing}: fill in action (keep/delete/move) and label")
    if apply is not None:
        try:
            decisions = check_decisions(
                folder, listed, pd.read_csv(apply, dtype=str, keep_default_na=False)
            )
        except (CleaningError, OSError, pd.errors.ParserError) as error:
            raise fail(f"{apply}: {error} (nothing was changed)") from None
        for line in apply_decisions(decisions):
            out.print(line, highlight=False)
    if interactive:
        chosen = []
        for row in listed.itertuples():
            answer = (
                typer.prompt(
                    f"{row.file} ({row.split}: {row.actual}, predicted {row.predicted} "
                    f"{row.probability:.2f}) [k]eep, [d]elete, [m]ove, [q]uit",
                    default="k",
                )
                .strip()
                .lower()
            )
            if answer.startswith("q"):
                break
            if answer.startswith("d"):
                chosen.append({"file": row.file, "action": "delete", "label": ""})
            elif answer.startswith("m"):
                label = typer.prompt(f"move to which class ({', '.join(predictor.classes)})")
                chosen.append({"file": row.file, "action": "move", "label": label})
        try:
            decisions = check_decisions(folder, listed, pd.DataFrame(chosen))
        except CleaningError as error:
            raise fail(f"{error} (nothing was changed)") from None
        for line in apply_decisions(decisions):
            out.print(line, highlight=False)
