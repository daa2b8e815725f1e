"""Classification interpretation: confusion, most confused pairs, top losses."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from recsys.interpret.classification import ClassificationInterpretation


def interpretation() -> ClassificationInterpretation:
    # Rows: cat→cat (sure), cat→dog (very wrong), dog→dog, bird→dog, bird→dog, bird→bird.
    logits = torch.tensor(
        [
            [4.0, 0.0, 0.0],
            [0.0, 5.0, 0.0],
            [0.0, 3.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 2.0, 0.0],
            [0.0, 0.0, 2.0],
        ]
    )
    targets = torch.tensor([0, 0, 1, 2, 2, 2])
    items = ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png"]
    return ClassificationInterpretation.from_predictions(
        logits, targets, ["cat", "dog", "bird"], items
    )


def test_confusion_matrix_counts_actual_rows_against_predicted_columns() -> None:
    matrix = interpretation().confusion_matrix()
    assert matrix.loc["cat"].tolist() == [1, 1, 0]
    assert matrix.loc["dog"].tolist() == [0, 1, 0]
    assert matrix.loc["bird"].tolist() == [0, 2, 1]


def test_most_confused_lists_off_diagonal_pairs_most_first() -> None:
    pairs = interpretation().most_confused()
    assert pairs[["actual", "predicted", "count"]].values.tolist() == [
        ["bird", "dog", 2],
        ["cat", "dog", 1],
    ]
    assert len(interpretation().most_confused(min_count=2)) == 1


def test_top_losses_put_the_most_confident_mistake_first() -> None:
    top = interpretation().top_losses(3)
    assert top["item"].tolist() == ["b.png", "e.png", "d.png"]
    first = top.iloc[0]
    assert (first["actual"], first["predicted"]) == ("cat", "dog")
    expected = np.exp(5.0) / (np.exp(5.0) + 2)
    assert np.isclose(first["probability"], expected)
    assert np.isclose(first["loss"], -np.log(1 / (np.exp(5.0) + 2)), atol=1e-5)


def test_the_confusion_plot_is_a_png(tmp_path) -> None:
    path = interpretation().plot_confusion_matrix(tmp_path / "plots" / "confusion.png", True)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 200
