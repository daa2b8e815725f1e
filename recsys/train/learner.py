"""The Learner: one training loop for the collaborative, tabular and vision models.

The loop below is all there is: epochs of training batches then a validation
pass, each step announced as an event to the callbacks (see callbacks.py), which
do the scheduling, recording, progress display, early stopping and checkpoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from recsys.artifacts import load_artifact, save_artifact
from recsys.data.loaders import DataLoaders, TensorBatches, to_device
from recsys.train import distributed
from recsys.train.callbacks import (
    Callback,
    CancelFit,
    CancelValidation,
    ParamScheduler,
    ProgressCallback,
    Recorder,
    SkipValidation,
)
from recsys.train.lr_find import LRFindResult, find_lr
from recsys.train.optim import Optimizers, make_optimizer
from recsys.train.schedules import one_cycle_lr, one_cycle_momentum

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EVENTS = (
    "before_fit",
    "before_epoch",
    "before_train",
    "before_batch",
    "after_loss",
    "before_step",
    "after_step",
    "after_batch",
    "after_train",
    "before_validate",
    "after_validate",
    "after_epoch",
    "after_fit",
)


def _order(cb: Callback) -> int:
    return cb.order


def _shard(dls: DataLoaders[Any], context: distributed.Distributed) -> DataLoaders[Any]:
    if not isinstance(dls.train, TensorBatches):
        raise NotImplementedError(
            "data-parallel training needs in-memory TensorBatches; a DataLoader would need a "
            "DistributedSampler"
        )
    return DataLoaders(dls.train.sharded(context.rank, context.world_size), dls.valid)


def resolve_device(choice: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) means CUDA when there is one, else the CPU."""
    if isinstance(choice, torch.device):
        return choice
    if choice in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA device")
    return torch.device(choice)


@dataclass(frozen=True)
class FitDefaults:
    """What ``fit_one_cycle()`` uses when called without arguments."""

    n_epoch: int = 5
    lr_max: float = 3e-3
    wd: float = 0.01


