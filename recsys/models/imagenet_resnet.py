"""The ResNet family (18, 34, 50) in plain torch, with torchvision's parameter names, so
that pretrained weights saved anywhere as a torchvision ``resnet*`` state dict load here
(weights only, strictly), and an image classifier built on such a body.

The names follow torchvision's ``torchvision.models.resnet``: ``conv1``, ``bn1``,
``layer1``..``layer4`` of ``BasicBlock`` (18, 34) or ``Bottleneck`` (50) blocks with
``downsample`` projections, and ``fc``. Nothing is downloaded: a user brings the file.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from recsys.models.resnet import ConcatPool

# Blocks per stage, and whether the blocks are bottlenecks (1x1, 3x3, 1x1, four times wider).
ARCHITECTURES: dict[str, tuple[tuple[int, int, int, int], bool]] = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
}
# The statistics torchvision's ImageNet weights were trained with: applied to the images
# whenever such weights are given.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class WeightsMismatchError(ValueError):
    """A weights file that does not fit the architecture: says which tensors do not."""


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _projection(c_in, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(c_in, width * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _projection(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    """The 1x1 strided projection of the shortcut, where the shape changes."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
    )


class TorchvisionResNet(nn.Module):
    """A ResNet with torchvision's layout and parameter names: its ``state_dict`` is a
    torchvision ``resnet*`` one, ``fc`` included (``n_classes`` outputs)."""

    def __init__(self, arch: str, n_classes: int = 1000) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}: {', '.join(ARCHITECTURES)}")
        blocks, bottleneck = ARCHITECTURES[arch]
        block: type[BasicBlock | Bottleneck] = Bottleneck if bottleneck else BasicBlock
        self.arch = arch
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = 64
        for stage, (n_blocks, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
            stride = 1 if stage == 0 else 2
            layer = [block(c_in, width, stride)]
            c_in = width * block.expansion
            layer += [block(c_in, width) for _ in range(n_blocks - 1)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        self.n_features = c_in
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, n_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's feature maps (B, n_features, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        for stage in self.stages():
            x = stage(x)
        return x

    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"layer{i}") for i in range(1, 5)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(images)), 1))


def read_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """A state dict from ``path``, read as tensors only (``weights_only``: no code runs)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise WeightsMismatchError(f"{path}: not a weights file ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"{path}: not a state dict of tensors")
    return state


def check_weights(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, skip: str = ""
) -> None:
    """WeightsMismatchError naming every missing and unexpected key and every tensor whose
    shape differs (keys starting with ``skip`` left out on both sides)."""
    expected = {k: v for k, v in model.state_dict().items() if not (skip and k.startswith(skip))}
    given = {k: v for k, v in state.items() if not (skip and k.startswith(skip))}
    problems = []
    if missing := sorted(set(expected) - set(given)):
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected := sorted(set(given) - set(expected)):
        problems.append(f"unexpected keys {_listed(unexpected)}")
    shapes = [
        f"{k}: {tuple(given[k].shape)} in the file, {tuple(v.shape)} here"
        for k, v in expected.items()
        if k in given and given[k].shape != v.shape
    ]
    if shapes:
        problems.append(f"shape mismatches: {'; '.join(shapes[:5])}")
    if problems:
        arch = getattr(model, "arch", type(model).__name__)
        raise WeightsMismatchError(f"{source} does not fit {arch}: {'; '.join(problems)}")


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


@dataclass(frozen=True)
class PretrainedResNetConfig:
    arch: str  # resnet18, resnet34 or resnet50
    n_classes: int
    # Where the body's weights came from (a file's path; None: random), kept in the
    # artifact as provenance. Loading a saved model never reads it again.
    pretrained_from: str | None = None
    dropout: float = 0.25


class PretrainedResNet(nn.Module):
    """A torchvision-layout ResNet body with a new head for ``n_classes``: fastai's
    concat-pool head (average and max pooling, batch norm, dropout, linear)."""

    def __init__(self, config: PretrainedResNetConfig) -> None:
        super().__init__()
        self.config = config
        self.body = TorchvisionResNet(config.arch)
        del self.body.fc  # the head below replaces the ImageNet classifier
        width = self.body.n_features
        self.head = nn.Sequential(
            ConcatPool(),
            nn.BatchNorm1d(2 * width),
            nn.Dropout(config.dropout),
            nn.Linear(2 * width, config.n_classes),
        )

    def load_body(self, path: Path | str) -> None:
        """The body's weights from a torchvision-format file (its ``fc`` ignored: the head
        is new); WeightsMismatchError names what does not fit, and nothing is loaded."""
        state = read_weights(path)
        check_weights(self.body, state, str(path), skip="fc.")
        self.body.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body.features(images))

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """The stem, the four stages (early to late), then the head: for freezing and
        discriminative learning rates."""
        stem = [*self.body.conv1.parameters(), *self.body.bn1.parameters()]
        stages = [list(stage.parameters()) for stage in self.body.stages()]
        return [stem, *stages, list(self.head.parameters())]
