"""PyTorch models; this package needs nothing but torch.

Every collaborative model implements :class:`~recsys.models.scorer.CollabScorer`.
"""

from recsys.models.dot_product_bias import DotProductBias, DotProductBiasConfig
from recsys.models.embedding_net import EmbeddingNN, EmbeddingNNConfig
from recsys.models.factory import build_model, model_config
from recsys.models.scorer import (
    CapabilityError,
    CollabScorer,
    NoBiasesError,
    NoMetadataError,
    NoRatingScaleError,
)

__all__ = [
    "CapabilityError",
    "CollabScorer",
    "DotProductBias",
    "DotProductBiasConfig",
    "EmbeddingNN",
    "EmbeddingNNConfig",
    "NoBiasesError",
    "NoMetadataError",
    "NoRatingScaleError",
    "build_model",
    "model_config",
]
