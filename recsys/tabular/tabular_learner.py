"""Tabular learning on the shared Learner: data from a frame or a query, answers by column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sqlalchemy import Engine, text

from recsys.artifacts import load_artifact
from recsys.data.loaders import DataLoaders, TensorBatches
from recsys.data.splits import random_split
from recsys.interpret.classification import ClassificationInterpretation
from recsys.models.tabular_model import TabularModel, TabularModelConfig
from recsys.tabular.processing import TabularProcessor
from recsys.train.learner import FitDefaults, Learner
from recsys.train.metrics import accuracy, mae, rmse

ADULT = Path(str(files("recsys") / "bundled" / "adult" / "adult.parquet"))  # census income

# Chosen with `benchmarks/tabular.py` on the bundled census-income data.
TABULAR_DEFAULTS = FitDefaults(n_epoch=5, lr_max=1e-2, wd=0.1)


@dataclass
class TabularData:
    """Processed training and validation tensors, and the processor that made them."""

    dls: DataLoaders[TensorBatches]
    processor: TabularProcessor
    valid_index: list[Any]  # the frame's row labels of the validation rows, in batch order

    @classmethod
    def from_df(
        cls,
        frame: pd.DataFrame,
        y_name: str,
        cat_names: Sequence[str] | None = None,
        cont_names: Sequence[str] | None = None,
        valid_pct: float = 0.2,
        seed: int = 42,
        batch_size: int = 512,
        classification: bool | None = None,
    ) -> TabularData:
        """Split ``frame`` at random (seeded), fit the processor on the training rows.

        Columns not named are inferred: numeric columns are continuous, the rest
        categorical (the target excluded).
        """
        cat_names, cont_names = _column_kinds(frame, y_name, cat_names, cont_names)
        split = random_split(len(frame), valid_pct, seed)
        train, valid = frame.iloc[split.train], frame.iloc[split.valid]
        processor = TabularProcessor.fit(train, cat_names, cont_names, y_name, classification)

        def tensors(rows: pd.DataFrame) -> tuple[torch.Tensor, ...]:
            return processor.categorical(rows), processor.continuous(rows), processor.target(rows)

        # Batch norm needs more than one row: a last batch of one is dropped in training.
        drop_last = len(train) % batch_size == 1
        return cls(
            DataLoaders(
                TensorBatches(tensors(train), batch_size, True, seed, drop_last=drop_last),
                TensorBatches(tensors(valid), batch_size * 4),
            ),
            processor,
            valid.index.tolist(),
        )

    @classmethod
    def from_database(cls, engine: Engine, query: str, y_name: str, **kwargs: Any) -> TabularData:
        """From the rows of a SQL query (or a table name), then as :meth:`from_df`."""
        sql = query if " " in query.strip() else f'SELECT * FROM "{query}"'
        with engine.connect() as connection:
            frame = pd.read_sql(text(sql), connection)
        return cls.from_df(frame, y_name, **kwargs)


def _column_kinds(
    frame: pd.DataFrame,
    y_name: str,
    cat_names: Sequence[str] | None,
    cont_names: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    named = set(cat_names or ()) | set(cont_names or ()) | {y_name}
    rest = [c for c in frame.columns if c not in named]
    numeric = [c for c in rest if pd.api.types.is_numeric_dtype(frame[c])]
    cats = list(cat_names) if cat_names is not None else [c for c in rest if c not in numeric]
    conts = list(cont_names) if cont_names is not None else numeric
    return cats, conts


class TabularPredictor:
    """A trained tabular model and its processor: predictions for frames of raw rows."""

    def __init__(self, model: TabularModel, processor: TabularProcessor) -> None:
        self.model = model.eval()
        self.processor = processor
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``prediction`` per row, plus one probability column per class when classifying.

        Raises SchemaError naming a missing or malformed column.
        """
        x_cat = self.processor.categorical(frame).to(self.device)
        x_cont = self.processor.continuous(frame).to(self.device)
        out = self.model(x_cat, x_cont).float().cpu()
        if not self.processor.classification:
            return pd.DataFrame({"prediction": out.numpy()}, index=frame.index)
        probabilities = torch.softmax(out, dim=1).numpy()
        classes = self.processor.classes
        result = pd.DataFrame(probabilities, columns=classes, index=frame.index)
        result.insert(0, "prediction", np.asarray(classes, dtype=object)[probabilities.argmax(1)])
        return result


class TabularLearner(Learner):
    """A Learner for a TabularModel, answering in the frame's own column names and classes."""

    def __init__(self, data: TabularData, model: TabularModel, **kwargs: Any) -> None:
        classification = data.processor.classification
        loss = F.cross_entropy if classification else F.mse_loss
        metrics = [accuracy] if classification else [rmse, mae]
        super().__init__(data.dls, model, loss, metrics=metrics, **kwargs)
        self.data = data

    def predictor(self) -> TabularPredictor:
        return TabularPredictor(self.model, self.data.processor)  # type: ignore[arg-type]  # its model is a TabularModel

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions for raw rows (see :meth:`TabularPredictor.predict`)."""
        return self.predictor().predict(frame)

    def interpret(self) -> ClassificationInterpretation:
        """Confusion and top losses on the validation rows (items: the frame's row labels)."""
        if not self.data.processor.classification:
            raise ValueError("interpretation is for classifiers; this model is a regression")
        return ClassificationInterpretation.from_learner(
            self, self.data.processor.classes, self.data.valid_index
        )

    def extra_state(self) -> dict[str, Any]:
        return {"processor": self.data.processor.state()}


def tabular_learner(
    data: TabularData,
    layers: Sequence[int] = (200, 100),
    dropout: float = 0.1,
    embedding_dropout: float = 0.0,
    y_range: tuple[float, float] | None = None,
    **kwargs: Any,
) -> TabularLearner:
    """A TabularModel learner: cross-entropy and accuracy, or MSE and RMSE/MAE.

    ``fit_one_cycle()`` without arguments uses the tuned defaults.
    """
    processor = data.processor
    model = TabularModel(
        TabularModelConfig(
            cardinalities=tuple(processor.cardinalities),
            n_cont=len(processor.cont_names),
            n_out=len(processor.classes) if processor.classification else 1,
            layers=tuple(layers),
            dropout=dropout,
            embedding_dropout=embedding_dropout,
            y_range=y_range,
        )
    )
    kwargs.setdefault("fit_defaults", TABULAR_DEFAULTS)  # its wd too, unless given (see Learner)
    return TabularLearner(data, model, **kwargs)


def load_tabular(path: Path | str, device: str | torch.device = "cpu") -> TabularPredictor:
    """A :class:`TabularPredictor` from a file written by ``TabularLearner.save``."""
    artifact = load_artifact(path)
    model, extra = artifact.model, artifact.extra
    processor = TabularProcessor.from_state(extra["processor"])
    return TabularPredictor(model.to(device), processor)  # type: ignore[arg-type]  # a tabular file holds a TabularModel
