"""Rebuild a model from its class name and config: what a saved model needs besides weights."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from torch import nn

from recsys.models.blend import Blend, BlendConfig
from recsys.models.dot_product_bias import DotProductBias, DotProductBiasConfig
from recsys.models.ease import EASE, EASEConfig
from recsys.models.embedding_net import EmbeddingNN, EmbeddingNNConfig
from recsys.models.hybrid_net import HybridNN, HybridNNConfig
from recsys.models.ials import IALS, IALSConfig
from recsys.models.imagenet_resnet import PretrainedResNet, PretrainedResNetConfig
from recsys.models.resnet import ResNet, ResNetConfig
from recsys.models.tabular_model import TabularModel, TabularModelConfig
from recsys.models.timm_net import TimmNet, TimmNetConfig
from recsys.models.two_tower import TwoTower, TwoTowerConfig

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "DotProductBias": (DotProductBias, DotProductBiasConfig),
    "EmbeddingNN": (EmbeddingNN, EmbeddingNNConfig),
    "EASE": (EASE, EASEConfig),
    "IALS": (IALS, IALSConfig),
    "Blend": (Blend, BlendConfig),
    "TabularModel": (TabularModel, TabularModelConfig),
    "HybridNN": (HybridNN, HybridNNConfig),
    "TwoTower": (TwoTower, TwoTowerConfig),
    "ResNet": (ResNet, ResNetConfig),
    "PretrainedResNet": (PretrainedResNet, PretrainedResNetConfig),
    "TimmNet": (TimmNet, TimmNetConfig),
}


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """The class name and plain-data config of a registered model; None for other models
    (their weights can still be saved and loaded into a model built by hand)."""
    name = type(model).__name__
    if name not in MODELS:
        return None
    config = cast(Any, model).config  # every registered model keeps its config dataclass
    return {"class": name, "config": asdict(config)}


def build_model(spec: dict[str, Any] | None) -> nn.Module:
    """The inverse of :func:`model_config`: a freshly initialised model."""
    if spec is None or spec.get("class") not in MODELS:
        raise ValueError(
            f"cannot rebuild model {spec and spec.get('class')!r}: registered models are "
            f"{', '.join(MODELS)}; build it yourself and use Learner.load for the weights"
        )
    model_class, config_class = MODELS[spec["class"]]
    config = dict(spec["config"])
    for key in (
        "y_range",
        "layers",
        "cardinalities",
        "user_cardinalities",
        "widths",
        "blocks",
        "members",
        "weights",
        "scales",
    ):
        if key in config and config[key] is not None:
            config[key] = tuple(config[key])
    return model_class(config_class(**config))
