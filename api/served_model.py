"""One model version as the service holds it: the Recommender and the tables around it.

Everything a request needs besides the Recommender is built once — the item
catalog at load, each item's JSON entry by model index and the explorer map at load
for the model whose role needs them (else at first use), genre masks at first use —
so answering is a call into the library plus joining bytes, with no database
round-trip. No recommendation logic lives here: the Recommender decides
what to recommend; this module only names and describes what it returns.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd
import torch
from sqlalchemy import Engine

from api.recommendation_json import ItemFragments
from recsys.interpret.embeddings import bias_ranking, item_pca
from recsys.jobs.model_versions import ModelVersion
from recsys.models.scorer import NoBiasesError
from recsys.serving.loading import DatabaseReads, ServedVersion, load_version

# How many genre filters a served model keeps (a byte per item each: 100 KiB at 100k items).
GENRE_MASKS_KEPT = 64


@dataclass
class ServedModel(ServedVersion):
    """A model version ready to answer requests: the library's served version (its
    Recommender and the catalog of every item in the database) with what the service's
    answers are made of."""

    _genre_masks: OrderedDict[str, torch.Tensor] = field(default_factory=OrderedDict)
    # The loop and the thread pool both ask for masks: the eviction must not interleave.
    _genre_masks_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(
        cls, engine: Engine, version: ModelVersion, reads: DatabaseReads | None = None
    ) -> ServedModel:
        """Load ``version`` as the library serves it (``reads``: the database reads shared
        with the other models loaded at the same time)."""
        served = load_version(engine, version, reads=reads)
        return cls(served.version, served.recommender, served.catalog)

    # Built at their first use, and kept. The service builds each for the model whose
    # role needs it when it loads (see ServiceState.follow_registry), not for every model:
    # at 100,000 items they are 25 MB (fragments) and 13 MB (the map) of each worker.
    @cached_property
    def fragments(self) -> ItemFragments:
        """By model item index: the JSON of its recommendation entry."""
        model_items = self.catalog.aligned(self.recommender.item_map.ids)
        return ItemFragments(
            self.recommender.item_map.ids,
            [t if isinstance(t, str) else None for t in model_items["title"]],
            list(model_items["genres"]),
        )

    @cached_property
    def _item_map(self) -> tuple[pd.DataFrame, list[float]]:
        """Per model item: pc1..pc3, bias, title, genres, n_ratings; and the variance
        each component explains."""
        recommender = self.recommender
        model_items = self.catalog.aligned(recommender.item_map.ids)
        fit_on = 20 if (model_items["n_ratings"] >= 20).sum() > 3 else 0
        item_map = item_pca(recommender, model_items, n_components=3, min_ratings=fit_on)
        explorer = item_map.coordinates.copy()
        try:
            lowest, _ = bias_ranking(recommender, n=len(model_items))
            explorer = explorer.merge(
                lowest[["item_id", "bias"]].astype({"item_id": str}), on="item_id", how="left"
            )
        except NoBiasesError:
            explorer["bias"] = None
        return explorer, [float(v) for v in item_map.explained_variance]

    @property
    def explorer(self) -> pd.DataFrame:
        return self._item_map[0]

    @property
    def explained_variance(self) -> list[float]:
        return self._item_map[1]

    def genre_mask(self, genres: Sequence[str] | None) -> torch.Tensor | None:
        """The model items of any of ``genres`` (None or empty: no filter);
        UnknownGenreError for a genre no item has. Built on first use, then kept: the
        ``GENRE_MASKS_KEPT`` most recently used sets, since every distinct set a client
        sends costs a byte per item."""
        if not genres:
            return None
        key = ",".join(sorted({self.catalog.genre(genre).lower() for genre in genres}))
        with self._genre_masks_lock:
            mask = self._genre_masks.get(key)
            if mask is not None:
                self._genre_masks.move_to_end(key)
                return mask
        mask = super().genre_mask(genres)
        with self._genre_masks_lock:
            self._genre_masks[key] = mask  # type: ignore[assignment]  # genres given: a mask
            while len(self._genre_masks) > GENRE_MASKS_KEPT:
                self._genre_masks.popitem(last=False)
        return mask

    def hide(self, item_ids: frozenset[str]) -> None:
        """Hidden items leave every answer: recommendations, similar items, popular."""
        self.recommender.hide(item_ids)
        self.catalog.hide(item_ids)

    def visible_explorer(self) -> pd.DataFrame:
        """The explorer map without hidden or deleted items."""
        return self.explorer[~self.explorer["item_id"].isin(list(self.catalog.unlisted))]
