"""A timm architecture as a rebuildable model (timm is optional and never downloads weights)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TimmNetConfig:
    arch: str  # a timm model name, e.g. "resnet18"
    n_classes: int
    in_channels: int = 3
    # Pretrained weights from this local file (timm's pretrained_cfg "file"); None: random.
    pretrained_file: str | None = None


class TimmNet(nn.Module):
    """``timm.create_model(arch)``, random or from ``pretrained_file`` (never downloaded);
    its classifier is the head."""

    def __init__(self, config: TimmNetConfig) -> None:
        super().__init__()
        try:
            import timm
        except ImportError:
            raise ImportError(
                f"architecture {config.arch!r} needs timm (pip install timm); "
                'the built-in one is arch="resnet"'
            ) from None
        self.config = config
        file = config.pretrained_file
        self.net = timm.create_model(
            config.arch,
            pretrained=file is not None,  # from the local file only: nothing is downloaded
            pretrained_cfg_overlay={"file": file} if file is not None else None,
            num_classes=config.n_classes,
            in_chans=config.in_channels,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """The body, then the classifier."""
        head = {id(p) for p in self.net.get_classifier().parameters()}
        body = [p for p in self.net.parameters() if id(p) not in head]
        return [body, list(self.net.get_classifier().parameters())]
