"""Pictures of what a classifier gets wrong: the top-loss images with their labels."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from recsys.interpret.classification import ClassificationInterpretation
from recsys.train.training_plots import save_figure  # also selects the headless Agg backend
from recsys.vision.data import ImageTransform, open_image


def plot_top_losses(
    interpretation: ClassificationInterpretation,
    transform: ImageTransform,
    path: Path | str,
    k: int = 9,
) -> Path:
    """The ``k`` worst images in a grid, titled actual / predicted / probability / loss."""
    top = interpretation.top_losses(k)
    columns = max(1, math.ceil(math.sqrt(len(top))))
    rows = max(1, math.ceil(len(top) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, top.itertuples(), strict=False):
        with open_image(Path(row.item)) as image:
            pixels = np.asarray(transform.resize(image))
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None)
        ax.set_title(
            f"{row.actual} / {row.predicted}\n{row.probability:.2f} / {row.loss:.2f}", fontsize=9
        )
    figure.suptitle("actual / predicted, probability / loss", fontsize=10)
    return save_figure(figure, Path(path))
