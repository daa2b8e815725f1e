"""Optimizers: AdamW for dense parameters, and a sparse AdamW for big embedding tables.

torch's SparseAdam has no weight decay. :class:`SparseAdamW` adds *decoupled*
weight decay that means exactly what AdamW's does (every row shrinks by
``1 - lr * wd`` at every step), without touching every row at every step: a
row's missed shrink factors are applied in one multiply the next time it is in a
batch, and :meth:`SparseAdamW.flush` brings all rows up to date before they are
read (the learner calls it at the end of each training phase). On the CPU the step is
one fused kernel (recsys.train.sparse_rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn


class SparseAdamW(torch.optim.Optimizer):
    """Lazy Adam on sparse gradients with exact decoupled weight decay."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        )
        self._scratch: dict[nn.Parameter, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _state(self, param: nn.Parameter) -> dict:
        state = self.state[param]
        if not state:
            state["step"] = 0
            # Both Adam moments of a row side by side: one gather and one scatter per step.
            state["moments"] = torch.zeros(
                param.shape[0], 2, *param.shape[1:], dtype=param.dtype, device=param.device
            )
            # log of the product of all shrink factors so far, and per row how much of it
            # the row has received; float64 so thousands of steps do not drift.
            state["log_decay"] = 0.0
            state["row_log_decay"] = torch.zeros(
                param.shape[0], dtype=torch.float64, device=param.device
            )
        return state

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]  # no closure: torch's takes an optional one
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, wd = group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._state(param)
                state["step"] += 1
                state["log_decay"] += math.log1p(-lr * wd) if wd else 0.0
                correction1 = 1 - beta1 ** state["step"]
                correction2 = 1 - beta2 ** state["step"]
                if param.device.type == "cpu" and param.dtype == torch.float32:
                    self._fused_step(param, state, lr / correction1, 1 / correction2, group)
                    continue
                # Sum the gradients of repeated rows; cheaper than grad.coalesce(),
                # which sorts the values along with the indices.
                rows, inverse = torch.unique(param.grad._indices()[0], return_inverse=True)
                grad = torch.zeros(
                    len(rows), *param.shape[1:], dtype=param.dtype, device=param.device
                )
                grad.index_add_(0, inverse, param.grad._values())

                moments = state["moments"].index_select(0, rows)
                m = moments[:, 0].mul_(beta1).add_(grad, alpha=1 - beta1)
                v = moments[:, 1].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                state["moments"].index_copy_(0, rows, moments)
                denominator = v.div(correction2).sqrt_().add_(eps)
                # The decay this row missed (and this step's), then the Adam step.
                values = param.index_select(0, rows).mul_(self._pending_decay(param, state, rows))
                values.addcdiv_(m, denominator, value=-lr / correction1)
                param.index_copy_(0, rows, values)
                state["row_log_decay"].index_fill_(0, rows, state["log_decay"])

    def _fused_step(
        self,
        param: nn.Parameter,
        state: dict,
        step_size: float,
        inverse_correction2: float,
        group: dict,
    ) -> None:
        """The same step in one pass over the touched rows (recsys.train.sparse_rows): on
        the CPU, where the calls above were most of an epoch."""
        from recsys.train.sparse_rows import adamw_rows  # numba: only training pays its import

        grad = param.grad
        assert grad is not None  # stepped only when it has a gradient
        rows = grad._indices()[0]
        # Scratch, not state: a row -> slot table (-1 between steps), and room for a batch.
        scratch = self._scratch.get(param)
        if scratch is None or len(scratch[1]) < len(rows):
            slot = np.full(param.shape[0], -1, dtype=np.int64) if scratch is None else scratch[0]
            scratch = (
                slot,
                np.empty(len(rows), dtype=np.int64),
                np.empty((len(rows), param[0].numel()), dtype=np.float32),
            )
            self._scratch[param] = scratch
        slot, touched, summed = scratch
        beta1, beta2 = group["betas"]
        adamw_rows(
            param.detach().view(param.shape[0], -1).numpy(),
            state["moments"].view(param.shape[0], 2, -1).numpy(),
            state["row_log_decay"].numpy(),
            slot,
            rows.numpy(),
            grad._values().reshape(len(rows), -1).contiguous().numpy(),
            summed,
            touched,
            step_size,
            inverse_correction2,
            beta1,
            beta2,
            group["eps"],
            state["log_decay"],
        )

    @staticmethod
    def _pending_decay(param: nn.Parameter, state: dict, rows: torch.Tensor) -> torch.Tensor:
        missed = state["log_decay"] - state["row_log_decay"].index_select(0, rows)
        return torch.exp(missed).to(param.dtype).view(-1, *([1] * (param.dim() - 1)))

    @torch.no_grad()
    def flush(self) -> None:
        """Apply every pending shrink factor, so the weights are exactly AdamW's."""
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state.get(param)
                if state:
                    factor = torch.exp(state["log_decay"] - state["row_log_decay"])
                    param.mul_(factor.to(param.dtype).unsqueeze(1))
                    state["row_log_decay"].fill_(state["log_decay"])


class Optimizers:
    """Several optimizers stepped as one; ``param_groups`` spans them all for schedulers."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def flush(self) -> None:
        for optimizer in self.optimizers:
            if isinstance(optimizer, SparseAdamW):
                optimizer.flush()

    def state_dict(self) -> list[dict]:
        return [optimizer.state_dict() for optimizer in self.optimizers]

    def load_state_dict(self, states: list[dict]) -> None:
        for optimizer, state in zip(self.optimizers, states, strict=True):
            optimizer.load_state_dict(state)


def make_optimizer(
    model: nn.Module,
    lr: float,
    wd: float,
    betas: tuple[float, float] = (0.9, 0.99),
    lr_scales: Sequence[tuple[Sequence[nn.Parameter], float]] | None = None,
) -> Optimizers:
    """AdamW for dense parameters; SparseAdamW for the tables a model declares sparse.

    A model opts in with a ``sparse_parameters()`` method (the embedding tables it
    indexes with ``sparse=True``); everything else is dense. ``lr_scales`` gives
    groups of dense parameters their own multiple of the learning rate
    (discriminative rates); parameters in no group get the full rate.
    """
    sparse_ids = {id(p) for p in getattr(model, "sparse_parameters", list)()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    dense = [p for p in trainable if id(p) not in sparse_ids]
    sparse = [p for p in trainable if id(p) in sparse_ids]
    optimizers: list[torch.optim.Optimizer] = []
    if dense:
        groups: list[dict] = []
        grouped: set[int] = set()
        for params, scale in lr_scales or ():
            chosen = [p for p in params if p.requires_grad and id(p) not in grouped]
            grouped |= {id(p) for p in chosen}
            if chosen:
                groups.append({"params": chosen, "lr_scale": scale, "lr": lr * scale})
        rest = [p for p in dense if id(p) not in grouped]
        if rest:
            groups.append({"params": rest, "lr_scale": 1.0})
        optimizers.append(
            torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=wd, eps=1e-5, fused=True)
        )
    if sparse:
        optimizers.append(SparseAdamW(sparse, lr=lr, betas=betas, weight_decay=wd, eps=1e-5))
    return Optimizers(optimizers)
