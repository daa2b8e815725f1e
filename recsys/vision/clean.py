"""Cleaning an image folder: list the files a model finds hardest, then keep, delete or relabel.

The listing comes first and says what each file is; decisions (a CSV, or answers
at a prompt) are then checked as a whole -- every file listed, inside the
folder, every action known -- before any file is touched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.splits import random_split
from recsys.vision.data import labelled_files
from recsys.vision.vision_learner import ImagePredictor

ACTIONS = ("keep", "delete", "move")


class CleaningError(ValueError):
    """A decision that cannot be applied; nothing was changed."""


def folder_files(folder: Path, valid_pct: float = 0.2, seed: int = 42) -> pd.DataFrame:
    """Every labelled image: ``file``, ``split`` (train/valid) and ``actual`` (its folder)."""
    if (folder / "train").is_dir() and (folder / "valid").is_dir():
        parts = []
        for split in ("train", "valid"):
            files, labels, classes = labelled_files(folder / split)
            parts.append(
                pd.DataFrame(
                    {"file": files, "split": split, "actual": [classes[i] for i in labels]}
                )
            )
        return pd.concat(parts, ignore_index=True)
    files, labels, classes = labelled_files(folder)
    assigned = np.full(len(files), "train", dtype=object)
    assigned[random_split(len(files), valid_pct, seed).valid] = "valid"
    return pd.DataFrame({"file": files, "split": assigned, "actual": [classes[i] for i in labels]})


def top_loss_listing(
    predictor: ImagePredictor, folder: Path, k: int = 20, valid_pct: float = 0.2, seed: int = 42
) -> pd.DataFrame:
    """The ``k`` highest-loss files of each split, worst first: file, split, actual,
    predicted, probability (of the prediction), loss, and an empty ``action``/``label``
    to fill in (keep, delete, or move with a label)."""
    files = folder_files(folder, valid_pct, seed)
    unknown = sorted(set(files["actual"]) - set(predictor.classes))
    if unknown:
        raise CleaningError(f"{folder}: classes the model does not know: {', '.join(unknown)}")
    predicted = predictor.predict_files(list(files["file"]))
    true_index = files["actual"].map({c: i for i, c in enumerate(predictor.classes)})
    probabilities = predicted[predictor.classes].to_numpy()
    true_probability = probabilities[np.arange(len(files)), true_index.to_numpy()]
    listing = files.assign(
        predicted=predicted["prediction"],
        probability=predicted["probability"],
        loss=-np.log(np.clip(true_probability, 1e-12, None)),
    )
    listing = listing.sort_values("loss", ascending=False, kind="stable")
    listing = listing.groupby("split", sort=False).head(k).reset_index(drop=True)
    listing["file"] = listing["file"].map(str)
    return listing.assign(action="", label="")


@dataclass(frozen=True)
class Decision:
    file: Path
    action: str  # keep, delete or move
    label: str | None = None  # the class folder to move to


def check_decisions(folder: Path, listing: pd.DataFrame, decisions: pd.DataFrame) -> list[Decision]:
    """Validate every decision row against the listing; CleaningError names the first bad one."""
    listed = {Path(f).resolve() for f in listing["file"]}
    root = folder.resolve()
    checked = []
    for number, row in enumerate(decisions.to_dict("records"), start=2):  # CSV line numbers
        where = f"decisions line {number}"
        action = _cell(row.get("action")).lower() or "keep"
        if action not in ACTIONS:
            raise CleaningError(f"{where}: action {action!r} is not one of {', '.join(ACTIONS)}")
        file = Path(_cell(row.get("file"))).resolve()
        if action == "keep":
            continue
        if root not in file.parents:
            raise CleaningError(f"{where}: {file} is not inside {folder}")
        if file not in listed:
            raise CleaningError(f"{where}: {file} was not listed; list the top losses first")
        if not file.is_file():
            raise CleaningError(f"{where}: {file} does not exist (any more)")
        label = _cell(row.get("label")) or None
        if action == "move":
            if label is None or "/" in label or "\\" in label or label in (".", ".."):
                raise CleaningError(f"{where}: move needs a class name in the label column")
            if label == file.parent.name:
                raise CleaningError(f"{where}: {file.name} is already in {label!r}")
            if (file.parent.parent / label / file.name).exists():
                raise CleaningError(f"{where}: {label}/{file.name} exists already")
        checked.append(Decision(file, action, label))
    return checked


def _cell(value: object) -> str:
    """A CSV cell as stripped text; blank for a missing value."""
    return (
        ""
        if value is None or (isinstance(value, float) and np.isnan(value))
        else str(value).strip()
    )


def apply_decisions(decisions: list[Decision]) -> list[str]:
    """Delete or move (into the sibling class folder ``label``); one line per change."""
    done = []
    for decision in decisions:
        if decision.action == "delete":
            decision.file.unlink()
            done.append(f"deleted {decision.file}")
        else:
            target = decision.file.parent.parent / str(decision.label) / decision.file.name
            target.parent.mkdir(exist_ok=True)
            shutil.move(decision.file, target)
            done.append(f"moved {decision.file} -> {target}")
    return done
