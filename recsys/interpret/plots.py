"""PNG figures of a model's interpretation (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from recsys.interpret.embeddings import ItemMap
from recsys.train.training_plots import save_figure  # also selects the headless Agg backend


def _label(row: pd.Series, width: int = 28) -> str:
    title = str(row.get("title") or row["item_id"])
    return title if len(title) <= width else title[: width - 1] + "…"


def plot_item_map(
    item_map: ItemMap,
    path: Path | str,
    x: int = 1,
    y: int = 2,
    n_points: int = 200,
    n_labels: int = 40,
) -> Path:
    """The ``n_points`` most-rated fitted items on two components, sized by popularity.

    Labels go to the most-rated items first and are skipped where they would land
    on top of one already drawn, so the titles stay readable.
    """
    coordinates = item_map.coordinates[item_map.coordinates["fitted"]]
    if "n_ratings" in coordinates:
        coordinates = coordinates.sort_values("n_ratings", ascending=False, kind="stable")
        sizes = 8 + 120 * coordinates["n_ratings"] / max(coordinates["n_ratings"].max(), 1)
    else:
        sizes = pd.Series(20.0, index=coordinates.index)
    coordinates, sizes = coordinates.head(n_points), sizes.head(n_points)
    xs, ys = coordinates[f"pc{x}"].to_numpy(), coordinates[f"pc{y}"].to_numpy()

    figure, axes = plt.subplots(figsize=(13, 10))
    axes.scatter(xs, ys, s=sizes, alpha=0.45, color="tab:blue", edgecolors="none")
    span = np.array([np.ptp(xs) or 1.0, np.ptp(ys) or 1.0])
    placed: list[np.ndarray] = []
    # The items at both ends of each axis first (they name the axes), then by popularity.
    extremes = [int(i) for i in (xs.argmin(), xs.argmax(), ys.argmin(), ys.argmax())]
    order = list(dict.fromkeys(extremes + list(range(len(xs)))))
    for position in order:
        if len(placed) >= n_labels:
            break
        row, px, py = coordinates.iloc[position], xs[position], ys[position]
        point = np.array([px, py]) / span
        # Labels are about 0.14 of the width long and 0.025 of the height tall.
        if any(abs(p[0] - point[0]) < 0.14 and abs(p[1] - point[1]) < 0.025 for p in placed):
            continue
        axes.annotate(_label(row), (px, py), fontsize=8, xytext=(3, 2), textcoords="offset points")
        placed.append(point)
    variance = item_map.explained_variance
    axes.set_xlabel(f"PC{x} ({variance[x - 1]:.0%} of variance)")
    axes.set_ylabel(f"PC{y} ({variance[y - 1]:.0%} of variance)")
    axes.set_title(f"Item embeddings: the {len(coordinates)} most-rated items")
    return save_figure(figure, Path(path))


def plot_biases(lowest: pd.DataFrame, highest: pd.DataFrame, path: Path | str) -> Path:
    """Horizontal bars: the lowest biases in red, the highest in green."""
    frame = pd.concat([lowest, highest.iloc[::-1]])
    labels = [_label(row, 40) for _, row in frame.iterrows()]
    colors = ["tab:red"] * len(lowest) + ["tab:green"] * len(highest)
    figure, axes = plt.subplots(figsize=(9, 0.32 * len(frame) + 1.2))
    axes.barh(range(len(frame)), frame["bias"], color=colors)
    axes.set_yticks(range(len(frame)), labels, fontsize=8)
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel("learned bias")
    return save_figure(figure, Path(path))
