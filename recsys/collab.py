"""Collaborative filtering on the shared Learner: data, learner factory, recommendations.

Id maps are built from the training rows only. A validation row whose user or
item never occurs in training cannot be scored by an id-based model, so it is
left out of validation (``CollabData.n_valid_dropped`` counts them) instead of
being scored with an untrained embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sqlalchemy import Engine

from recsys.data.loaders import DataLoaders, TensorBatches
from recsys.data.metadata import MetadataEncoder
from recsys.data.ratings import IdMap, RatingsTable, read_ratings
from recsys.data.splits import Split, random_split, temporal_split
from recsys.models.dot_product_bias import DotProductBias, DotProductBiasConfig
from recsys.models.embedding_net import EmbeddingNN, EmbeddingNNConfig
from recsys.recommend import HybridRecommender, Recommender, SeenItems
from recsys.train import distributed
from recsys.train.learner import FitDefaults, Learner, Metric, load_model, resolve_device
from recsys.train.metrics import mae, rmse

# Chosen by the grid in `benchmarks/collab.py --search` on MovieLens-100k (random
# 80/20 split, seed 42, mean of two weight seeds); see the README for the figures.
DOT_DEFAULTS = {"n_factors": 50, "fit": FitDefaults(n_epoch=8, lr_max=5e-3, wd=0.3)}
NN_DEFAULTS = {"layers": (100,), "fit": FitDefaults(n_epoch=10, lr_max=2e-2, wd=0.5)}
DEFAULT_BATCH_SIZE = 512
# Large data sets get large batches: per-row cost dominates there, and 4096-row
# batches still give thousands of steps per epoch.
LARGE_DATA_ROWS, LARGE_BATCH_SIZE = 1_000_000, 4096
# Above this many embedding rows, tables get sparse gradients (SparseAdamW).
SPARSE_ROWS = 50_000


def default_batch_size(n_train: int) -> int:
    """512 for MovieLens-sized data, 4096 from a million training ratings up."""
    return LARGE_BATCH_SIZE if n_train >= LARGE_DATA_ROWS else DEFAULT_BATCH_SIZE


@dataclass
class CollabData:
    """Training and validation ratings as index tensors, with the id maps."""

    dls: DataLoaders
    user_map: IdMap
    item_map: IdMap
    seen: SeenItems
    n_valid_dropped: int = 0

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @classmethod
    def from_df(
        cls,
        ratings: pd.DataFrame,
        user_col: str = "user_id",
        item_col: str = "item_id",
        rating_col: str = "rating",
        valid_pct: float = 0.2,
        seed: int = 42,
        valid_df: pd.DataFrame | None = None,
        batch_size: int | None = None,
    ) -> CollabData:
        """From a frame; validation is a seeded random ``valid_pct`` of rows, or ``valid_df``."""
        if valid_df is not None:
            split = Split(
                np.arange(len(ratings)), np.arange(len(ratings), len(ratings) + len(valid_df))
            )
            ratings = pd.concat([ratings, valid_df], ignore_index=True)
        else:
            split = random_split(len(ratings), valid_pct, seed)
        user_codes, user_ids = pd.factorize(ratings[user_col], sort=True)
        item_codes, item_ids = pd.factorize(ratings[item_col], sort=True)
        return cls._build(
            user_codes,
            item_codes,
            ratings[rating_col].to_numpy(np.float32),
            IdMap("user", np.asarray(user_ids, dtype=object)),
            IdMap("item", np.asarray(item_ids, dtype=object)),
            split,
            batch_size,
            seed,
        )

    @classmethod
    def from_table(
        cls,
        table: RatingsTable,
        valid_pct: float = 0.2,
        seed: int = 42,
        split: Literal["random", "temporal"] = "random",
        batch_size: int | None = None,
    ) -> CollabData:
        """From ratings read out of the database, split at random or per user in time."""
        if split == "random":
            rows = random_split(len(table), valid_pct, seed)
        else:
            rows = temporal_split(table.users.numpy(), table.timestamps.numpy(), valid_pct)
        return cls._build(
            table.users.numpy(),
            table.items.numpy(),
            table.ratings.numpy(),
            table.user_map,
            table.item_map,
            rows,
            batch_size,
            seed,
        )

    @classmethod
    def from_database(cls, engine: Engine, **kwargs: Any) -> CollabData:
        """Read every rating from the database, then as :meth:`from_table`."""
        return cls.from_table(read_ratings(engine), **kwargs)

    @classmethod
    def _build(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        user_map: IdMap,
        item_map: IdMap,
        split: Split,
        batch_size: int | None,
        seed: int,
    ) -> CollabData:
        # Re-index on training rows only; validation rows with unseen ids are dropped.
        user_index, user_map = _reindex(users, split.train, user_map)
        item_index, item_map = _reindex(items, split.train, item_map)
        valid = split.valid[(user_index[split.valid] >= 0) & (item_index[split.valid] >= 0)]
        batch_size = batch_size or default_batch_size(len(split.train))

        def batches(rows: np.ndarray, shuffle: bool) -> TensorBatches:
            x = torch.from_numpy(np.stack([user_index[rows], item_index[rows]], axis=1))
            y = torch.from_numpy(ratings[rows].astype(np.float32))
            return TensorBatches((x, y), batch_size, shuffle=shuffle, seed=seed)

        train_users, train_items = user_index[split.train], item_index[split.train]
        return cls(
            dls=DataLoaders(batches(split.train, True), batches(valid, False)),
            user_map=user_map,
            item_map=item_map,
            seen=SeenItems.from_pairs(train_users, train_items, len(user_map)),
            n_valid_dropped=len(split.valid) - len(valid),
        )


def _reindex(codes: np.ndarray, train_rows: np.ndarray, id_map: IdMap) -> tuple[np.ndarray, IdMap]:
    """New contiguous codes for the ids that occur in training; -1 for the rest."""
    used = np.unique(codes[train_rows])
    lookup = np.full(len(id_map), -1, dtype=np.int64)
    lookup[used] = np.arange(len(used))
    return lookup[codes], IdMap(id_map.kind, id_map.ids[used])


class CollabLearner(Learner):
    """A Learner for collaborative models, answering in external ids."""

    objective = "rating"

    def __init__(
        self,
        data: CollabData,
        model: torch.nn.Module,
        loss_func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss,
        metrics: Sequence[Metric] = (rmse, mae),
        dls: DataLoaders | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dls or data.dls, model, loss_func, metrics=metrics, **kwargs)
        self.data = data

    def recommender(self) -> Recommender:
        """The current model as a :class:`Recommender`."""
        return Recommender(
            self.scoring_model, self.data.user_map, self.data.item_map, self.data.seen
        )

    def predict(
        self, pairs: pd.DataFrame, user_col: str = "user_id", item_col: str = "item_id"
    ) -> np.ndarray:
        """Predicted ratings for a frame of (user, item) external ids."""
        return self.recommender().predict(pairs, user_col, item_col)

    def recommend(self, user_id: object, n: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """The user's top-``n`` items (``item_id``, ``score``), unrated ones only by default."""
        return self.recommender().recommend(user_id, n, exclude_seen)

    def similar_items(self, item_id: object, n: int = 10) -> pd.DataFrame:
        """Items nearest to ``item_id`` by cosine similarity of their embeddings."""
        return self.recommender().similar_items(item_id, n)

    def extra_state(self) -> dict[str, Any]:
        return {
            "user_ids": self.data.user_map.ids.tolist(),
            "item_ids": self.data.item_map.ids.tolist(),
            "seen_indptr": torch.from_numpy(self.data.seen.indptr),
            "seen_indices": torch.from_numpy(self.data.seen.indices),
        }


