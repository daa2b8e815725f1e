"""Schedules as pure functions of training progress ``pos`` in [0, 1]."""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[float], float]


def cosine(start: float, end: float) -> Schedule:
    """Half a cosine from ``start`` to ``end``."""
    return lambda pos: end + (start - end) * (1 + math.cos(math.pi * pos)) / 2


def combine(fraction: float, first: Schedule, second: Schedule) -> Schedule:
    """``first`` over [0, fraction), then ``second`` over [fraction, 1], each on its own 0..1."""

    def schedule(pos: float) -> float:
        if pos < fraction:
            return first(pos / fraction)
        return second((pos - fraction) / (1 - fraction)) if fraction < 1 else second(1.0)

    return schedule


def one_cycle_lr(
    lr_max: float, pct_start: float = 0.25, div: float = 25.0, div_final: float = 1e5
) -> Schedule:
    """Warm up from lr_max/div to lr_max, then anneal to lr_max/div_final (Smith's 1cycle)."""
    return combine(pct_start, cosine(lr_max / div, lr_max), cosine(lr_max, lr_max / div_final))


def one_cycle_momentum(high: float = 0.95, low: float = 0.85, pct_start: float = 0.25) -> Schedule:
    """Momentum moves against the learning rate: down while it warms up, back up after."""
    return combine(pct_start, cosine(high, low), cosine(low, high))
