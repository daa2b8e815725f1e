"""Vision learner: folders in, a CNN trained, interpreted, cleaned, served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner, Result

from recsys.cli import app
from recsys.train.callbacks import Callback
from recsys.vision.data import Augment, ImageData, verify_images
from recsys.vision.image_plots import plot_top_losses
from recsys.vision.vision_learner import VisionLearner, load_vision, vision_learner

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def write_image(path: Path, colour: tuple[int, int, int], seed: int, size=(24, 20)) -> Path:
    """A noisy block of ``colour`` with a brighter left edge (so flips and crops show)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255)
    pixels[:, :4] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def colour_folder(root: Path, per_class: int = 12) -> Path:
    for c, (name, colour) in enumerate(COLOURS.items()):
        for i in range(per_class):
            write_image(root / name / f"{name}{i:02d}.png", colour, seed=100 * c + i)
    return root


def data_for(folder: Path, **kwargs) -> ImageData:
    options = {"size": 16, "batch_size": 8, "num_workers": 0, **kwargs}
    return ImageData.from_folder(folder, **options)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> VisionLearner:
    folder = colour_folder(tmp_path_factory.mktemp("colours"))
    torch.manual_seed(0)
    learn = vision_learner(data_for(folder), widths=(8, 16), blocks=(1, 1), progress=False)
    learn.fit_one_cycle(4, 1e-2)
    return learn


def test_a_folder_gives_sorted_classes_a_seeded_split_and_normalised_batches(tmp_path) -> None:
    data = data_for(colour_folder(tmp_path))
    assert data.classes == ["blue", "green", "red"]
    assert len(data.train_files) + len(data.valid_files) == 36
    assert len(data.valid_files) == 7  # round(0.2 * 36)
    assert data_for(tmp_path).valid_files == data.valid_files  # the same seed, the same split
    images, labels = next(iter(data.dls.train))
    assert images.shape == (8, 3, 16, 16)
    assert labels.dtype == torch.long
    everything = torch.cat([x for x, _ in data.dls.valid])
    assert everything.shape[1:] == (3, 16, 16)
    assert abs(float(torch.cat([x for x, _ in data.dls.train]).mean())) < 0.5


def test_train_and_valid_sub_folders_are_the_split(tmp_path) -> None:
    for split, n in (("train", 5), ("valid", 2)):
        for name in ("cat", "dog"):
            for i in range(n):
                write_image(tmp_path / split / name / f"{i}.png", COLOURS["red"], i)
    data = data_for(tmp_path)
    assert data.classes == ["cat", "dog"]
    assert len(data.train_files) == 10
    assert all("valid" in f.parts for f in data.valid_files)


