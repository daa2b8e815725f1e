"""Image classification on the shared Learner: build, fine-tune, interpret, predict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from recsys.artifacts import load_artifact
from recsys.interpret.classification import ClassificationInterpretation
from recsys.models.imagenet_resnet import (
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PretrainedResNet,
    PretrainedResNetConfig,
)
from recsys.models.resnet import ResNet, ResNetConfig
from recsys.models.timm_net import TimmNet, TimmNetConfig
from recsys.train.learner import FitDefaults, Learner
from recsys.train.metrics import accuracy, error_rate
from recsys.vision.data import ImageData, ImageFiles, ImageTransform, open_image

# Checked with `benchmarks/vision.py` on the bundled digits (32-pixel images): 0.986-0.992
# validation accuracy on three seeds in 45-51 s on two CPU cores; not tuned further.
VISION_DEFAULTS = FitDefaults(n_epoch=8, lr_max=1e-2, wd=0.05)


class VisionLearner(Learner):
    """A Learner for image classifiers: cross-entropy, accuracy and error rate."""

    def __init__(self, data: ImageData, model: nn.Module, **kwargs: Any) -> None:
        super().__init__(data.dls, model, F.cross_entropy, metrics=[accuracy, error_rate], **kwargs)
        self.data = data

    def _body_parameters(self) -> list[nn.Parameter]:
        groups = self.model.parameter_groups()  # type: ignore[operator]  # the vision models define it
        return [p for group in groups[:-1] for p in group]

    def freeze(self) -> None:
        """Train only the head (and the body's batch norms, which must follow the new data)."""
        norms = {
            id(p)
            for m in self.model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for p in m.parameters()
        }
        for p in self._body_parameters():
            p.requires_grad_(id(p) in norms)
        self.opt = None  # the next fit builds an optimizer over what is trainable

    def unfreeze(self) -> None:
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.opt = None

    def fine_tune(
        self,
        epochs: int,
        base_lr: float = 2e-3,
        freeze_epochs: int = 1,
        lr_mult: float = 100.0,
    ) -> None:
        """For a pretrained body: train the head alone for ``freeze_epochs``, then everything
        for ``epochs`` at half the rate, with discriminative rates from ``base_lr / 2 /
        lr_mult`` on the first layers to ``base_lr / 2`` on the head."""
        self.freeze()
        self.fit_one_cycle(freeze_epochs, base_lr)
        self.unfreeze()
        groups = self.model.parameter_groups()  # type: ignore[operator]  # the vision models define it
        scales = np.geomspace(1 / lr_mult, 1.0, len(groups))
        self.lr_scales = [(group, float(s)) for group, s in zip(groups, scales, strict=True)]
        try:
            self.fit_one_cycle(epochs, base_lr / 2)
        finally:
            self.lr_scales = None

    def save_body(self, path: Path | str) -> Path:
        """The body's weights alone, as a torchvision-format state dict (no ``fc``): what
        ``vision_learner(..., weights=path)`` starts another task from. Only for the
        torchvision-layout ResNets."""
        if not isinstance(self.model, PretrainedResNet):
            raise ValueError(
                "only resnet18, resnet34 and resnet50 bodies are saved in torchvision's format"
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.body.state_dict(), path)
        return path

    def interpret(self) -> ClassificationInterpretation:
        """Confusion and top losses on the validation images (items: their file paths)."""
        return ClassificationInterpretation.from_learner(
            self, self.data.classes, self.data.valid_files
        )

    def interpret_training_set(self) -> ClassificationInterpretation:
        """The same for the training images, seen without augmentation."""
        dataset = ImageFiles(
            self.data.train_files,
            self.data.dls.train.dataset.labels.tolist(),  # type: ignore[attr-defined]  # an image-folder data set has labels
            self.data.transform,
        )
        batches = torch.utils.data.DataLoader(dataset, batch_size=256)
        logits, targets = self.get_preds(batches)
        return ClassificationInterpretation.from_predictions(
            logits, targets, self.data.classes, self.data.train_files
        )

    def predictor(self) -> ImagePredictor:
        return ImagePredictor(self.model, self.data.transform)

    def extra_state(self) -> dict[str, Any]:
        return {"transform": self.data.transform.state()}


@dataclass
class ImagePredictor:
    """A trained classifier and its transform: class probabilities for decoded images."""

    model: nn.Module
    transform: ImageTransform

    def __post_init__(self) -> None:
        self.model.eval()
        self.device = next(self.model.parameters()).device

    @property
    def classes(self) -> list[str]:
        return self.transform.classes

    @torch.no_grad()
    def probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(images, classes) probabilities, classes in the saved order."""
        batch = torch.stack([self.transform(image) for image in images]).to(self.device)
        return torch.softmax(self.model(batch).float(), dim=1).cpu().numpy()

    def predict_files(self, files: Sequence[Path]) -> pd.DataFrame:
        """``file``, ``prediction``, ``probability`` and one column per class."""
        images = [open_image(Path(f)) for f in files]
        probabilities = self.probabilities(images)
        best = probabilities.argmax(axis=1)
        frame = pd.DataFrame(probabilities, columns=self.classes)
        frame.insert(0, "probability", probabilities[np.arange(len(best)), best])
        frame.insert(0, "prediction", [self.classes[i] for i in best])
        frame.insert(0, "file", [str(f) for f in files])
        return frame


def vision_learner(
    data: ImageData,
    arch: str = "resnet",
    weights: Path | str | None = None,
    widths: Sequence[int] = (32, 64, 128),
    blocks: Sequence[int] = (1, 1, 1),
    dropout: float = 0.25,
    **kwargs: Any,
) -> VisionLearner:
    """A classifier for ``data``'s classes.

    - ``arch="resnet"``: the built-in small ResNet-style CNN (``widths``/``blocks`` per
      stage), from random weights;
    - ``resnet18``, ``resnet34``, ``resnet50``: torchvision's layout, with a new
      concat-pool head; ``weights``: a torchvision-format state dict file for the body
      (then ``data`` is normalised with ImageNet's statistics, and ``fine_tune`` is the
      way to train);
    - any other name: a timm architecture (timm must be installed), its weights from
      the local file ``weights`` when given.

    Nothing is ever downloaded.
    """
    n_classes, channels = len(data.classes), data.transform.channels
    source = None if weights is None else str(weights)
    model: nn.Module
    if arch == "resnet":
        if weights is not None:
            raise ValueError(
                'the built-in arch="resnet" has no pretrained weights: use resnet18, 34 or 50'
            )
        model = ResNet(ResNetConfig(n_classes, channels, tuple(widths), tuple(blocks), dropout))
    elif arch in ARCHITECTURES:
        if channels != 3:
            raise ValueError(f"{arch} takes RGB images: build the data with mode RGB")
        model = PretrainedResNet(PretrainedResNetConfig(arch, n_classes, source, dropout))
        if weights is not None:
            model.load_body(weights)
    else:
        model = TimmNet(TimmNetConfig(arch, n_classes, channels, source))
    if weights is not None and channels == 3:
        # The statistics the weights were trained with, for training and for inference.
        data.transform.mean, data.transform.std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    kwargs.setdefault("fit_defaults", VISION_DEFAULTS)  # its wd too, unless given (see Learner)
    return VisionLearner(data, model, **kwargs)


def load_vision(path: Path | str, device: str | torch.device = "cpu") -> ImagePredictor:
    """An :class:`ImagePredictor` from a file written by ``VisionLearner.save``."""
    artifact = load_artifact(path)
    model, extra = artifact.model, artifact.extra
    return ImagePredictor(model.to(device), ImageTransform.from_state(extra["transform"]))
