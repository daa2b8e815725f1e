"""The two-tower ranking model: one matrix product to score a catalog, never stale."""

from __future__ import annotations

import torch

from recsys.models.two_tower import TwoTower, TwoTowerConfig


def tower(seed: int) -> TwoTower:
    torch.manual_seed(seed)
    model = TwoTower(TwoTowerConfig(n_users=6, n_items=9, n_factors=4, layers=(8,)))
    with torch.no_grad():  # past the zero-initialised start, so the towers matter
        for parameter in model.parameters():
            parameter.normal_()
    return model.eval()


def test_all_items_candidates_and_pairs_agree() -> None:
    model = tower(0)
    users, items = torch.tensor([0, 3, 5]), torch.arange(9)
    full = model.score_all_items(users)
    assert torch.allclose(full, model.score_candidates(users, items), atol=1e-5)
    pairs = model.score_pairs(users.repeat_interleave(9), items.repeat(3))
    assert torch.allclose(full.flatten(), pairs, atol=1e-5)


def test_scores_follow_the_weights_after_training_or_loading() -> None:
    model, other = tower(0), tower(1)
    users = torch.arange(6)
    before = model.score_all_items(users)  # fills the item cache
    model.train()
    loss = -model.score_pairs(torch.tensor([0]), torch.tensor([2])).sum()
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    model.eval()
    after = model.score_all_items(users)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, model.score_candidates(users, torch.arange(9)), atol=1e-5)
    model.load_state_dict(other.state_dict())
    assert torch.allclose(model.score_all_items(users), other.score_all_items(users), atol=1e-6)
