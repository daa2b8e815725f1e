"""Read a trained collaborative model: biases and principal components, with names.

Every function takes a :class:`~recsys.collab.recommender.Recommender` (model + id
maps) and, where people need names and counts beside the numbers, a catalog frame
with columns ``item_id``, ``title``, ``n_ratings``, ``mean_rating`` (see
:func:`recsys.data.catalog.read_item_catalog`). Items the model never saw in
training have no embedding and are simply absent from the outputs. Neighbours and
"because you liked" reasons are the Recommender's own (``similar_items``,
``explain``); :func:`with_catalog` puts names beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.collab.recommender import Recommender
from recsys.data.ids import UnknownIdError

DEFAULT_MIN_RATINGS = 20


def with_catalog(
    frame: pd.DataFrame, catalog: pd.DataFrame | None, key: str = "item_id"
) -> pd.DataFrame:
    """``frame`` with the catalog's columns (title, counts, ...) joined on ``key`` as text."""
    if catalog is None:
        return frame
    extra = catalog.drop(columns=[c for c in catalog.columns if c in frame and c != key])
    lookup = extra.assign(**{key: extra[key].astype(str)})
    return frame.assign(**{key: frame[key].astype(str)}).merge(lookup, on=key, how="left")


def bias_ranking(
    recommender: Recommender,
    catalog: pd.DataFrame | None = None,
    n: int = 10,
    side: str = "item",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` lowest and ``n`` highest learned biases, with the catalog's names and counts.

    A high item bias means people rate the item higher than their taste vectors
    alone predict ("liked even by people who don't usually like this kind of
    film"); a high user bias, someone who rates everything high. NoBiasesError for
    a model without biases.
    """
    id_map = recommender.item_map if side == "item" else recommender.user_map
    key = f"{side}_id"
    user_biases, item_biases = recommender.model.biases()
    biases = item_biases if side == "item" else user_biases
    frame = pd.DataFrame({key: id_map.ids, "bias": biases.float().cpu().numpy()})
    if id_map.present is not None:  # erased users and deleted items are not listed
        frame = frame[id_map.present]
    frame = frame.sort_values("bias", kind="stable").reset_index(drop=True)
    lowest = with_catalog(frame.head(n), catalog, key)
    highest = with_catalog(frame.iloc[::-1].head(n).reset_index(drop=True), catalog, key)
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
    still gets coordinates; deleted ones (see Recommender.forget) are left out.
    """
    embeddings = recommender.model.item_embeddings().float().cpu().numpy()
    frame = with_catalog(pd.DataFrame({"item_id": recommender.item_map.ids}), catalog, "item_id")
    if "n_ratings" in frame:
        fitted = frame["n_ratings"].fillna(0).to_numpy() >= min_ratings
    else:
        fitted = np.ones(len(frame), dtype=bool)
    present = recommender.item_map.present
    if present is not None:
        fitted &= present
    n_components = min(n_components, embeddings.shape[1])
    if fitted.sum() <= n_components:
        raise ValueError(
            f"only {int(fitted.sum())} items have at least {min_ratings} ratings; "
            f"lower min_ratings to fit {n_components} components on more items than that"
        )
    # numpy's SVD, not scikit-learn's PCA: a serving worker builds this map at start,
    # and importing scikit-learn cost each worker 100 MB of private memory.
    mean = embeddings[fitted].mean(axis=0)
    _, singular, directions = np.linalg.svd(embeddings[fitted] - mean, full_matrices=False)
    directions = directions[:n_components]
    # A direction's sign is arbitrary: its largest coordinate is made positive, so that
    # the same model always draws the same map.
    largest = np.abs(directions).argmax(axis=1)
    directions *= np.sign(directions[np.arange(n_components), largest])[:, None]
    projected = (embeddings - mean) @ directions.T
    for k in range(n_components):
        frame[f"pc{k + 1}"] = projected[:, k]
    frame["fitted"] = fitted
    if present is not None:
        frame = frame[present].reset_index(drop=True)
    variance = singular**2
    return ItemMap(frame, variance[:n_components] / variance.sum(), int(fitted.sum()))


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