class Learner:
    """A model, its data, a loss and metrics, trained with callbacks.

    Args:
        dls: training and validation batches; a batch is ``(*inputs, target)``.
        model: called as ``model(*inputs)``.
        loss_func: ``loss_func(predictions, targets)``, mean-reduced.
        metrics: functions of all validation predictions and targets.
        wd: decoupled weight decay (AdamW's), unless a fit overrides it; None: the
            ``fit_defaults``' own.
        cbs: extra callbacks kept for every fit.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or a torch.device.
        progress: show the progress bar and per-epoch table.
    """

    def __init__(
        self,
        dls: DataLoaders[Any],
        model: nn.Module,
        loss_func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        metrics: Sequence[Metric] = (),
        wd: float | None = None,
        cbs: Sequence[Callback] = (),
        device: str | torch.device | None = "auto",
        progress: bool = True,
        fit_defaults: FitDefaults = FitDefaults(),
    ) -> None:
        self.context = distributed.current()
        if self.context is not None:
            # Data-parallel under torchrun: this rank's device and share of the batches;
            # only rank 0 shows progress and validates.
            device = distributed.device_for(self.context)
            dls = _shard(dls, self.context)
            progress = progress and self.context.is_main
        self.device = resolve_device(device)
        self.dls = dls.to(self.device)
        self.model = model.to(self.device)
        self.loss_func = loss_func
        self.metrics = list(metrics)
        self.wd = fit_defaults.wd if wd is None else wd
        self.fit_defaults = fit_defaults
        self.opt: Optimizers | None = None
        # Discriminative learning rates: (parameters, multiple of the scheduled rate).
        self.lr_scales: list[tuple[list[nn.Parameter], float]] | None = None
        self.recorder = Recorder()
        self.cbs: list[Callback] = []
        self.add_cbs([self.recorder, *([ProgressCallback()] if progress else []), *cbs])
        if self.context is not None and not self.context.is_main:
            self.add_cbs([SkipValidation()])
        self.train_model: nn.Module = self.model  # what the training step calls
        self.valid_results: dict[str, float] = {}

    # -- callbacks -------------------------------------------------------------------------
    def add_cbs(self, cbs: Sequence[Callback]) -> None:
        """Attach callbacks; a handler whose name is not an event is refused, since a
        misspelled one would otherwise never run."""
        for cb in cbs:
            unknown = [
                name
                for name in dir(type(cb))
                if name.startswith(("before_", "after_")) and name not in EVENTS
            ]
            if unknown:
                raise ValueError(
                    f"{type(cb).__name__} defines {', '.join(unknown)}, which is no learner "
                    f"event; events are {', '.join(EVENTS)}"
                )
            cb.learn = self
            self.cbs.append(cb)
        self.cbs.sort(key=_order)  # kept in order here, not re-sorted at every event

    @contextlib.contextmanager
    def added_cbs(self, cbs: Sequence[Callback]) -> Iterator[None]:
        """Callbacks attached for one fit only."""
        self.add_cbs(cbs)
        try:
            yield
        finally:
            for cb in cbs:
                self.cbs.remove(cb)

    def _event(self, name: str) -> None:
        for cb in self.cbs:
            handler = getattr(cb, name, None)
            if handler is not None:
                handler()

    # -- optimizer hyper-parameters --------------------------------------------------------
    def hyper(self, name: str) -> float:
        """The current value of ``lr``, ``momentum`` or ``wd`` (first parameter group)."""
        assert self.opt is not None, "no optimizer yet: call fit first"
        group = self.opt.param_groups[0]
        if name == "momentum":
            return float(group["betas"][0])
        if name == "lr":  # the nominal rate: groups may run at a multiple of it
            return float(group["lr"] / group.get("lr_scale", 1.0))
        return float(group["weight_decay" if name == "wd" else name])

    def set_hyper(self, name: str, value: float) -> None:
        assert self.opt is not None, "no optimizer yet: call fit first"
        for group in self.opt.param_groups:
            if name == "momentum":
                group["betas"] = (value, group["betas"][1])
            elif name == "lr":
                group["lr"] = value * group.get("lr_scale", 1.0)
            else:
                group["weight_decay" if name == "wd" else name] = value

    # -- the loop ----------------------------------------------------------------------------
    def fit(
        self, n_epoch: int, lr: float = 1e-3, wd: float | None = None, cbs: Sequence[Callback] = ()
    ) -> None:
        """Train ``n_epoch`` epochs at constant ``lr`` (callbacks may schedule it)."""
        if self.opt is None:
            self.opt = make_optimizer(self.model, lr=lr, wd=self.wd, lr_scales=self.lr_scales)
        if self.context is not None and self.train_model is self.model:
            # Gradients are averaged across ranks after each backward pass.
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=device_ids)
        self.set_hyper("lr", lr)
        self.set_hyper("wd", self.wd if wd is None else wd)
        self.n_epoch = n_epoch
        self.n_train_batches = len(self.dls.train)
        self.train_iter = 0
        with self.added_cbs(cbs):
            try:
                self._event("before_fit")
                for self.epoch in range(n_epoch):
                    self._one_epoch()
            except CancelFit:
                pass
            finally:
                self._event("after_fit")
                # The DDP wrapper goes while the process group is alive: left to the end
                # of the interpreter, its gloo work objects were freed after the group and
                # a rank aborted ("terminate called without an active exception").
                self.train_model = self.model

    @property
    def pct_train(self) -> float:
        """How far through the whole fit training is, from 0 to 1."""
        return self.train_iter / max(self.n_epoch * self.n_train_batches, 1)

    def _one_epoch(self) -> None:
        self._event("before_epoch")
        self.model.train()
        self.training = True
        self._event("before_train")
        for iteration, batch in enumerate(self.dls.train):
            self.iter = iteration
            self._one_batch(to_device(batch, self.device))
            self.train_iter += 1
        assert self.opt is not None
        self.opt.flush()  # lazy weight decay of sparse tables, so every row is current
        self._event("after_train")
        self.model.eval()
        self.training = False
        try:
            if len(self.dls.valid) == 0:  # nothing held out: a refit on all the data
                raise CancelValidation
            self._event("before_validate")
            self.valid_results = self._validate()
            self._event("after_validate")
        except CancelValidation:
            self.valid_results = {}
        self._event("after_epoch")

    def _one_batch(self, batch: tuple[torch.Tensor, ...]) -> None:
        assert self.opt is not None
        self.batch = batch
        self._event("before_batch")
        self.pred = self.train_model(*batch[:-1])
        self.loss = self.loss_func(self.pred, batch[-1])
        self._event("after_loss")
        self.loss.backward()
        self._event("before_step")
        self.opt.step()
        self._event("after_step")
        self.opt.zero_grad()
        self._event("after_batch")

    def _validate(self) -> dict[str, float]:
        if not self.metrics:
            return {"valid_loss": self._streamed_loss()}
        predictions, targets = self.get_preds(during_fit=True)
        results = {"valid_loss": float(self.loss_func(predictions, targets))}
        for metric in self.metrics:
            results[metric.__name__] = float(metric(predictions, targets))
        return results

    def _streamed_loss(self) -> float:
        """The validation loss batch by batch, each batch's weighted by its rows: with no
        metric to feed, no predictions are kept (a sampled softmax's logits for 2M
        validation rows were 4 GB, and twice that once concatenated)."""
        total, rows = 0.0, 0
        for prediction, target in self._predicted(self.dls.valid, during_fit=True):
            total += float(self.loss_func(prediction, target)) * len(target)
            rows += len(target)
        return total / rows if rows else float("nan")

    def get_preds(
        self, batches: Any = None, during_fit: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions and targets for ``batches`` (the validation set by default)."""
        predictions, targets = [], []
        for prediction, target in self._predicted(
            self.dls.valid if batches is None else batches, during_fit
        ):
            predictions.append(prediction)
            targets.append(target)
        if not predictions:
            return torch.empty(0, device=self.device), torch.empty(0, device=self.device)
        return torch.cat(predictions), torch.cat(targets)

    def _predicted(
        self, batches: Any, during_fit: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each batch's predictions (float, eval mode, no gradients) and targets; during a
        fit, ``after_batch`` after each, as in training."""
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in batches:
                batch = to_device(batch, self.device)
                self.batch = batch
                with torch.no_grad():
                    prediction = self.model(*batch[:-1]).float()
                yield prediction, batch[-1]
                if during_fit:
                    self._event("after_batch")
        finally:
            self.model.train(was_training)

    # -- schedules -------------------------------------------------------------------------
    def fit_one_cycle(
        self,
        n_epoch: int | None = None,
        lr_max: float | None = None,
        wd: float | None = None,
        pct_start: float = 0.25,
        div: float = 25.0,
        div_final: float = 1e5,
        moms: tuple[float, float] = (0.95, 0.85),
        cbs: Sequence[Callback] = (),
    ) -> None:
        """Smith's 1cycle policy: lr warms up then anneals (cosine); momentum moves opposite.

        Arguments left out come from the learner's ``fit_defaults``.
        """
        n_epoch = self.fit_defaults.n_epoch if n_epoch is None else n_epoch
        lr_max = self.fit_defaults.lr_max if lr_max is None else lr_max
        wd = self.fit_defaults.wd if wd is None else wd
        scheduler = ParamScheduler(
            {
                "lr": one_cycle_lr(lr_max, pct_start, div, div_final),
                "momentum": one_cycle_momentum(moms[0], moms[1], pct_start),
            }
        )
        self.fit(n_epoch, lr=lr_max / div, wd=wd, cbs=[scheduler, *cbs])

    def lr_find(
        self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, stop_div: bool = True
    ) -> LRFindResult:
        """Mock-train with an exponentially growing lr; restore the weights; suggest an lr
        (recsys.train.lr_find)."""
        return find_lr(self, start_lr, end_lr, num_it, stop_div)

    # -- persistence -----------------------------------------------------------------------
    @property
    def scoring_model(self) -> nn.Module:
        """The model that is saved and served: ``model`` itself, or the scorer inside a
        training objective (see recsys.train.losses.TrainingObjective)."""
        return getattr(self.model, "scorer", self.model)

    def extra_state(self) -> dict[str, Any]:
        """What a subclass needs besides the model to work after loading (id maps, ...)."""
        return {}

    def save(self, path: Path | str, metadata: dict[str, Any] | None = None) -> Path:
        """Write the scoring model and extra state to ``path`` (see recsys.artifacts);
        ``metadata`` (plain values: what data, which library versions) travels along."""
        return save_artifact(path, self.scoring_model, self.extra_state(), metadata)

    def load(self, path: Path | str) -> None:
        """Load weights saved by :meth:`save` into this learner's model."""
        self.scoring_model.load_state_dict(load_artifact(path).model.state_dict())
