"""Approximate search for big catalogs: nearly the exact answer, by the same rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.collab.ann_index import ItemIndex, build_beside, index_path
from recsys.collab.interactions import Interactions
from recsys.collab.recommender import Recommender
from recsys.data.ids import IdMap
from recsys.models import DotProductBias, DotProductBiasConfig
from recsys.models.ease import History, fit_ease
from recsys.models.two_tower import TwoTower, TwoTowerConfig

N_USERS, N_ITEMS = 200, 3_000


def recommender(model: torch.nn.Module) -> Recommender:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(N_USERS), 30)
    items = rng.integers(0, N_ITEMS, len(users))
    seen = Interactions.from_ratings(
        users, items, np.full(len(users), 5.0, np.float32), N_USERS, N_ITEMS
    )
    return Recommender(
        model,  # type: ignore[arg-type]
        IdMap("user", np.array([f"u{u}" for u in range(N_USERS)], dtype=object)),
        IdMap("item", np.array([f"i{i}" for i in range(N_ITEMS)], dtype=object)),
        seen,
    )


def dot_model() -> DotProductBias:
    torch.manual_seed(0)
    model = DotProductBias(DotProductBiasConfig(N_USERS, N_ITEMS, 16, y_range=(0.0, 5.5)))
    with torch.no_grad():
        model.user_factors.normal_()
        model.item_factors.normal_()
        model.item_bias.normal_()
    return model


def tower_model() -> TwoTower:
    torch.manual_seed(0)
    model = TwoTower(TwoTowerConfig(N_USERS, N_ITEMS, 16, layers=(32,)))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(std=0.5)
    return model.eval()


@pytest.mark.parametrize("make", [dot_model, tower_model])
def test_the_index_finds_nearly_the_exact_top_ten_by_the_same_rules(make) -> None:
    exact = recommender(make())
    approximate = recommender(exact.model)
    approximate.use_index(ItemIndex.build(exact.model))
    users = [f"u{u}" for u in range(N_USERS)]
    hide, leave_out = ["i5", "i77"], ["i9"]
    for recommending in (exact, approximate):
        recommending.hide(hide)
    truth = exact.recommend_many(users, 10, exclude=leave_out)
    found = approximate.recommend_many(users, 10, exclude=leave_out)
    recall = np.mean(
        [len(set(a.item_ids) & set(t.item_ids)) / 10 for a, t in zip(found, truth, strict=True)]
    )
    assert recall >= 0.95
    for user, answer, expected in zip(users, found, truth, strict=True):
        rated = set(exact.item_map.ids[exact.seen.seen(exact.user_map.index(user))])
        assert rated.isdisjoint(answer.item_ids)
        assert set(hide + leave_out).isdisjoint(answer.item_ids)
        assert np.all(np.diff(answer.scores) <= 0)  # best first, exact scores
        common = set(answer.item_ids) & set(expected.item_ids)
        for item in common:  # the same score as the exact path gives it
            assert answer.scores[list(answer.item_ids).index(item)] == pytest.approx(
                expected.scores[list(expected.item_ids).index(item)], rel=1e-5
            )
    pages = approximate.recommend_many(users[:20], 5, offset=5)
    firsts = approximate.recommend_many(users[:20], 10)
    for page, first in zip(pages, firsts, strict=True):
        assert list(page.item_ids) == list(first.item_ids[5:])


def test_a_genre_filter_searches_exactly() -> None:
    exact = recommender(dot_model())
    approximate = recommender(exact.model)
    approximate.use_index(ItemIndex.build(exact.model))
    allowed = [f"i{i}" for i in range(0, N_ITEMS, 7)]
    for user in ("u0", "u3"):
        a = approximate.recommend_many([user], 10, allowed=allowed)[0]
        t = exact.recommend_many([user], 10, allowed=allowed)[0]
        assert list(a.item_ids) == list(t.item_ids)


def test_the_index_lives_beside_the_artifact_and_only_for_models_it_can_search(
    tmp_path: Path,
) -> None:
    artifact = tmp_path / "7-ranking-dot.pt"
    assert build_beside(dot_model(), artifact, min_items=N_ITEMS + 1) is None  # too small
    path = build_beside(dot_model(), artifact, min_items=N_ITEMS)
    assert path == index_path(artifact) == tmp_path / "7-ranking-dot.faiss"
    assert ItemIndex.load(path).n_items == N_ITEMS
    ease = fit_ease(History.from_ratings(np.array([0, 1]), np.array([0, 1]), 2), 2)
    assert build_beside(ease, artifact, min_items=1) is None  # not inner products
    with pytest.raises(ValueError, match="the index holds 3,000 items, the model 2"):
        Recommender(
            ease,
            IdMap("user", np.array(["a", "b"], dtype=object)),
            IdMap("item", np.array(["x", "y"], dtype=object)),
            Interactions.from_ratings(np.array([0]), np.array([0]), np.ones(1), 2, 2),
        ).use_index(ItemIndex.load(path))


def test_a_lazy_index_knows_its_size_at_once_and_reads_the_graph_at_its_first_search(
    tmp_path: Path,
) -> None:
    path = build_beside(dot_model(), tmp_path / "7-ranking-dot.pt", min_items=N_ITEMS)
    assert path is not None
    lazy = ItemIndex.at(path)
    assert lazy.n_items == N_ITEMS
    assert lazy._index is None  # nothing read yet
    queries = np.random.default_rng(0).normal(size=(3, 17)).astype(np.float32)  # 16 + bias
    eager = ItemIndex.load(path)
    np.testing.assert_array_equal(lazy.search(queries, 10), eager.search(queries, 10))
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(ValueError, match="not a faiss index"):
        ItemIndex.at(path)
