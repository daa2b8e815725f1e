"""What a classifier gets wrong: confusion matrix, most confused pairs, top losses.

Shared by the tabular and vision learners; ``items`` name the validation rows in
their own terms (a row label of the frame, an image file), so the worst cases can
be looked up, fixed or removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from recsys.train.learner import Learner


@dataclass
class ClassificationInterpretation:
    """Class probabilities and true classes of a validation set, with what each row is."""

    classes: list[str]
    probabilities: np.ndarray  # (rows, classes)
    targets: np.ndarray  # (rows,) class indices
    items: list[Any]  # one per row

    @classmethod
    def from_predictions(
        cls,
        logits: torch.Tensor,
        targets: torch.Tensor,
        classes: Sequence[str],
        items: Sequence[Any] | None = None,
    ) -> ClassificationInterpretation:
        probabilities = torch.softmax(logits.float(), dim=1).cpu().numpy()
        target_array = targets.cpu().numpy().astype(np.int64)
        items = list(range(len(target_array))) if items is None else list(items)
        if len(items) != len(target_array):
            raise ValueError(f"{len(items)} items for {len(target_array)} predictions")
        return cls(list(classes), probabilities, target_array, items)

    @classmethod
    def from_learner(
        cls, learn: Learner, classes: Sequence[str], items: Sequence[Any] | None = None
    ) -> ClassificationInterpretation:
        """Predict the learner's validation set (in its order, which ``items`` follows)."""
        logits, targets = learn.get_preds()
        return cls.from_predictions(logits, targets, classes, items)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def losses(self) -> np.ndarray:
        """Cross-entropy of each row: minus the log probability of its true class."""
        true = self.probabilities[np.arange(len(self.targets)), self.targets]
        return -np.log(np.clip(true, 1e-12, None))

    def confusion_matrix(self) -> pd.DataFrame:
        """Counts with actual classes as rows and predicted classes as columns."""
        n = len(self.classes)
        pairs = np.asarray(self.targets) * n + np.asarray(self.predicted)
        counts = np.bincount(pairs, minlength=n * n).reshape(n, n)
        index = pd.Index(self.classes, name="actual")
        return pd.DataFrame(counts, index=index, columns=pd.Index(self.classes, name="predicted"))

    def plot_confusion_matrix(self, path: Path | str, normalize: bool = False) -> Path:
        """The confusion matrix as a PNG; ``normalize`` shows each actual row as fractions."""
        # Imported here: a serving worker loads classifiers but never plots, and these
        # two cost it tens of megabytes each.
        from sklearn.metrics import ConfusionMatrixDisplay

        from recsys.train.training_plots import save_figure

        counts = self.confusion_matrix().to_numpy()
        if normalize:
            counts = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        display = ConfusionMatrixDisplay(counts, display_labels=self.classes)
        size = max(4.0, 0.6 * len(self.classes) + 2)
        display.plot(values_format=".2f" if normalize else "d", colorbar=False, cmap="Blues")
        display.figure_.set_size_inches(size, size)
        display.ax_.set_xlabel("predicted")
        display.ax_.set_ylabel("actual")
        return save_figure(display.figure_, Path(path))

    def most_confused(self, min_count: int = 1) -> pd.DataFrame:
        """Off-diagonal (actual, predicted) pairs seen at least ``min_count`` times, most first."""
        stacked = self.confusion_matrix().stack().rename("count").reset_index()
        pairs = stacked[
            (stacked["actual"] != stacked["predicted"]) & (stacked["count"] >= min_count)
        ]
        return pairs.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)

    def top_losses(self, k: int | None = None) -> pd.DataFrame:
        """Rows by loss, worst first: item, actual, predicted, probability of the prediction."""
        predicted = self.predicted
        frame = pd.DataFrame(
            {
                "item": self.items,
                "actual": [self.classes[i] for i in self.targets],
                "predicted": [self.classes[i] for i in predicted],
                "probability": self.probabilities[np.arange(len(predicted)), predicted],
                "loss": self.losses,
            }
        )
        frame = frame.sort_values("loss", ascending=False, kind="stable").reset_index(drop=True)
        return frame if k is None else frame.head(k)
