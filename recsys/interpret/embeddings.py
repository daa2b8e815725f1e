"""Read a trained collaborative model: biases, principal components, neighbours, reasons.

Every function takes a :class:`~recsys.recommend.Recommender` (model + id maps)
and, where people need names and counts beside the numbers, a catalog frame
with columns ``item_id``, ``title``, ``n_ratings``, ``mean_rating`` (see
:func:`recsys.data.catalog.read_item_catalog`). Items the model never saw in
training have no embedding and are simply absent from the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from recsys.data.ratings import UnknownIdError
from recsys.recommend import Recommender

DEFAULT_MIN_RATINGS = 20


class NoBiasesError(ValueError):
    """The model has no bias terms (the deep model folds them into its layers)."""


def _with_catalog(frame: pd.DataFrame, catalog: pd.DataFrame | None, key: str) -> pd.DataFrame:
    if catalog is None:
        return frame
    extra = catalog.drop(columns=[c for c in catalog.columns if c in frame and c != key])
    lookup = extra.assign(**{key: extra[key].astype(str)})
    return frame.assign(**{key: frame[key].astype(str)}).merge(lookup, on=key, how="left")


def _biases(recommender: Recommender, side: str) -> np.ndarray:
    table = getattr(recommender.model, f"{side}_bias", None)
    if table is None:
        raise NoBiasesError(
            f"{type(recommender.model).__name__} has no {side} biases; "
            "train a DotProductBias (--model dot) to see them"
        )
    return table.detach().float().cpu().numpy()[:, 0]


def bias_ranking(
    recommender: Recommender,
    catalog: pd.DataFrame | None = None,
    n: int = 10,
    side: str = "item",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` lowest and ``n`` highest learned biases, with the catalog's names and counts.

    A high item bias means people rate the item higher than their taste vectors
    alone predict ("liked even by people who don't usually like this kind of
    film"); a high user bias, someone who rates everything high.
    """
    id_map = recommender.item_map if side == "item" else recommender.user_map
    key = f"{side}_id"
    frame = pd.DataFrame({key: id_map.ids, "bias": _biases(recommender, side)})
    frame = frame.sort_values("bias", kind="stable").reset_index(drop=True)
    lowest = _with_catalog(frame.head(n), catalog, key)
    highest = _with_catalog(frame.iloc[::-1].head(n).reset_index(drop=True), catalog, key)
    return lowest, highest


