"""Interpretation functions on a hand-built model whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.collab import Interactions, Recommender
from recsys.data.ids import IdMap, UnknownIdError
from recsys.interpret.embeddings import (
    AmbiguousItemError,
    bias_ranking,
    find_items,
    item_pca,
    resolve_item,
    with_catalog,
)
from recsys.interpret.plots import plot_biases, plot_item_map
from recsys.models import (
    DotProductBias,
    DotProductBiasConfig,
    EmbeddingNN,
    EmbeddingNNConfig,
    NoBiasesError,
)

ITEM_FACTORS = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.05]]
ITEM_BIASES = [0.5, -0.2, 0.1, 0.0, -0.6]
CATALOG = pd.DataFrame(
    {
        "item_id": ["i0", "i1", "i2", "i3", "i4"],
        "title": [
            "Space Saga (1977)",
            "Space Saga II (1980)",
            "Quiet Drama (1990)",
            "Loud Drama (1991)",
            "Bad Sequel (1995)",
        ],
        "n_ratings": [300, 250, 40, 35, 2],
        "mean_rating": [4.4, 4.1, 3.6, 3.5, 1.5],
    }
)


def hand_built() -> Recommender:
    model = DotProductBias(DotProductBiasConfig(n_users=2, n_items=5, n_factors=2))
    with torch.no_grad():
        model.item_factors.copy_(torch.tensor(ITEM_FACTORS))
        model.item_bias.copy_(torch.tensor(ITEM_BIASES).unsqueeze(1))
        model.user_factors.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        model.user_bias.copy_(torch.tensor([[0.3], [-0.3]]))
    # u0 liked i1 and i3 and disliked i4; u1 liked i2 and disliked i1.
    seen = Interactions.from_ratings(
        np.array([0, 0, 0, 1, 1]),
        np.array([1, 3, 4, 2, 1]),
        np.array([5.0, 4.0, 1.0, 5.0, 2.0]),
        n_users=2,
        n_items=5,
    )
    return Recommender(
        model,
        IdMap("user", np.array(["u0", "u1"], dtype=object)),
        IdMap("item", np.array(CATALOG["item_id"], dtype=object)),
        seen,
    )


def test_bias_ranking_orders_items_and_carries_titles_and_counts() -> None:
    lowest, highest = bias_ranking(hand_built(), CATALOG, n=2)
    assert list(lowest["item_id"]) == ["i4", "i1"]
    assert list(highest["item_id"]) == ["i0", "i2"]
    assert highest["title"].iloc[0] == "Space Saga (1977)"
    assert highest["bias"].iloc[0] == pytest.approx(0.5)
    assert list(highest.columns) == ["item_id", "bias", "title", "n_ratings", "mean_rating"]


def test_bias_ranking_with_n_larger_than_the_catalog_returns_everything() -> None:
    lowest, highest = bias_ranking(hand_built(), n=50)
    assert len(lowest) == len(highest) == 5


def test_user_biases_rank_users() -> None:
    lowest, highest = bias_ranking(hand_built(), n=1, side="user")
    assert (lowest["user_id"].iloc[0], highest["user_id"].iloc[0]) == ("u1", "u0")


def test_a_model_without_biases_says_so() -> None:
    model = EmbeddingNN(EmbeddingNNConfig(n_users=2, n_items=5))
    recommender = Recommender(
        model,
        IdMap("user", np.array(["a", "b"], dtype=object)),
        IdMap("item", np.array(CATALOG["item_id"], dtype=object)),
        Interactions.from_ratings(np.array([]), np.array([]), None, n_users=2, n_items=5),
    )
    with pytest.raises(NoBiasesError, match="EmbeddingNN has no biases"):
        bias_ranking(recommender)
    assert len(recommender.similar_items("i0", n=2)) == 2  # embeddings still work


def test_pca_puts_the_two_kinds_of_item_at_opposite_ends_of_the_first_component() -> None:
    item_map = item_pca(hand_built(), CATALOG, n_components=2, min_ratings=30)

    assert item_map.n_fitted == 4  # i4, with 2 ratings, does not shape the axes
    assert len(item_map.coordinates) == 5  # but still gets coordinates
    assert item_map.explained_variance[0] > 0.9
    low, high = item_map.ends(1, n=2)
    assert {frozenset(low["item_id"]), frozenset(high["item_id"])} == {
        frozenset({"i0", "i1"}),
        frozenset({"i2", "i3"}),
    }
    with pytest.raises(ValueError, match="2 components, not 3"):
        item_map.ends(3)


def test_pca_refuses_when_too_few_items_are_popular_enough() -> None:
    with pytest.raises(ValueError, match="only 2 items have at least 100 ratings"):
        item_pca(hand_built(), CATALOG, min_ratings=100)


def test_similar_items_finds_the_sequel_and_never_the_item_itself() -> None:
    neighbours = with_catalog(hand_built().similar_items("i0", n=10).frame(), CATALOG)
    assert neighbours["item_id"].iloc[0] == "i1"
    assert neighbours["title"].iloc[0] == "Space Saga II (1980)"
    assert "i0" not in set(neighbours["item_id"])
    assert len(neighbours) == 4  # the catalog is smaller than n
    assert list(neighbours["score"]) == sorted(neighbours["score"], reverse=True)
    # Only i1 has two ratings among the interactions the recommender holds.
    assert list(hand_built().similar_items("i2", n=10, min_ratings=2).item_ids) == ["i1"]
    with pytest.raises(UnknownIdError, match="unknown item id 'i9'"):
        hand_built().similar_items("i9")


def test_explanations_are_the_users_liked_items_closest_to_the_recommendation() -> None:
    reasons = hand_built().explain("u0", "i0", n=5)
    assert list(reasons.item_ids) == ["i1", "i3"]  # i4 was disliked
    assert reasons.scores[0] > reasons.scores[1]
    assert len(hand_built().explain("u1", "i2")) == 0  # an item never explains itself
    with pytest.raises(UnknownIdError):
        hand_built().explain("u0", "i9")


def test_feedback_counts_as_seen_and_liked_from_the_next_call() -> None:
    recommender = hand_built()
    assert "i0" in set(recommender.recommend("u0", n=5).item_ids)
    recommender.add_feedback(
        pd.DataFrame(
            {
                "user_id": ["u0", "u0", "stranger"],
                "item_id": ["i0", "i1", "i0"],
                "rating": [4.5, 2.0, 5.0],
            }
        )
    )
    assert "i0" not in set(recommender.recommend("u0", n=5).item_ids)
    assert list(recommender.explain("u0", "i2", n=5).item_ids) == ["i3", "i0"]  # i1 unliked


def test_items_are_found_by_id_or_title_and_ambiguity_lists_the_candidates() -> None:
    assert resolve_item(CATALOG, "i3") == "i3"
    assert resolve_item(CATALOG, "quiet") == "i2"
    assert len(find_items(CATALOG, "DRAMA")) == 2
    with pytest.raises(
        AmbiguousItemError, match=r"'saga' matches 2 items: i0: Space Saga \(1977\); i1"
    ):
        resolve_item(CATALOG, "saga")
    with pytest.raises(UnknownIdError, match="unknown item id 'western'"):
        resolve_item(CATALOG, "western")


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    recommender = hand_built()
    map_png = plot_item_map(item_pca(recommender, CATALOG, 2, min_ratings=0), tmp_path / "map.png")
    bias_png = plot_biases(*bias_ranking(recommender, CATALOG, 2), tmp_path / "biases.png")
    for path in (map_png, bias_png):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5_000
