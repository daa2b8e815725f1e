"""The shared training loop, on a small regression problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from recsys.data.loaders import DataLoaders, TensorBatches
from recsys.train.callbacks import Callback, EarlyStopping, GradientClip, SaveBest
from recsys.train.learner import Learner, resolve_device
from recsys.train.metrics import mae, rmse


def regression_data(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=generator)
    return x, y


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)[:, 0]


def make_learner(batch_size: int = 32, metrics: tuple = (rmse, mae), **kwargs: object) -> Learner:
    torch.manual_seed(0)
    x, y = regression_data()
    dls = DataLoaders(
        TensorBatches((x[:400], y[:400]), batch_size, shuffle=True, seed=0),
        TensorBatches((x[400:], y[400:]), 128),
    )
    kwargs.setdefault("device", "cpu")
    return Learner(dls, Linear(), F.mse_loss, metrics=list(metrics), progress=False, **kwargs)


def test_fit_one_cycle_drives_the_validation_loss_down() -> None:
    learn = make_learner()
    learn.fit_one_cycle(6, 0.5, wd=0.0)
    rows = learn.recorder.rows
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[-1]["valid_loss"] < rows[0]["valid_loss"] / 5
    assert rows[-1]["rmse"] < 0.2
    assert set(rows[-1]) == {"epoch", "train_loss", "valid_loss", "rmse", "mae", "time"}


def test_without_metrics_the_validation_loss_is_the_loss_of_every_validation_row() -> None:
    """No metric to feed: the loss is summed batch by batch (72 + 128 + ... rows), not
    from all predictions at once, and it is the same number."""
    learn = make_learner(metrics=())
    learn.dls.valid.batch_size = 72  # batches of unequal size
    learn.fit(1, 0.05)
    predictions, targets = learn.get_preds()
    assert learn.recorder.rows[-1]["valid_loss"] == pytest.approx(
        float(F.mse_loss(predictions, targets)), rel=1e-6
    )


def test_the_recorded_learning_rates_follow_one_cycle() -> None:
    learn = make_learner()
    learn.fit_one_cycle(4, 0.05, pct_start=0.25)
    lrs = learn.recorder.lrs
    assert len(lrs) == 4 * 13
    assert max(lrs) == pytest.approx(0.05, rel=0.02)
    assert lrs.index(max(lrs)) in range(12, 15)
    assert lrs[-1] < 0.05 / 100  # the last batch sits just before the end of the cycle
    assert learn.recorder.momentums[lrs.index(max(lrs))] == pytest.approx(0.85, abs=0.01)


def test_the_same_seed_gives_the_same_result() -> None:
    first, second = make_learner(), make_learner()
    first.fit_one_cycle(2, 0.05)
    second.fit_one_cycle(2, 0.05)
    assert first.recorder.losses == second.recorder.losses


def test_a_per_sample_dataloader_trains_through_the_same_loop() -> None:
    x, y = regression_data()
    torch.manual_seed(0)
    dls = DataLoaders(
        DataLoader(TensorDataset(x[:400], y[:400]), batch_size=32, shuffle=True),
        DataLoader(TensorDataset(x[400:], y[400:]), batch_size=64),
    )
    learn = Learner(dls, Linear(), F.mse_loss, metrics=[rmse], device="cpu", progress=False)
    learn.fit_one_cycle(6, 0.5)
    assert learn.recorder.rows[-1]["rmse"] < 0.3


def test_lr_find_restores_the_weights_and_suggests_a_sensible_rate(tmp_path: Path) -> None:
    learn = make_learner(batch_size=64)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}

    result = learn.lr_find(num_it=100)

    for key, value in learn.model.state_dict().items():
        assert torch.equal(value, before[key])
    assert 1e-5 < result.valley < 10
    assert 1e-5 < result.steep < 10
    assert result.lrs == sorted(result.lrs)
    assert result.plot(tmp_path / "lr.png").stat().st_size > 1000


def test_lr_find_stops_when_the_loss_diverges() -> None:
    learn = make_learner(batch_size=8)
    result = learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=200)
    assert len(result.lrs) < 200


def test_early_stopping_ends_the_fit_after_patience_epochs_without_improvement() -> None:
    learn = make_learner()
    learn.fit(10, lr=0.0, cbs=[EarlyStopping(patience=2)])
    assert len(learn.recorder.rows) == 3


def test_save_best_restores_the_weights_of_the_best_epoch(tmp_path: Path) -> None:
    class RuinLastEpoch(Callback):
        def after_epoch(self) -> None:
            if self.learn.epoch == 2:
                with torch.no_grad():
                    for p in self.learn.model.parameters():
                        p.add_(5.0)
                self.learn.valid_results = self.learn._validate()

    learn = make_learner()
    best = SaveBest(path=tmp_path / "best.pt")
    learn.fit_one_cycle(3, 0.5, cbs=[RuinLastEpoch(), best])
    assert best.best_epoch == 1
    predictions, targets = learn.get_preds()
    assert float(rmse(predictions, targets)) == pytest.approx(
        learn.recorder.rows[1]["rmse"], rel=1e-5
    )
    assert (tmp_path / "best.pt").is_file()


def test_gradient_clip_bounds_the_gradient_norm() -> None:
    norms: list[float] = []

    class Spy(Callback):
        order = 5

        def before_step(self) -> None:
            norms.append(
                float(
                    torch.nn.utils.get_total_norm([p.grad for p in self.learn.model.parameters()])
                )
            )

    learn = make_learner()
    clip = GradientClip(max_norm=0.01)
    clip.order = 0
    learn.fit(1, lr=0.01, cbs=[clip, Spy()])
    assert max(norms) <= 0.01 + 1e-6


def test_plot_losses_writes_a_png(tmp_path: Path) -> None:
    learn = make_learner()
    learn.fit_one_cycle(2, 0.05)
    path = learn.recorder.plot_losses(tmp_path / "losses.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_asking_for_cuda_without_one_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_matches_the_cpu_path() -> None:
    on_gpu, on_cpu = make_learner(device="cuda"), make_learner(device="cpu")
    on_gpu.fit_one_cycle(6, 0.5)
    on_cpu.fit_one_cycle(6, 0.5)
    assert next(on_gpu.model.parameters()).is_cuda
    assert on_gpu.recorder.rows[-1]["rmse"] < 0.3
    assert on_gpu.recorder.rows[-1]["rmse"] == pytest.approx(
        on_cpu.recorder.rows[-1]["rmse"], abs=0.05
    )


def test_a_misspelled_event_handler_is_refused_when_attached() -> None:
    class Typo(Callback):
        def after_epcoh(self) -> None:  # would never run
            raise AssertionError

    with pytest.raises(ValueError, match="Typo defines after_epcoh, which is no learner event"):
        make_learner(cbs=[Typo()])
    learn = make_learner()
    with pytest.raises(ValueError, match="after_epcoh"):
        learn.fit(1, cbs=[Typo()])
