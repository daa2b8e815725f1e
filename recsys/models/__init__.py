"""PyTorch models; this package needs nothing but torch."""

from recsys.models.dot_product_bias import DotProductBias, DotProductBiasConfig
from recsys.models.embedding_net import EmbeddingNN, EmbeddingNNConfig
from recsys.models.registry import build_model, model_config

__all__ = [
    "DotProductBias",
    "DotProductBiasConfig",
    "EmbeddingNN",
    "EmbeddingNNConfig",
    "build_model",
    "model_config",
]
