"""Image-folder data sets: one sub-folder per class, decoded with Pillow in DataLoader workers.

Every image is resized to a square of ``size`` pixels (centre crop, or a random
resized crop and flip when augmenting the training set) and normalised with
per-channel statistics computed on the training images. What inference needs
to do the same -- classes in order, size, colour mode, statistics -- is an
:class:`ImageTransform` saved with the model.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from recsys.data.loaders import DataLoaders
from recsys.data.splits import random_split

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
STATS_SAMPLE = 1_000  # training images the normalisation statistics are computed on, at most


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation: a random crop of ``scale`` of the area at an aspect
    ratio within ``ratio``, resized to the output size, and a horizontal flip half the
    time when ``flip`` (off for digits and text, where mirroring changes the class)."""

    scale: tuple[float, float] = (0.75, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True


@dataclass
class ImageTransform:
    """Decoded image -> normalised (channels, size, size) float tensor, as in training."""

    classes: list[str]
    size: int
    mode: str = "RGB"  # or "L" (grey)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return len(self.mode)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        array = np.asarray(image, dtype=np.float32).reshape(self.size, self.size, -1) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        if self.mean:
            mean = torch.tensor(self.mean).view(-1, 1, 1)
            std = torch.tensor(self.std).view(-1, 1, 1)
            tensor = (tensor - mean) / std
        return tensor

    def resize(self, image: Image.Image) -> Image.Image:
        """The largest centred square, resized to ``size``."""
        image = image.convert(self.mode)
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        box = (left, top, left + side, top + side)
        return image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.to_tensor(self.resize(image))

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImageTransform:
        return cls(**state)


def random_resized_crop(
    image: Image.Image, size: int, augment: Augment, generator: torch.Generator | None = None
) -> Image.Image:
    """A random ``augment.scale`` share of the area at a random aspect ratio, resized."""
    width, height = image.size
    area = width * height

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    for _ in range(10):
        target = area * uniform(*augment.scale)
        ratio = math.exp(uniform(math.log(augment.ratio[0]), math.log(augment.ratio[1])))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            box = (left, top, left + w, top + h)
            break
    else:  # no fitting crop drawn: the centred square
        side = min(width, height)
        box = ((width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2)
    image = image.resize((size, size), Image.Resampling.BILINEAR, box=box)
    if augment.flip and float(torch.rand((), generator=generator)) < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def open_image(source: Path | bytes) -> Image.Image:
    """Decode a file or bytes fully (so a truncated file fails here, not later)."""
    image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    image.load()
    return image


class ImageFiles(Dataset):
    """(image tensor, class index) per file; random crops and flips when ``augment``."""

    def __init__(
        self,
        files: Sequence[Path],
        labels: Sequence[int],
        transform: ImageTransform,
        augment: Augment | None = None,
    ) -> None:
        self.files = list(files)
        self.labels = torch.tensor(list(labels), dtype=torch.long)
        self.transform = transform
        self.augment = augment

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with open_image(self.files[index]) as image:
            image = image.convert(self.transform.mode)
            if self.augment is None:
                image = self.transform.resize(image)
            else:
                image = random_resized_crop(image, self.transform.size, self.augment)
            return self.transform.to_tensor(image), self.labels[index]


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (any depth), by extension, in sorted order."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def labelled_files(
    folder: Path, classes: Sequence[str] | None = None
) -> tuple[list[Path], list[int], list[str]]:
    """Files of each class sub-folder of ``folder``, their class indices, and the classes
    (sorted folder names unless given)."""
    if classes is None:
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and image_files(p))
    files, labels = [], []
    for index, name in enumerate(classes):
        found = image_files(folder / name) if (folder / name).is_dir() else []
        files += found
        labels += [index] * len(found)
    return files, labels, list(classes)


def channel_stats(
    files: Sequence[Path], transform: ImageTransform
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (up to STATS_SAMPLE of) ``files``."""
    step = max(1, len(files) // STATS_SAMPLE)
    plain = ImageTransform(transform.classes, transform.size, transform.mode)
    stack = torch.stack([ImageFiles([f], [0], plain)[0][0] for f in files[::step]])
    mean = stack.mean(dim=(0, 2, 3))
    std = stack.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean.tolist(), std.tolist()


@dataclass
class ImageData:
    """Training and validation DataLoaders over an image folder, with the transform."""

    dls: DataLoaders[DataLoader]
    transform: ImageTransform
    train_files: list[Path]
    valid_files: list[Path]
    augment: Augment | None

    @property
    def classes(self) -> list[str]:
        return self.transform.classes

    @classmethod
    def from_folder(
        cls,
        path: Path | str,
        valid_pct: float = 0.2,
        seed: int = 42,
        size: int = 64,
        batch_size: int = 64,
        augment: Augment | None = Augment(),
        mode: str = "RGB",
        num_workers: int | None = None,
    ) -> ImageData:
        """One sub-folder per class; with ``train/`` and ``valid/`` sub-folders, those are
        the split, else a seeded random ``valid_pct`` of the files."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such folder")
        if (path / "train").is_dir() and (path / "valid").is_dir():
            train_files, train_labels, classes = labelled_files(path / "train")
            valid_files, valid_labels, _ = labelled_files(path / "valid", classes)
        else:
            files, labels, classes = labelled_files(path)
            split = random_split(len(files), valid_pct, seed)
            train_files = [files[i] for i in split.train]
            train_labels = [labels[i] for i in split.train]
            valid_files = [files[i] for i in split.valid]
            valid_labels = [labels[i] for i in split.valid]
        if len(classes) < 2 or not train_files:
            raise ValueError(f"{path}: expected image files in two or more class sub-folders")
        transform = ImageTransform(classes, size, mode)
        transform.mean, transform.std = channel_stats(train_files, transform)
        workers = min(4, os.cpu_count() or 1) if num_workers is None else num_workers
        options: dict[str, Any] = {"num_workers": workers, "persistent_workers": workers > 0}
        train = DataLoader(
            ImageFiles(train_files, train_labels, transform, augment),
            batch_size=batch_size,
            shuffle=True,
            drop_last=len(train_files) % batch_size == 1,  # batch norm needs two rows
            generator=torch.Generator().manual_seed(seed),
            **options,
        )
        valid = DataLoader(
            ImageFiles(valid_files, valid_labels, transform), batch_size=batch_size * 2, **options
        )
        return cls(DataLoaders(train, valid), transform, train_files, valid_files, augment)


@dataclass(frozen=True)
class BrokenImage:
    path: Path
    reason: str


def verify_images(path: Path | str, delete: bool = False) -> list[BrokenImage]:
    """Files with an image extension under ``path`` that do not decode: empty, truncated,
    or not an image at all (a wrong extension). Deleted only when ``delete``."""
    broken = []
    for file in image_files(Path(path)):
        reason = None
        if file.stat().st_size == 0:
            reason = "empty file"
        else:
            try:
                with open_image(file):
                    pass
            except UnidentifiedImageError:
                reason = f"not an image (despite its {file.suffix} extension)"
            except (OSError, SyntaxError, ValueError) as error:
                reason = f"unreadable image: {error}"
        if reason is not None:
            broken.append(BrokenImage(file, reason))
    if delete:
        for item in broken:
            item.path.unlink()
    return broken