@dataclass
class ItemMap:
    """Items placed on the principal components of their embeddings."""

    coordinates: pd.DataFrame  # item_id, [catalog columns], pc1..pcK, for every known item
    explained_variance: np.ndarray  # fraction of variance per component
    n_fitted: int  # items the components were fitted on

    def ends(self, component: int, n: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The items at the low and at the high end of component ``component`` (1-based),
        among those the components were fitted on, so obscure items do not name the axes."""
        column = f"pc{component}"
        if column not in self.coordinates:
            raise ValueError(
                f"there are {len(self.explained_variance)} components, not {component}"
            )
        fitted = self.coordinates[self.coordinates["fitted"]].sort_values(column, kind="stable")
        return fitted.head(n), fitted.iloc[::-1].head(n)


def item_pca(
    recommender: Recommender,
    catalog: pd.DataFrame | None = None,
    n_components: int = 3,
    min_ratings: int = DEFAULT_MIN_RATINGS,
) -> ItemMap:
    """PCA of item embeddings, fitted on items with at least ``min_ratings`` ratings.

    Rarely rated items have embeddings that are mostly their initial noise plus
    weight decay; left in, they would decide the directions. Every known item
    still gets coordinates.
    """
    embeddings = recommender.model.item_embeddings().float().cpu().numpy()
    frame = _with_catalog(pd.DataFrame({"item_id": recommender.item_map.ids}), catalog, "item_id")
    if "n_ratings" in frame:
        fitted = frame["n_ratings"].fillna(0).to_numpy() >= min_ratings
    else:
        fitted = np.ones(len(frame), dtype=bool)
    n_components = min(n_components, embeddings.shape[1])
    if fitted.sum() <= n_components:
        raise ValueError(
            f"only {int(fitted.sum())} items have at least {min_ratings} ratings; "
            f"lower min_ratings to fit {n_components} components on more items than that"
        )
    pca = PCA(n_components=n_components, random_state=0).fit(embeddings[fitted])
    projected = pca.transform(embeddings)
    for k in range(n_components):
        frame[f"pc{k + 1}"] = projected[:, k]
    frame["fitted"] = fitted
    return ItemMap(frame, pca.explained_variance_ratio_, int(fitted.sum()))


def similar_items(
    recommender: Recommender,
    item_id: object,
    n: int = 10,
    catalog: pd.DataFrame | None = None,
    min_ratings: int = 0,
) -> pd.DataFrame:
    """The ``n`` nearest items by cosine similarity of embeddings, with catalog columns.

    ``min_ratings`` leaves out neighbours with fewer ratings in the catalog: an item
    rated once has an embedding that says little, yet can land close to anything.
    """
    if min_ratings <= 0 or catalog is None:
        return _with_catalog(recommender.similar_items(item_id, n), catalog, "item_id")
    everything = _with_catalog(
        recommender.similar_items(item_id, len(recommender.item_map)), catalog, "item_id"
    )
    popular = everything[everything["n_ratings"].fillna(0) >= min_ratings]
    return popular.head(n).reset_index(drop=True)


def explain(
    recommender: Recommender,
    user_ratings: pd.DataFrame,
    item_id: object,
    n: int = 3,
    liked_at: float = 4.0,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Why ``item_id`` suits this user: the items they rated ``liked_at`` or more that
    are most similar to it ("because you liked ..."), best first.

    ``user_ratings`` has columns ``item_id`` and ``rating``; items the model does
    not know are ignored. Empty when the user liked nothing the model knows.
    """
    target = recommender.item_map.index(item_id)
    liked = user_ratings[user_ratings["rating"] >= liked_at]
    known = [i for i in liked["item_id"] if i in recommender.item_map and i != item_id]
    if not known:
        return pd.DataFrame(columns=["item_id", "rating", "similarity"])
    indices = torch.from_numpy(recommender.item_map.indices(known))
    units = recommender.unit_item_embeddings()
    similarity = (units[indices.to(units.device)] @ units[target]).cpu().numpy()
    ratings = dict(zip(liked["item_id"], liked["rating"], strict=True))
    frame = pd.DataFrame(
        {"item_id": known, "rating": [ratings[i] for i in known], "similarity": similarity}
    )
    frame = frame.sort_values("similarity", ascending=False, kind="stable").head(n)
    return _with_catalog(frame.reset_index(drop=True), catalog, "item_id")


def find_items(catalog: pd.DataFrame, query: str) -> pd.DataFrame:
    """Items named by ``query``: an exact external id, else a case-insensitive title substring."""
    exact = catalog[catalog["item_id"].astype(str) == str(query)]
    if len(exact):
        return exact
    titles = catalog["title"].fillna("").str.lower()
    return catalog[titles.str.contains(query.lower(), regex=False)]


def resolve_item(catalog: pd.DataFrame, query: str, limit: int = 10) -> object:
    """The one item ``query`` names; an error that lists the candidates when it is ambiguous."""
    matches = find_items(catalog, query)
    if len(matches) == 1:
        return matches["item_id"].iloc[0]
    if len(matches) == 0:
        raise UnknownIdError("item", query)
    listed = "; ".join(f"{row.item_id}: {row.title}" for row in matches.head(limit).itertuples())
    more = f" and {len(matches) - limit} more" if len(matches) > limit else ""
    raise AmbiguousItemError(
        f"{query!r} matches {len(matches)} items: {listed}{more}; use an id or a longer title"
    )


class AmbiguousItemError(ValueError):
    """A title search that matched several items."""
