"""Callbacks: everything around the training loop that is not the loop itself.

A callback overrides any of the learner's events (``before_fit``, ``before_epoch``,
``before_train``, ``before_batch``, ``after_loss``, ``before_step``, ``after_step``,
``after_batch``, ``after_train``, ``before_validate``, ``after_validate``,
``after_epoch``, ``after_fit``) and reaches the learner through ``self.learn``.
Callbacks run in ``order``, lowest first.
"""

from __future__ import annotations

import copy
import operator
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from recsys.train.schedules import Schedule

if TYPE_CHECKING:
    from recsys.train.learner import Learner


class CancelFit(Exception):
    """Raised by a callback to end the fit early (the after_fit event still runs)."""


class CancelValidation(Exception):
    """Raised in before_validate to skip this epoch's validation."""


class Callback:
    """Base class: no-op events, an order and the learner it is attached to."""

    order: int = 0
    learn: Learner

    def __repr__(self) -> str:
        return type(self).__name__


class ParamScheduler(Callback):
    """Sets each optimizer hyper-parameter from its schedule at every training batch."""

    order = 10

    def __init__(self, schedules: dict[str, Schedule]) -> None:
        self.schedules = schedules

    def before_batch(self) -> None:
        if not self.learn.training:
            return
        for name, schedule in self.schedules.items():
            self.learn.set_hyper(name, schedule(self.learn.pct_train))


class Recorder(Callback):
    """Keeps per-batch losses and learning rates, and one row of results per epoch."""

    order = 50

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.momentums: list[float] = []
        self.rows: list[dict[str, float]] = []

    def before_fit(self) -> None:
        self.losses, self.lrs, self.momentums, self.rows = [], [], [], []

    def before_epoch(self) -> None:
        self.epoch_started = time.perf_counter()
        self.train_loss_sum, self.train_rows = 0.0, 0

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        loss = self.learn.loss.item()
        rows = len(self.learn.batch[-1])
        self.losses.append(loss)
        self.lrs.append(self.learn.hyper("lr"))
        self.momentums.append(self.learn.hyper("momentum"))
        self.train_loss_sum += loss * rows
        self.train_rows += rows

    def after_epoch(self) -> None:
        row = {
            "epoch": float(self.learn.epoch),
            "train_loss": self.train_loss_sum / max(self.train_rows, 1),
        }
        row.update(self.learn.valid_results)
        row["time"] = time.perf_counter() - self.epoch_started
        self.rows.append(row)

    def plot_losses(self, path: Path | str) -> Path:
        """Training loss per batch and validation loss per epoch, as a PNG."""
        from recsys.train.training_plots import plot_losses

        batches_per_epoch = len(self.losses) / max(len(self.rows), 1)
        valid = [
            (batches_per_epoch * (i + 1), r["valid_loss"])
            for i, r in enumerate(self.rows)
            if "valid_loss" in r
        ]
        return plot_losses(self.losses, valid, Path(path))


class ProgressCallback(Callback):
    """In a terminal: a progress bar and a table row per epoch. Otherwise (logs): one
    ``key=value`` line per epoch."""

    order = 60

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=True)

    def before_fit(self) -> None:
        self.header_printed = False
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.progress.start()

    def before_train(self) -> None:
        self.task = self.progress.add_task(
            f"epoch {self.learn.epoch + 1}/{self.learn.n_epoch} train",
            total=len(self.learn.dls.train),
        )

    def before_validate(self) -> None:
        self.progress.remove_task(self.task)
        self.task = self.progress.add_task("validate", total=len(self.learn.dls.valid))

    def after_batch(self) -> None:
        self.progress.advance(self.task)

    def after_epoch(self) -> None:
        self.progress.remove_task(self.task)
        row = self.learn.recorder.rows[-1]
        names = list(row)
        if not self.console.is_terminal:  # logs (cron, compose): one key=value line per epoch
            values = [f"epoch={int(row['epoch'])}"]
            values += [f"{n}={row[n]:.4f}" for n in names if n != "epoch"]
            self.console.print(f"event=epoch_end {' '.join(values)}", highlight=False)
            return
        if not self.header_printed:
            self.console.print("  ".join(f"{n:>10}" for n in names), highlight=False)
            self.header_printed = True
        cells = [f"{int(row[n]):>10d}" if n == "epoch" else f"{row[n]:>10.4f}" for n in names]
        self.console.print("  ".join(cells), highlight=False)

    def after_fit(self) -> None:
        self.progress.stop()


def _comparison(monitor: str, mode: str) -> Any:
    if mode == "auto":
        mode = (
            "max"
            if any(
                k in monitor
                for k in (
                    "accuracy",
                    "ndcg",
                    "precision",
                    "recall",
                    "map",
                    "hit",
                    "coverage",
                    "auc",
                )
            )
            else "min"
        )
    return operator.lt if mode == "min" else operator.gt


class TrackerCallback(Callback):
    """Watches a validation value (``valid_loss`` or a metric name) for improvement."""

    order = 70

    def __init__(
        self, monitor: str = "valid_loss", mode: str = "auto", min_delta: float = 0.0
    ) -> None:
        self.monitor = monitor
        self.better = _comparison(monitor, mode)
        self.min_delta = min_delta

    def before_fit(self) -> None:
        self.best: float | None = None
        self.best_epoch = -1

    def improved(self) -> bool:
        if not self.learn.valid_results:
            return False  # validation was skipped (the other ranks under torchrun)
        if self.monitor not in self.learn.valid_results:
            raise KeyError(
                f"cannot monitor {self.monitor!r}: validation reports "
                f"{', '.join(self.learn.valid_results)}"
            )
        value = self.learn.valid_results[self.monitor]
        margin = -self.min_delta if self.better is operator.lt else self.min_delta
        if self.best is None or self.better(value - margin, self.best):
            self.best, self.best_epoch = value, self.learn.epoch
            return True
        return False


class EarlyStopping(TrackerCallback):
    """Ends the fit when the monitored value has not improved for ``patience`` epochs."""

    def __init__(
        self,
        monitor: str = "valid_loss",
        mode: str = "auto",
        min_delta: float = 0.0,
        patience: int = 1,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = patience

    def after_epoch(self) -> None:
        if not self.improved() and self.learn.epoch - self.best_epoch >= self.patience:
            raise CancelFit


class SaveBest(TrackerCallback):
    """Keeps the weights of the best epoch and restores them when the fit ends.

    With ``path``, each improvement is also written there as a checkpoint.
    """

    order = 71  # after EarlyStopping has looked at the same epoch

    def __init__(
        self, monitor: str = "valid_loss", mode: str = "auto", path: Path | str | None = None
    ) -> None:
        super().__init__(monitor, mode)
        self.path = Path(path) if path is not None else None

    def after_epoch(self) -> None:
        if self.improved():
            self.best_state = copy.deepcopy(self.learn.model.state_dict())
            if self.path is not None:
                self.learn.save(self.path)

    def after_fit(self) -> None:
        if self.best_epoch >= 0:
            self.learn.model.load_state_dict(self.best_state)


class GradientClip(Callback):
    """Clips the norm of the dense gradients before each step."""

    def __init__(self, max_norm: float = 1.0) -> None:
        self.max_norm = max_norm

    def before_step(self) -> None:
        dense = [
            p for p in self.learn.model.parameters() if p.grad is not None and not p.grad.is_sparse
        ]
        torch.nn.utils.clip_grad_norm_(dense, self.max_norm)


class SkipValidation(Callback):
    """Skips validation on data-parallel ranks other than 0 (rank 0 evaluates)."""

    def before_validate(self) -> None:
        raise CancelValidation