def test_augmentation_only_touches_the_training_set(tmp_path) -> None:
    data = data_for(colour_folder(tmp_path), augment=Augment(scale=(0.3, 0.6), flip=True))
    train_set, valid_set = data.dls.train.dataset, data.dls.valid.dataset
    assert valid_set.augment is None
    torch.manual_seed(0)
    draws = [train_set[0][0] for _ in range(6)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    assert torch.equal(valid_set[0][0], valid_set[0][0])
    plain = data_for(tmp_path, augment=None)
    assert plain.dls.train.dataset.augment is None


def test_verify_images_reports_broken_files_and_deletes_only_when_asked(tmp_path) -> None:
    good = write_image(tmp_path / "a" / "good.png", (1, 2, 3), 0)
    (tmp_path / "a" / "empty.png").write_bytes(b"")
    (tmp_path / "a" / "text.jpg").write_text("not a picture")
    (tmp_path / "a" / "cut.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "a" / "notes.txt").write_text("ignored: not an image extension")
    broken = verify_images(tmp_path)
    reasons = {b.path.name: b.reason for b in broken}
    assert set(reasons) == {"empty.png", "text.jpg", "cut.png"}
    assert reasons["empty.png"] == "empty file"
    assert "not an image" in reasons["text.jpg"]
    assert (tmp_path / "a" / "cut.png").exists()  # listing deletes nothing
    verify_images(tmp_path, delete=True)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["good.png", "notes.txt"]


def test_the_class_order_survives_saving_and_predictions_follow_it(
    trained: VisionLearner, tmp_path
) -> None:
    assert trained.recorder.rows[-1]["accuracy"] == 1.0
    path = trained.save(tmp_path / "model.pt")
    predictor = load_vision(path)
    assert predictor.classes == ["blue", "green", "red"]
    assert predictor.transform.mean == trained.data.transform.mean
    files = [write_image(tmp_path / f"{n}.png", c, 999) for n, c in COLOURS.items()]
    predicted = predictor.predict_files(files)
    assert predicted["prediction"].tolist() == ["red", "green", "blue"]
    assert list(predicted.columns[3:]) == ["blue", "green", "red"]
    assert np.allclose(predicted[["blue", "green", "red"]].sum(axis=1), 1.0)


def test_interpretation_names_files_and_writes_its_plots(trained: VisionLearner, tmp_path) -> None:
    interpretation = trained.interpret()
    top = interpretation.top_losses()
    assert set(top["item"]) == set(trained.data.valid_files)
    for row in top.itertuples():
        assert Path(row.item).parent.name == row.actual  # the file's folder is its class
    assert int(interpretation.confusion_matrix().to_numpy().sum()) == len(top)
    plot_top_losses(interpretation, trained.data.transform, tmp_path / "top.png", 4)
    interpretation.plot_confusion_matrix(tmp_path / "confusion.png")
    for name in ("top.png", "confusion.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"
    train_side = trained.interpret_training_set()
    assert len(train_side.targets) == len(trained.data.train_files)


class GroupRates(Callback):
    """Records every parameter group's learning rate at each training batch."""

    def __init__(self) -> None:
        self.rates: list[list[float]] = []

    def before_batch(self) -> None:
        if self.learn.training:
            self.rates.append([g["lr"] for g in self.learn.opt.param_groups])


def test_fine_tune_trains_the_head_first_then_all_with_discriminative_rates(tmp_path) -> None:
    torch.manual_seed(0)
    learn = vision_learner(
        data_for(colour_folder(tmp_path)), widths=(8, 16), blocks=(1, 1), progress=False
    )
    conv = learn.model.body[1][0].convs[0][0].weight
    before = conv.detach().clone()
    rates = GroupRates()
    learn.add_cbs([rates])
    learn.freeze()
    assert not conv.requires_grad
    learn.fit_one_cycle(1, 1e-2)
    assert torch.equal(conv, before)  # frozen: the body's convolutions did not move
    learn.fine_tune(1, base_lr=1e-2, freeze_epochs=1, lr_mult=100)
    assert conv.requires_grad
    assert not torch.equal(conv, before)
    last = rates.rates[-2]  # unfrozen: stem, two stages, head
    assert len(last) == 4
    assert last[0] == pytest.approx(last[-1] / 100)
    assert last[0] < last[1] < last[2] < last[3]
    assert learn.lr_scales is None


def test_cli_cleaning_lists_first_then_applies_checked_decisions(
    trained: VisionLearner, tmp_path
) -> None:
    folder = colour_folder(tmp_path / "data")
    # A green square filed as red: the model's worst case.
    mislabelled = write_image(folder / "red" / "oops.png", COLOURS["green"], 7)
    model = trained.save(tmp_path / "model.pt")

    def clean(*options: str) -> Result:
        command = ["vision", "clean", str(folder), "--model", str(model), *options]
        return CliRunner().invoke(app, command)

    def apply(frame: pd.DataFrame, name: str) -> Result:
        frame.to_csv(tmp_path / name, index=False)
        return clean("--apply", str(tmp_path / name))

    listing = tmp_path / "listing.csv"
    result = clean("--top", "3", "--list", str(listing))
    assert result.exit_code == 0, result.output
    listed = pd.read_csv(listing, dtype=str, keep_default_na=False)
    assert Path(listed.loc[0, "file"]).name == "oops.png"
    assert listed.loc[0, "predicted"] == "green"

    decisions = listed.copy()
    decisions.loc[0, ["action", "label"]] = ["move", "green"]
    decisions.loc[1, "action"] = "delete"
    deleted = Path(decisions.loc[1, "file"])
    bad = decisions.copy()
    bad.loc[2, "action"] = "burn"
    refused = apply(bad, "bad.csv")
    assert refused.exit_code == 1
    assert "decisions line 4: action 'burn'" in refused.output
    assert mislabelled.exists()  # nothing was changed
    assert deleted.exists()

    outside = decisions.copy()
    outside.loc[1, "file"] = str(model)
    refused = apply(outside, "outside.csv")
    assert refused.exit_code == 1
    assert "is not inside" in refused.output

    applied = apply(decisions, "decisions.csv")
    assert applied.exit_code == 0, applied.output
    assert not mislabelled.exists()
    assert (folder / "green" / "oops.png").exists()
    assert not deleted.exists()
    assert "moved" in applied.output
    assert "deleted" in applied.output


def test_cli_interactive_cleaning_asks_file_by_file(trained: VisionLearner, tmp_path) -> None:
    folder = colour_folder(tmp_path / "data")
    model = trained.save(tmp_path / "model.pt")
    result = CliRunner().invoke(
        app,
        ["vision", "clean", str(folder), "--model", str(model), "--top", "2", "--interactive"],
        input="d\nk\nq\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("deleted ") == 1
    assert len(list(folder.rglob("*.png"))) == 35


def test_cli_digits_verify_train_and_predict(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.settings import get_settings

    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    get_settings.cache_clear()
    runner = CliRunner()
    folder = tmp_path / "digits"
    result = runner.invoke(app, ["vision", "digits", str(folder), "--size", "16"])
    assert result.exit_code == 0, result.output
    assert len(list(folder.rglob("*.png"))) == 1797
    assert sorted(p.name for p in folder.iterdir()) == [str(d) for d in range(10)]
    (folder / "3" / "broken.png").write_bytes(b"\x89PNG\r\n")
    result = runner.invoke(app, ["vision", "verify", str(folder), "--delete"])
    assert "1 broken image file(s) deleted" in result.output
    # Two digit classes keep the test short.
    for digit in range(2, 10):
        for file in (folder / str(digit)).iterdir():
            file.unlink()
        (folder / str(digit)).rmdir()
    result = runner.invoke(
        app,
        [
            "vision",
            "train",
            str(folder),
            "--size",
            "16",
            "--mode",
            "L",
            "--no-flip",
            "--epochs",
            "2",
            "--report",
            str(tmp_path / "report"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "classes 0, 1" in result.output
    assert (tmp_path / "artifacts" / "vision" / "model.pt").is_file()
    assert (tmp_path / "report" / "top_losses.png").is_file()
    result = runner.invoke(app, ["vision", "predict", str(folder / "1" / "0001.png")])
    assert result.exit_code == 0, result.output
    assert "0001.png  1" in result.output
    get_settings.cache_clear()
