"""PNG plots of training: losses and the learning-rate finder (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_losses(train: list[float], valid: list[tuple[float, float]], path: Path) -> Path:
    """Training loss per batch; validation loss at the end of each epoch."""
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(range(1, len(train) + 1), train, label="train", linewidth=1)
    if valid:
        axes.plot(*zip(*valid, strict=True), "o-", label="valid")
    axes.set_xlabel("batch")
    axes.set_ylabel("loss")
    axes.legend()
    return save_figure(figure, path)


def plot_lr_find(
    lrs: list[float], losses: list[float], suggestions: dict[str, float], path: Path
) -> Path:
    """Smoothed loss against a log-scaled learning rate, with the suggestions marked."""
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(lrs, losses)
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss (smoothed)")
    for name, lr in suggestions.items():
        axes.axvline(lr, linestyle="--", alpha=0.6, label=f"{name}: {lr:.2e}")
    axes.legend()
    return save_figure(figure, path)


def save_figure(figure: plt.Figure, path: Path) -> Path:
    """Write a figure as PNG (creating its folder) and free it."""
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
