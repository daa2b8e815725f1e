"""Finding a learning rate (fastai's lr_find): mock-train with an exponentially growing
learning rate, record the smoothed loss, restore the weights, and suggest a rate from the
curve."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recsys.train.callbacks import Callback, CancelFit, CancelValidation, ProgressCallback

if TYPE_CHECKING:
    from recsys.train.learner import Learner


@dataclass
class LRFindResult:
    """Learning rates tried, smoothed losses, and suggested learning rates."""

    lrs: list[float]
    losses: list[float]
    valley: float
    steep: float
    minimum: float  # a tenth of the learning rate at the lowest loss

    def plot(self, path: Path | str) -> Path:
        """Loss against learning rate, with the suggestions marked, as a PNG."""
        from recsys.train.training_plots import plot_lr_find

        return plot_lr_find(
            self.lrs, self.losses, {"valley": self.valley, "steep": self.steep}, Path(path)
        )


class LRFinder(Callback):
    """Raises the learning rate exponentially each batch; stops when the loss diverges."""

    order = 10

    def __init__(self, start_lr: float, end_lr: float, num_it: int, stop_div: bool) -> None:
        self.start_lr, self.end_lr, self.num_it, self.stop_div = start_lr, end_lr, num_it, stop_div
        self.lrs: list[float] = []
        self.losses: list[float] = []

    def before_fit(self) -> None:
        self.step, self.best, self.smoothed = 0, math.inf, 0.0

    def before_batch(self) -> None:
        if self.learn.training:
            self.learn.set_hyper(
                "lr", self.start_lr * (self.end_lr / self.start_lr) ** (self.step / self.num_it)
            )

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        loss = self.learn.loss.item()
        self.step += 1
        # Exponentially weighted average with bias correction, as in the 1cycle papers.
        self.smoothed = 0.98 * self.smoothed + 0.02 * loss
        smoothed = self.smoothed / (1 - 0.98**self.step)
        self.lrs.append(self.learn.hyper("lr"))
        self.losses.append(smoothed)
        self.best = min(self.best, smoothed)
        if not math.isfinite(smoothed) or (self.stop_div and smoothed > 4 * self.best):
            raise CancelFit
        if self.step >= self.num_it:
            raise CancelFit

    def before_validate(self) -> None:
        raise CancelValidation


def find_lr(
    learn: Learner, start_lr: float, end_lr: float, num_it: int, stop_div: bool
) -> LRFindResult:
    """What ``Learner.lr_find`` does: the weights and optimiser are as before afterwards."""
    saved_model = copy.deepcopy(learn.model.state_dict())
    saved_opt = learn.opt
    learn.opt = None
    finder = LRFinder(start_lr, end_lr, num_it, stop_div)
    progress = [cb for cb in learn.cbs if isinstance(cb, ProgressCallback)]
    for cb in progress:
        learn.cbs.remove(cb)
    try:
        n_epoch = math.ceil(num_it / max(len(learn.dls.train), 1))
        learn.fit(n_epoch, lr=start_lr, cbs=[finder])
    finally:
        learn.model.load_state_dict(saved_model)
        learn.opt = saved_opt
        learn.add_cbs(progress)
    return suggest(finder.lrs, finder.losses)


def suggest(lrs: list[float], losses: list[float]) -> LRFindResult:
    """Suggestions from the finder's curve.

    valley: inside the longest stretch over which the loss keeps falling, a point
    two thirds of the way down it (the robust pick fastai popularised). steep: the
    steepest descent of loss against log(lr) within that stretch.
    """
    if len(lrs) < 3:
        raise RuntimeError("lr_find ran fewer than 3 batches: use more data or a larger num_it")
    if len(lrs) > 15:
        # The first batches are dominated by smoothing warm-up, the last by divergence.
        lrs, losses = lrs[5:-5], losses[5:-5]
    log_lrs, loss = np.log(np.asarray(lrs)), np.asarray(losses)
    n = len(loss)
    run = np.ones(n, dtype=int)  # run[i]: longest decreasing subsequence ending at i
    for i in range(1, n):
        for j in range(i):
            if loss[i] < loss[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
    end = int(np.argmax(run))
    start = end - run[end] + 1
    third = (end - start) / 3
    valley = lrs[min(start + int(third) + int(third / 2), n - 1)]
    # Steepest descent, looked for inside that stretch so early noise cannot win.
    slopes = np.gradient(loss, log_lrs)
    steep = lrs[start + int(np.nanargmin(slopes[start : end + 1]))]
    minimum = lrs[int(np.nanargmin(loss))] / 10
    return LRFindResult(list(lrs), list(losses), valley=valley, steep=steep, minimum=minimum)
