"""Rating predictions: a model's score for (user, item) pairs, a model that reads
metadata scoring ids it never saw from their rows, and the flagged baseline for the
rest (see recsys.collab.baseline). The Recommender's ``predict`` answers with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from recsys.collab.baseline import RatingBaseline
from recsys.data.ids import IdMap, UnknownIdError
from recsys.data.metadata import MetadataEncoder, aligned
from recsys.models.scorer import CollabScorer, NoRatingScaleError

# A pair with an id the model cannot score: refuse the request, or answer the baseline.
Unknown = Literal["error", "baseline"]


@dataclass(frozen=True)
class RatingPredictions:
    """Predicted ratings, and which of them are the baseline (an id the model never saw)."""

    ratings: np.ndarray
    baseline: np.ndarray


@dataclass(frozen=True)
class RatingPredictor:
    """What rating predictions need of a Recommender: its model, id maps, metadata
    vocabularies (None: the model reads none), baseline (None: artifacts from before
    baselines, whose unknown ids stay errors) and device."""

    model: CollabScorer
    user_map: IdMap
    item_map: IdMap
    encoder: MetadataEncoder | None
    baseline: RatingBaseline | None
    device: torch.device

    @torch.no_grad()
    def predict(
        self,
        pairs: pd.DataFrame,
        user_col: str = "user_id",
        item_col: str = "item_id",
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        unknown: Unknown = "error",
    ) -> RatingPredictions:
        """Predicted ratings for rows of (user, item), and which are baselines.

        A model that reads metadata also scores ids it never saw from their rows in
        ``users`` / ``items`` (same id columns). A pair with an id that is neither
        known nor described raises UnknownIdError naming it (``unknown="error"``), or
        is answered with the global mean plus the known side's offset and flagged
        (``unknown="baseline"``). NoRatingScaleError for a ranking model.
        """
        if self.model.rating_range is None:
            raise NoRatingScaleError(
                f"{type(self.model).__name__} was trained to rank: its scores are not ratings"
            )
        if unknown not in ("error", "baseline"):
            raise ValueError(f"unknown must be error or baseline, not {unknown!r}")
        pairs = pairs.reset_index(drop=True)
        fallback = np.zeros(len(pairs), dtype=bool)
        if unknown == "baseline" and self.baseline is not None:
            fallback = ~self._scorable(pairs[user_col], self.user_map, users, user_col)
            fallback |= ~self._scorable(pairs[item_col], self.item_map, items, item_col)
        ratings = np.empty(len(pairs), dtype=np.float32)
        if fallback.any():
            assert self.baseline is not None
            low, high = self.model.rating_range
            user_index = self.user_map.positions(pairs[user_col][fallback])
            item_index = self.item_map.positions(pairs[item_col][fallback])
            baseline = self.baseline.predict(user_index, item_index)
            ratings[fallback] = np.clip(baseline, low, high)
        if not fallback.all():
            scored = pairs[~fallback]
            ratings[~fallback] = self._predict_scorable(scored, user_col, item_col, users, items)
        return RatingPredictions(ratings, fallback)

    def _scorable(
        self, ids: pd.Series, id_map: IdMap, metadata: pd.DataFrame | None, id_col: str
    ) -> np.ndarray:
        """Which ``ids`` the model can score: known, or described by metadata it reads."""
        scorable = _known(ids, id_map)
        if metadata is not None and self.encoder is not None:
            scorable |= ids.isin(metadata[id_col])
        return scorable.to_numpy()

    def _predict_scorable(
        self,
        pairs: pd.DataFrame,
        user_col: str,
        item_col: str,
        users: pd.DataFrame | None,
        items: pd.DataFrame | None,
    ) -> np.ndarray:
        new_users, user_ids = self._side(pairs[user_col], self.user_map, users, user_col)
        new_items, item_ids = self._side(pairs[item_col], self.item_map, items, item_col)
        as_tensor = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        if new_users is None and new_items is None:
            return self.model.score_pairs(as_tensor(user_ids), as_tensor(item_ids)).cpu().numpy()
        assert self.encoder is not None  # _side refuses unknown ids otherwise
        user_meta = self.encoder.encode_users(new_users if new_users is not None else pairs[[]])
        genres, decades = self.encoder.encode_items(
            new_items if new_items is not None else pairs[[]]
        )
        return (
            self.model.score_with_metadata(
                as_tensor(user_ids),
                as_tensor(user_meta),
                as_tensor(item_ids),
                as_tensor(genres),
                as_tensor(decades),
            )
            .float()
            .cpu()
            .numpy()
        )

    def _side(
        self, ids: pd.Series, id_map: IdMap, metadata: pd.DataFrame | None, id_col: str
    ) -> tuple[pd.DataFrame | None, np.ndarray]:
        """Model indices of ``ids`` (``len(id_map)`` for an unknown one) and, when some are
        unknown, every row's metadata aligned with ``ids``."""
        known = _known(ids, id_map)
        if known.all():
            return None, id_map.indices(ids)
        if metadata is not None and self.encoder is not None:
            unexplained = ids[~known & ~ids.isin(metadata[id_col])]
        else:
            unexplained = ids[~known]
        if len(unexplained):
            raise UnknownIdError(id_map.kind, unexplained.iloc[0])
        indices = np.array(
            [id_map.index(i) if k else len(id_map) for i, k in zip(ids, known, strict=True)],
            dtype=np.int64,
        )
        rows = aligned(metadata, id_col, ids.to_numpy(dtype=object))
        return rows.reset_index(drop=True), indices


def _known(ids: pd.Series, id_map: IdMap) -> pd.Series:
    """Which ``ids`` the map finds (not the ids it holds: a forgotten one is unknown)."""
    return pd.Series(id_map.positions(ids) >= 0, index=ids.index)
