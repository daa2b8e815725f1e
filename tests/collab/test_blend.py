"""Blends: the weights are the hold-out's choice, a blend scores as the sum it claims to
be, and a weight of 0 serves the other member alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recsys import CollabData, collab_learner, load_recommender
from recsys.collab.blend_learner import (
    Member,
    RankingBlendLearner,
    RatingBlendLearner,
    weight_grid,
)
from recsys.collab.ranking import ranking_learner
from recsys.models.blend import Blend
from tests.factories import taste_groups_with_unrated

TRAIN, HELD_OUT = taste_groups_with_unrated()


def data() -> CollabData:
    return CollabData.from_df(TRAIN, valid_df=HELD_OUT, batch_size=64, seed=0)


def ranking_members(shared: CollabData) -> list[Member]:
    torch.manual_seed(0)
    return [
        Member("ials", ranking_learner(shared, model="ials", n_factors=4, l2=10.0, alpha=10.0), {}),
        Member(
            "dot",
            ranking_learner(shared, model="dot", n_factors=4, progress=False),
            {"n_epoch": 3, "lr_max": 0.05, "wd": 0.0},
        ),
    ]


def rating_members(shared: CollabData, epochs: int) -> list[Member]:
    torch.manual_seed(0)
    return [
        Member(
            name,
            collab_learner(shared, n_factors=4, use_nn=name == "nn", progress=False),
            {"n_epoch": epochs, "lr_max": 1e-2, "wd": 0.01},
        )
        for name in ("dot", "nn")
    ]


def test_the_weight_grid_splits_one_every_way_including_a_member_alone() -> None:
    grid = weight_grid(3, step=0.5)
    assert sorted(grid) == sorted(
        [(0, 0, 1), (0, 0.5, 0.5), (0, 1, 0), (0.5, 0, 0.5), (0.5, 0.5, 0), (1, 0, 0)]
    )
    assert len(weight_grid(2)) == 11
    assert all(sum(weights) == pytest.approx(1) for weights in weight_grid(3))


def test_the_weights_kept_score_best_on_the_hold_out_of_all_tried() -> None:
    shared = data()
    learn = RankingBlendLearner(shared, ranking_members(shared), progress=False)
    learn.fit_one_cycle()
    kept = learn.chosen_weights
    ndcg = learn.served_metrics()["ndcg"]
    for weights in weight_grid(2):
        assert other_ndcg(learn, weights) <= ndcg + 1e-9, weights
    assert other_ndcg(learn, kept) == pytest.approx(ndcg)


def other_ndcg(fitted: RankingBlendLearner, weights: tuple[float, ...]) -> float:
    """The hold-out NDCG of the fitted members under ``weights``."""
    models = [member.learner.scoring_model for member in fitted.members]
    scales = tuple(fitted.scale(model) for model in models)
    saved = fitted.model
    fitted.model = fitted.blend(models, weights, scales)
    try:
        return fitted.ranking_metrics()["ndcg"]
    finally:
        fitted.model = saved


def test_a_member_weighed_zero_leaves_the_other_served_alone() -> None:
    shared = data()
    members = ranking_members(shared)
    learn = RankingBlendLearner(shared, members, (0.0, 1.0), progress=False)
    learn.fit_one_cycle()
    assert learn.scoring_model is members[1].learner.scoring_model
    settings = learn.chosen_settings()
    assert settings["model"] == "dot"
    assert set(settings) == {"model", "epochs"}


def test_a_blend_scores_the_weighted_sum_and_searches_as_it_scores(tmp_path: Path) -> None:
    shared = data()
    learn = RankingBlendLearner(shared, ranking_members(shared), (0.3, 0.7), progress=False)
    learn.fit_one_cycle()
    blend = learn.scoring_model
    assert isinstance(blend, Blend)
    users = torch.arange(shared.n_users)
    members = [member.learner.scoring_model for member in learn.members]
    expected = sum(
        weight / scale * model.score_all_items(users)
        for weight, scale, model in zip(
            blend.config.weights, blend.config.scales, members, strict=True
        )
    )
    assert torch.allclose(blend.score_all_items(users), expected, atol=1e-5)
    # Searching orders items as scoring does: the two differ by one number per user (a
    # member's user bias, which ranks nothing).
    searched = blend.user_search_vectors(users) @ blend.item_search_vectors().T
    offsets = searched - expected
    assert torch.allclose(offsets, offsets[:, :1].expand_as(offsets), atol=1e-4)
    settings = learn.chosen_settings()
    assert settings["members"] == ("ials", "dot")
    assert settings["blend_weights"] == (0.3, 0.7)

    path = learn.save(tmp_path / "blend.pt")
    loaded = load_recommender(path)
    assert np.allclose(loaded.model.score_all_items(users).numpy(), expected.numpy(), atol=1e-5)


def test_a_rating_blend_predicts_the_weighted_mean_of_its_members() -> None:
    shared = data()
    members = rating_members(shared, epochs=3)
    learn = RatingBlendLearner(shared, members, progress=False)
    learn.fit_one_cycle()
    weights = learn.chosen_weights
    users, items = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    predictions = [m.learner.scoring_model.score_pairs(users, items) for m in members]
    expected = sum(w * p for w, p in zip(weights, predictions, strict=True))
    assert torch.allclose(learn.scoring_model.score_pairs(users, items), expected, atol=1e-5)
    assert learn.scoring_model.rating_range == members[0].learner.scoring_model.rating_range
    assert {"rmse", "mae"} <= set(learn.served_metrics())


def test_a_blends_biases_are_its_members_weighted_and_none_without_any() -> None:
    from recsys.models.scorer import NoBiasesError

    shared = data()
    members = rating_members(shared, epochs=1)
    learn = RatingBlendLearner(shared, members, (0.7, 0.3), progress=False)
    learn.fit_one_cycle()
    users, items = learn.scoring_model.biases()
    dot_users, dot_items = members[0].learner.scoring_model.biases()
    assert torch.allclose(items, 0.7 * dot_items)  # the nn member has none
    assert torch.allclose(users, 0.7 * dot_users)

    ranking = RankingBlendLearner(shared, ranking_members(shared)[:1] * 2, (0.5, 0.5))
    ranking.fit_one_cycle()
    with pytest.raises(NoBiasesError, match="none of the blend's members has biases"):
        ranking.scoring_model.biases()