def default_sparse(data: CollabData, device: str | torch.device = "auto") -> bool:
    """Sparse embedding gradients on the CPU when users + items exceed 50,000.

    Sparse updates win on the CPU; on a GPU the fused dense AdamW measured faster
    even at 1M x 100k (see the README's benchmark figures). Under torchrun the
    tables stay dense: DDP averages dense gradients.
    """
    on_cpu = resolve_device(device).type == "cpu"
    single = distributed.current() is None
    return on_cpu and single and data.n_users + data.n_items > SPARSE_ROWS


def collab_learner(
    data: CollabData,
    n_factors: int | None = None,
    y_range: tuple[float, float] = (0.0, 5.5),
    use_nn: bool = False,
    layers: tuple[int, ...] | list[int] | None = None,
    sparse: bool | None = None,
    **kwargs: Any,
) -> CollabLearner:
    """A DotProductBias (or, with ``use_nn``, an EmbeddingNN) learner with MSE loss, RMSE/MAE.

    Unset arguments take the tuned defaults, and so does ``fit_one_cycle()``.
    ``sparse`` trains embeddings with sparse gradients; by default on the CPU when users +
    items exceed 50,000.
    """
    if sparse is None:
        sparse = default_sparse(data, kwargs.get("device", "auto"))
    if use_nn:
        model = EmbeddingNN(
            EmbeddingNNConfig(
                data.n_users,
                data.n_items,
                layers=tuple(layers or NN_DEFAULTS["layers"]),
                y_range=y_range,
                sparse=sparse,
            )
        )
        defaults = NN_DEFAULTS["fit"]
    else:
        model = DotProductBias(
            DotProductBiasConfig(
                data.n_users,
                data.n_items,
                n_factors or DOT_DEFAULTS["n_factors"],
                y_range,
                sparse,
            )
        )
        defaults = DOT_DEFAULTS["fit"]
    kwargs.setdefault("fit_defaults", defaults)
    kwargs.setdefault("wd", defaults.wd)
    return CollabLearner(data, model, **kwargs)


def load_recommender(path: Path | str, device: str | torch.device = "cpu") -> Recommender:
    """A :class:`Recommender` from a file written by ``CollabLearner.save``."""
    model, extra = load_model(path)
    parts = (
        model.to(device),
        IdMap("user", np.asarray(extra["user_ids"], dtype=object)),
        IdMap("item", np.asarray(extra["item_ids"], dtype=object)),
        SeenItems(extra["seen_indptr"].numpy(), extra["seen_indices"].numpy()),
    )
    if "metadata_encoder" in extra:  # a hybrid model: it also answers from metadata
        encoder = MetadataEncoder.from_state(extra["metadata_encoder"])
        return HybridRecommender(*parts, encoder)  # type: ignore[arg-type]
    return Recommender(*parts)
