"""A small ResNet-style image classifier in plain PyTorch, trainable from scratch on a CPU.

Stem (3x3 convolution, batch norm, ReLU), then stages of residual blocks; each
stage after the first starts with a stride-2 block that halves the resolution
and widens the channels. The head concatenates adaptive average- and
max-pooling, then batch norm, dropout and a linear classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn


@dataclass(frozen=True)
class ResNetConfig:
    n_classes: int
    in_channels: int = 3
    widths: tuple[int, ...] = field(default=(32, 64, 128))  # channels per stage
    blocks: tuple[int, ...] = field(default=(1, 1, 1))  # residual blocks per stage
    dropout: float = 0.25


def conv_bn(c_in: int, c_out: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut; a 1x1 strided projection when shapes change."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.convs = nn.Sequential(conv_bn(c_in, c_out, stride), conv_bn(c_out, c_out, relu=False))
        last_norm = cast(nn.BatchNorm2d, cast(nn.Sequential, self.convs[1])[1])
        nn.init.zeros_(last_norm.weight)  # each block starts as the identity
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.convs(x) + self.shortcut(x))


class ConcatPool(nn.Module):
    """Average- and max-pooling side by side: (B, C, H, W) -> (B, 2C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class ResNet(nn.Module):
    """``forward(images)`` -> logits; ``body`` and ``head`` for freezing and
    discriminative learning rates."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        if len(config.widths) != len(config.blocks):
            raise ValueError("widths and blocks need one entry per stage")
        self.config = config
        stages: list[nn.Module] = [conv_bn(config.in_channels, config.widths[0])]
        c_in = config.widths[0]
        for i, (width, n_blocks) in enumerate(zip(config.widths, config.blocks, strict=True)):
            blocks = [ResidualBlock(c_in, width, stride=1 if i == 0 else 2)]
            blocks += [ResidualBlock(width, width) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.body = nn.Sequential(*stages)
        self.head = nn.Sequential(
            ConcatPool(),
            nn.BatchNorm1d(2 * c_in),
            nn.Dropout(config.dropout),
            nn.Linear(2 * c_in, config.n_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """Stem and stages (early to late), then the head: for discriminative rates."""
        return [list(stage.parameters()) for stage in self.body] + [list(self.head.parameters())]
