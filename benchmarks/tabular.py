"""Tabular figures on the bundled census-income data: our learner beside a boosted tree.

    python benchmarks/tabular.py                 # the table (CPU)
    python benchmarks/tabular.py --device cuda   # the neural rows on a GPU
    python benchmarks/tabular.py --out DIR       # also the confusion matrix and top losses

Task: predict ``income`` (<=50K / >50K). Split: random 80/20 with seed 42
(TabularData.from_df(valid_pct=0.2, seed=42); the tree gets the very same rows).
Every figure is validation accuracy; seconds are training time only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from recsys.data.splits import random_split
from recsys.tabular.tabular_learner import ADULT, TabularData, tabular_learner

TEXT_COLUMNS = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native-country",
]
NUMBERS = ["age", "fnlwgt", "educational-num", "capital-gain", "capital-loss", "hours-per-week"]
# Capital gains and losses are mostly zero with a long tail: as categories as well as
# numbers, the network sees thresholds a tree would find by itself.
CAPITAL = ["capital-gain", "capital-loss"]


def neural(
    frame: pd.DataFrame, cats: list[str], device: str, seed: int, out: Path | None
) -> tuple[float, float]:
    torch.manual_seed(seed)
    data = TabularData.from_df(frame, "income", cat_names=cats, cont_names=NUMBERS)
    learn = tabular_learner(data, progress=False, device=device)
    started = time.perf_counter()
    learn.fit_one_cycle()
    if learn.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if out is not None:
        interpretation = learn.interpret()
        interpretation.plot_confusion_matrix(out / "tabular_confusion.png")
        interpretation.top_losses(20).to_csv(out / "tabular_top_losses.csv", index=False)
    return learn.recorder.rows[-1]["accuracy"], seconds


def boosted_tree(frame: pd.DataFrame) -> tuple[float, float]:
    split = random_split(len(frame), 0.2, 42)
    features = frame[TEXT_COLUMNS + NUMBERS].astype(dict.fromkeys(TEXT_COLUMNS, "category"))
    train, valid = features.iloc[split.train], features.iloc[split.valid]
    target = frame["income"]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    started = time.perf_counter()
    model.fit(train, target.iloc[split.train])
    seconds = time.perf_counter() - started
    return float(model.score(valid, target.iloc[split.valid])), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="folder for the interpretation outputs")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    frame = pd.read_parquet(ADULT)
    print(f"census income: {len(frame):,} rows, random 80/20 split (seed 42), device {args.device}")
    print(f"{'model':<58} {'accuracy':>9} {'train s':>8}")
    rows = [
        ("tabular_learner, numbers continuous only, seed 0", TEXT_COLUMNS, 0),
        *(
            (
                f"tabular_learner, capital columns also categorical, seed {s}",
                TEXT_COLUMNS + CAPITAL,
                s,
            )
            for s in (0, 1, 2)
        ),
    ]
    for name, cats, seed in rows:
        out = args.out if seed == 0 and cats != TEXT_COLUMNS else None
        accuracy, seconds = neural(frame, cats, args.device, seed, out)
        print(f"{name:<58} {accuracy:>9.4f} {seconds:>8.2f}", flush=True)
    accuracy, seconds = boosted_tree(frame)
    name = "sklearn HistGradientBoostingClassifier (defaults)"
    print(f"{name:<58} {accuracy:>9.4f} {seconds:>8.2f}")
    if args.out is not None:
        print(f"confusion matrix and top losses (capital columns, seed 0) in {args.out}")


if __name__ == "__main__":
    main()
