"""One model version as the service holds it: the Recommender and the tables around it.

Everything a request needs besides the Recommender is built once per load — the
item catalog, each item's JSON entry by model index, genre masks, the explorer
map — so answering is a call into the library plus joining bytes, with no
database round-trip. No recommendation logic lives here: the Recommender decides
what to recommend; this module only names and describes what it returns.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

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

    fragments: ItemFragments  # by model item index: the JSON of its recommendation entry
    explorer: pd.DataFrame  # per model item: pc1..pc3, bias, title, genres, n_ratings
    explained_variance: list[float]
    _genre_masks: OrderedDict[str, torch.Tensor] = field(default_factory=OrderedDict)
    # The loop and the thread pool both ask for masks: the eviction must not interleave.
    _genre_masks_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(
        cls, engine: Engine, version: ModelVersion, reads: DatabaseReads | None = None
    ) -> ServedModel:
        """Load ``version`` as the library serves it (``reads``: the database reads shared
        with the other models loaded at the same time)."""
        return cls.around(load_version(engine, version, reads=reads))

    @classmethod
    def around(cls, served: ServedVersion) -> ServedModel:
        """The served version with the item fragments and explorer map built once."""
        recommender, catalog = served.recommender, served.catalog
        model_items = catalog.aligned(recommender.item_map.ids)
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
        return cls(
            served.version,
            recommender,
            catalog,
            ItemFragments(
                recommender.item_map.ids,
                [t if isinstance(t, str) else None for t in model_items["title"]],
                list(model_items["genres"]),
            ),
            explorer,
            [float(v) for v in item_map.explained_variance],
        )

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
        """The explorer map without hidden items."""
        return self.explorer[~self.explorer["item_id"].isin(list(self.catalog.hidden))]
