"""The one-cycle schedule has its shape."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.train.schedules import cosine, one_cycle_lr, one_cycle_momentum


def test_one_cycle_warms_up_to_lr_max_then_anneals_to_almost_nothing() -> None:
    schedule = one_cycle_lr(1e-2, pct_start=0.25, div=25, div_final=1e5)
    positions = np.linspace(0, 1, 401)
    lrs = np.array([schedule(p) for p in positions])

    assert lrs[0] == pytest.approx(1e-2 / 25)
    assert positions[lrs.argmax()] == pytest.approx(0.25, abs=0.01)
    assert lrs.max() == pytest.approx(1e-2)
    assert lrs[-1] == pytest.approx(1e-7)
    peak = lrs.argmax()
    assert np.all(np.diff(lrs[: peak + 1]) >= 0)
    assert np.all(np.diff(lrs[peak:]) <= 0)


def test_momentum_moves_against_the_learning_rate() -> None:
    schedule = one_cycle_momentum(0.95, 0.85, pct_start=0.3)
    assert schedule(0) == pytest.approx(0.95)
    assert schedule(0.3) == pytest.approx(0.85)
    assert schedule(1) == pytest.approx(0.95)


def test_cosine_is_halfway_at_the_middle() -> None:
    assert cosine(2.0, 0.0)(0.5) == pytest.approx(1.0)
