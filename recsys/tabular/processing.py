"""Pre-processing for tabular models, fitted on the training rows only and saved with the model.

Continuous columns: missing values become the training median, with a
``{column}_na`` flag column (a categorical) when the training rows had any
missing; then they are normalised with the training mean and standard
deviation. Categorical columns: each value becomes an index, with index 0 for
values never seen in training ("unknown") and index 1 for missing values, so
prediction never fails on a new category. The state is plain data (lists,
dicts, floats), so it travels in a ``weights_only`` torch file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

UNKNOWN, MISSING = 0, 1  # reserved category indices
RESERVED = ("#unknown", "#missing")


class SchemaError(ValueError):
    """A frame lacks a column the model needs, or has one of the wrong kind."""


@dataclass
class TabularProcessor:
    """Fill missing values, categorify, normalise; fit once, apply anywhere."""

    cat_names: list[str]
    cont_names: list[str]
    y_name: str
    classification: bool
    categories: dict[str, list[str]] = field(default_factory=dict)  # after the reserved two
    medians: dict[str, float] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    na_flags: list[str] = field(default_factory=list)  # continuous columns given a flag
    classes: list[str] = field(default_factory=list)  # classification targets, in index order

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        cat_names: Sequence[str],
        cont_names: Sequence[str],
        y_name: str,
        classification: bool | None = None,
    ) -> TabularProcessor:
        """Learn the transforms from the training rows ``frame``.

        ``classification`` defaults to True unless the target is a float column.
        """
        _require(frame, [*cat_names, *cont_names, y_name])
        if classification is None:
            classification = not pd.api.types.is_float_dtype(frame[y_name])
        processor = cls(list(cat_names), list(cont_names), y_name, classification)
        for name in cat_names:
            values = _category_strings(frame[name]).dropna().unique()
            processor.categories[name] = sorted(values.tolist())
        for name in cont_names:
            column = _numeric(frame, name)
            median = float(column.median()) if column.notna().any() else 0.0
            processor.medians[name] = median
            if column.isna().any():
                processor.na_flags.append(name)
            filled = column.fillna(median)
            processor.means[name] = float(filled.mean())
            processor.stds[name] = float(filled.std(ddof=0)) or 1.0
        if classification:
            processor.classes = sorted(frame[y_name].dropna().astype(str).unique().tolist())
        return processor

    @property
    def all_cat_names(self) -> list[str]:
        """Categorical inputs as the model sees them: the columns, then the missing flags."""
        return self.cat_names + [f"{name}_na" for name in self.na_flags]

    @property
    def cardinalities(self) -> list[int]:
        """Categories per model input, the reserved ones included."""
        columns = [len(RESERVED) + len(self.categories[n]) for n in self.cat_names]
        return columns + [2] * len(self.na_flags)

    def categorical(self, frame: pd.DataFrame) -> torch.Tensor:
        """(rows, len(all_cat_names)) int64 indices."""
        _require(frame, self.cat_names + self.cont_names)
        columns = []
        for name in self.cat_names:
            lookup = {value: i + len(RESERVED) for i, value in enumerate(self.categories[name])}
            column = frame[name]
            codes = _category_strings(column).map(lookup).fillna(UNKNOWN)
            codes = codes.to_numpy(np.int64, copy=True)
            codes[column.isna().to_numpy()] = MISSING
            columns.append(codes)
        for name in self.na_flags:  # 0: the value was there, 1: it was missing
            columns.append(_numeric(frame, name).isna().to_numpy().astype(np.int64))
        if not columns:
            return torch.zeros(len(frame), 0, dtype=torch.long)
        return torch.from_numpy(np.stack(columns, axis=1))

    def continuous(self, frame: pd.DataFrame) -> torch.Tensor:
        """(rows, len(cont_names)) float32: filled with the median, then normalised."""
        _require(frame, self.cont_names)
        columns = [
            ((_numeric(frame, n).fillna(self.medians[n]) - self.means[n]) / self.stds[n]).to_numpy(
                np.float32
            )
            for n in self.cont_names
        ]
        if not columns:
            return torch.zeros(len(frame), 0)
        return torch.from_numpy(np.stack(columns, axis=1))

    def target(self, frame: pd.DataFrame) -> torch.Tensor:
        """Class indices (classification) or float32 values (regression)."""
        _require(frame, [self.y_name])
        column = frame[self.y_name]
        if column.isna().any():
            row = int(np.flatnonzero(column.isna().to_numpy())[0])
            raise SchemaError(f"target column {self.y_name!r} is missing in row {row + 1}")
        if not self.classification:
            return torch.tensor(_numeric(frame, self.y_name).to_numpy(np.float32))
        lookup = {value: i for i, value in enumerate(self.classes)}
        codes = column.astype(str).map(lookup)
        if codes.isna().any():
            row = int(np.flatnonzero(codes.isna().to_numpy())[0])
            raise SchemaError(
                f"row {row + 1}: target {column.iloc[row]!r} is not one of the training classes "
                f"{', '.join(self.classes)}"
            )
        return torch.tensor(codes.to_numpy(np.int64))

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularProcessor:
        return cls(**state)


def _require(frame: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise SchemaError(f"missing column(s): {', '.join(missing)}")


def _category_strings(column: pd.Series) -> pd.Series:
    """Values as category labels; whole floats as integers, so 3.0 (JSON, a column with
    gaps) and 3 are one category."""

    def label(value: object) -> str:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    return column.map(label, na_action="ignore")


def _numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    """A continuous column as floats (missing: NaN); text, booleans, infinities and
    numbers too large for a float are a SchemaError naming the row."""
    column = frame[name]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(np.float64)
    else:
        values = pd.Series(
            [_number(name, row, value) for row, value in enumerate(column.tolist())],
            index=column.index,
            dtype=np.float64,
        )
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise SchemaError(f"column {name!r} is continuous, but row {row + 1} holds infinity")
    return values


def _number(name: str, row: int, value: object) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    problem = f"column {name!r} is continuous, but row {row + 1} holds {value!r:.80}"
    if isinstance(value, bool | np.bool_):
        raise SchemaError(problem)
    try:
        return float(value)  # type: ignore[arg-type]  # a number or numeric text, checked above
    except OverflowError:
        raise SchemaError(
            f"column {name!r} is continuous, but row {row + 1} holds a number too large"
        ) from None
    except (TypeError, ValueError):
        raise SchemaError(problem) from None
