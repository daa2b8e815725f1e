"""What the service holds in memory: the active model and the tables around it.

Everything a request needs is built once when a model is loaded — the item
catalog, genre masks, popularity, each user's seen and liked items, the explorer
map — so that answering is a matrix product and a partial sort, with no
database round-trip. Feedback updates the seen and liked sets in place.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sqlalchemy import Engine

from recsys.collab import load_recommender
from recsys.data.catalog import read_item_catalog
from recsys.data.ratings import read_ratings
from recsys.interpret.embeddings import NoBiasesError, bias_ranking, item_pca
from recsys.recommend import HybridRecommender, Recommender
from recsys.registry import OBJECTIVES, ModelVersion, active_version

LIKED_AT = 4.0
logger = logging.getLogger("recsys.api")


@dataclass
class LoadedModel:
    """One model version, ready to answer requests."""

    version: ModelVersion
    recommender: Recommender
    catalog: pd.DataFrame  # item_id (str) -> title, genres, n_ratings, mean_rating; all items
    model_catalog: pd.DataFrame  # the same, one row per model item index, in index order
    genre_masks: dict[str, torch.Tensor]  # lower-case genre -> bool mask over model items
    genre_names: dict[str, str]  # lower-case genre -> as spelled in the data
    popular: list[str]  # catalog item ids, most rated first
    explorer: pd.DataFrame  # per model item: pc1..pc3, bias, title, genres, n_ratings
    explained_variance: list[float]
    item_titles: list[str | None] = field(default_factory=list)  # by model item index
    item_genres: list[list[str]] = field(default_factory=list)  # by model item index
    seen: dict[int, set[int]] = field(default_factory=dict)  # user index -> item indices
    liked: dict[int, set[int]] = field(default_factory=dict)  # rated LIKED_AT or more
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, engine: Engine, version: ModelVersion) -> LoadedModel:
        recommender = load_recommender(version.artifact_path)
        catalog = read_item_catalog(engine)
        catalog["item_id"] = catalog["item_id"].astype(str)
        catalog["genres"] = catalog["genres"].apply(lambda g: list(g) if g else [])
        by_id = catalog.set_index("item_id", drop=False)
        model_ids = [str(i) for i in recommender.item_map.ids]
        model_catalog = by_id.reindex(model_ids).reset_index(drop=True)
        model_catalog["item_id"] = model_ids

        genre_names: dict[str, str] = {}
        for genres in catalog["genres"]:
            for genre in genres:
                genre_names.setdefault(genre.lower(), genre)
        genre_masks = {
            key: torch.tensor([name in (g or []) for g in model_catalog["genres"]])
            for key, name in genre_names.items()
        }
        popular = catalog.sort_values(["n_ratings", "mean_rating"], ascending=False, kind="stable")[
            "item_id"
        ].tolist()

        fit_on = 20 if (model_catalog["n_ratings"].fillna(0) >= 20).sum() > 3 else 0
        item_map = item_pca(recommender, model_catalog, n_components=3, min_ratings=fit_on)
        explorer = item_map.coordinates.copy()
        try:
            lowest, _ = bias_ranking(recommender, n=len(model_ids))
            explorer = explorer.merge(
                lowest[["item_id", "bias"]].astype({"item_id": str}), on="item_id", how="left"
            )
        except NoBiasesError:
            explorer["bias"] = None

        loaded = cls(
            version,
            recommender,
            by_id,
            model_catalog,
            genre_masks,
            genre_names,
            popular,
            explorer,
            [float(v) for v in item_map.explained_variance],
        )
        # Plain lists for the request path: indexing pandas per item costs more than scoring.
        loaded.item_titles = [title_or_none(t) for t in model_catalog["title"]]
        loaded.item_genres = [
            list(g) if isinstance(g, list) else [] for g in model_catalog["genres"]
        ]
        loaded._index_ratings(engine)
        return loaded

    def _index_ratings(self, engine: Engine) -> None:
        """Seen and liked sets from every rating in the database, in model indices."""
        table = read_ratings(engine)
        user_lookup = np.array([self._user_index(u) for u in table.user_map.ids], dtype=np.int64)
        item_lookup = np.array([self._item_index(i) for i in table.item_map.ids], dtype=np.int64)
        users = user_lookup[table.users.numpy()] if len(table) else np.empty(0, np.int64)
        items = item_lookup[table.items.numpy()] if len(table) else np.empty(0, np.int64)
        known = (users >= 0) & (items >= 0)
        liked = known & (table.ratings.numpy() >= LIKED_AT)
        for user, item in zip(users[known], items[known], strict=True):
            self.seen.setdefault(int(user), set()).add(int(item))
        for user, item in zip(users[liked], items[liked], strict=True):
            self.liked.setdefault(int(user), set()).add(int(item))

    def _user_index(self, user_id: object) -> int:
        key = str(user_id)
        return self.recommender.user_map.index(key) if key in self.recommender.user_map else -1

    def _item_index(self, item_id: object) -> int:
        key = str(item_id)
        return self.recommender.item_map.index(key) if key in self.recommender.item_map else -1

    def record_feedback(self, rows: pd.DataFrame) -> None:
        """Add new ratings to the seen/liked sets, so they count from the next request."""
        with self.lock:
            for row in rows.itertuples():
                user, item = self._user_index(row.user_id), self._item_index(row.item_id)
                if user < 0 or item < 0:
                    continue
                self.seen.setdefault(user, set()).add(item)
                if row.rating >= LIKED_AT:
                    self.liked.setdefault(user, set()).add(item)
                else:
                    self.liked.get(user, set()).discard(item)


class ServiceState:
    """The loaded models, one per objective (none before the first training run).

    The rating model answers rating predictions, similar items and the explorer;
    recommendations come from the ranking model when one is active (unless
    ``recommend_with`` is ``rating``). Either stands in for the other when it is
    the only one. Swapping is one dictionary assignment: a request holds the
    LoadedModel it started with, so requests in flight finish on the old model
    and new ones get the new model; nothing waits and nothing fails during a swap.
    """

    def __init__(self, recommend_with: str = "ranking") -> None:
        self.models: dict[str, LoadedModel] = {}
        self.recommend_with = recommend_with
        self.refused: set[int] = set()  # versions whose weights did not load

    @property
    def model(self) -> LoadedModel | None:
        """The rating model (predictions, similar items, explorer), else the ranking one."""
        return self.models.get("rating") or self.models.get("ranking")

    @property
    def recommender(self) -> LoadedModel | None:
        """The model that answers recommendations."""
        if self.recommend_with == "ranking" and "ranking" in self.models:
            return self.models["ranking"]
        return self.model

    @property
    def metadata_model(self) -> LoadedModel | None:
        """A loaded hybrid model (the recommending one first), for users it never saw."""
        for model in (self.recommender, self.models.get("rating")):
            if model is not None and isinstance(model.recommender, HybridRecommender):
                return model
        return None

    def load_active(self, engine: Engine) -> None:
        self.models = {}
        for objective in OBJECTIVES:
            version = active_version(engine, objective)
            if version is not None:
                self.models[objective] = LoadedModel.load(engine, version)

    def follow_registry(self, engine: Engine) -> bool:
        """Load each objective's active version if it is not the one served; True if swapped.

        A version whose weights fail to load is logged, remembered and skipped; the
        current model keeps serving.
        """
        swapped = False
        for objective in OBJECTIVES:
            version = active_version(engine, objective)
            current = self.models.get(objective)
            served = current.version.id if current is not None else None
            if version is None or version.id == served or version.id in self.refused:
                continue
            try:
                self.models[objective] = LoadedModel.load(engine, version)
            except Exception:
                self.refused.add(version.id)
                logger.exception(
                    "%s model version %s could not be loaded; still serving %s",
                    objective,
                    version.id,
                    served,
                )
                continue
            logger.info("now serving %s model version %s (was %s)", objective, version.id, served)
            swapped = True
        return swapped

    def record_feedback(self, rows: pd.DataFrame) -> None:
        """New ratings count as seen (and liked) in every loaded model at once."""
        for model in list(self.models.values()):
            model.record_feedback(rows)


class UnknownGenreError(ValueError):
    """A genre filter that no item has."""


def title_or_none(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def recommend(
    model: LoadedModel, user_id: str, n: int, exclude_seen: bool, genre: str | None
) -> list[dict]:
    """Top-``n`` items for a known user, genre-filtered before the cut, with a reason each."""
    user = model.recommender.user_map.index(user_id)
    scores = model.recommender.model.score_all_items(torch.tensor([user]))[0].float().clone()
    with model.lock:
        seen = list(model.seen.get(user, ())) if exclude_seen else []
        liked = list(model.liked.get(user, ()))
    return top_items(model, scores, n, genre, seen, liked)


def recommend_from_profile(
    model: LoadedModel, profile: dict, n: int, genre: str | None, rated: set[str]
) -> list[dict]:
    """Top-``n`` items for a user the model never saw, from their metadata (hybrid models)."""
    recommender: HybridRecommender = model.recommender  # type: ignore[assignment]
    scores = recommender.score_new_user(profile)
    seen = [model._item_index(i) for i in rated]
    liked: list[int] = []
    return top_items(model, scores, n, genre, [i for i in seen if i >= 0], liked)


def top_items(
    model: LoadedModel,
    scores: torch.Tensor,
    n: int,
    genre: str | None,
    seen: list[int],
    liked: list[int],
) -> list[dict]:
    """The best-scored items outside ``seen``, each with the liked item most like it."""
    if genre is not None:
        scores[~genre_mask(model, genre)] = -torch.inf
    if seen:
        scores[torch.tensor(seen)] = -torch.inf
    top_scores, top_items = torch.topk(scores, min(n, len(scores)))
    keep = torch.isfinite(top_scores)
    top_scores, top_items = top_scores[keep], top_items[keep]
    items, scores_out = top_items.tolist(), top_scores.tolist()
    because: list[str | None] = [None] * len(items)
    if liked and items:
        units = model.recommender.unit_item_embeddings()
        similarity = units[top_items] @ units[torch.tensor(liked)].T  # (n, liked)
        because = [model.item_titles[liked[c]] for c in similarity.argmax(dim=1).tolist()]
    ids = model.recommender.item_map.ids
    return [
        {
            "item_id": str(ids[item]),
            "title": model.item_titles[item],
            "genres": model.item_genres[item],
            "score": score,
            "because_you_liked": reason,
        }
        for item, score, reason in zip(items, scores_out, because, strict=True)
    ]


def genre_mask(model: LoadedModel, genre: str) -> torch.Tensor:
    key = genre.lower()
    if key not in model.genre_masks:
        known = ", ".join(sorted(model.genre_names.values()))
        raise UnknownGenreError(f"unknown genre {genre!r}; known genres: {known}")
    return model.genre_masks[key]


def popular(
    model: LoadedModel, n: int, genre: str | None, exclude: set[str] = frozenset()
) -> list[dict]:
    """The most-rated items (optionally of one genre), the cold-start answer."""
    if genre is not None:
        genre_mask(model, genre)  # validates the name
        name = model.genre_names[genre.lower()]
    rows = []
    for item_id in model.popular:
        if item_id in exclude:
            continue
        row = model.catalog.loc[item_id]
        if genre is not None and name not in (row.genres or []):
            continue
        rows.append(
            {
                "item_id": item_id,
                "title": title_or_none(row.title),
                "genres": row.genres or [],
                "n_ratings": int(row.n_ratings),
                "mean_rating": None if pd.isna(row.mean_rating) else float(row.mean_rating),
            }
        )
        if len(rows) == n:
            break
    return rows
