"""iALS: the solves are the least-squares solutions they claim to be, and fold-in is one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.models.ials import IALS, IALSConfig, Rows, solve_side


def random_ratings(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.stack([rng.integers(0, 30, 400), rng.integers(0, 25, 400)], 1), axis=0)
    liked = rng.random(len(pairs)) < 0.7
    return pairs[:, 0], pairs[:, 1], liked


def exact_user_vectors(
    items: torch.Tensor, users: np.ndarray, columns: np.ndarray, confidence: np.ndarray, l2: float
) -> torch.Tensor:
    """Each user's normal equations, written out and solved directly."""
    vectors = []
    for user in range(30):
        mine = users == user
        rated = items[torch.from_numpy(columns[mine])]
        c = torch.from_numpy(confidence[mine])
        system = items.T @ items + (rated.T * (c - 1)) @ rated + l2 * torch.eye(items.shape[1])
        vectors.append(torch.linalg.solve(system, rated.T @ c))
    return torch.stack(vectors)


def test_conjugate_gradient_reaches_each_users_least_squares_solution() -> None:
    users, items, liked = random_ratings()
    confidence = (1 + 10.0 * np.where(liked, 1.0, 0.25)).astype(np.float32)
    torch.manual_seed(0)
    item_vectors = torch.randn(25, 6)
    solved = torch.zeros(30, 6)
    chunks = Rows.of(users, items, confidence, 30).chunks(torch.device("cpu"))
    solve_side(solved, item_vectors, chunks, l2=2.0, steps=6)  # d = 6: exact in 6 steps
    expected = exact_user_vectors(item_vectors, users, items, confidence, 2.0)
    assert torch.allclose(solved, expected, atol=1e-3)


def test_chunks_hold_every_rated_pair_once_with_its_confidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recsys.models import ials

    monkeypatch.setattr(ials, "CHUNK_ENTRIES", 40)  # several chunks, padded rows
    users, items, liked = random_ratings(1)
    confidence = np.where(liked, 3.0, 1.5).astype(np.float32)
    found = set()
    for rows, columns, extra, padded in Rows.of(users, items, confidence, 30).chunks(
        torch.device("cpu")
    ):
        for row, cols, weights, extras in zip(rows, columns, padded, extra, strict=True):
            for column, weight, more in zip(cols, weights, extras, strict=True):
                if weight > 0:
                    assert (int(row), int(column)) not in found
                    found.add((int(row), int(column)))
                    assert float(more) == float(weight) - 1
                else:
                    assert float(more) == 0  # padding adds nothing
    assert found == set(zip(users.tolist(), items.tolist(), strict=True))


def test_folding_in_a_user_is_the_solve_a_sweep_gives_them() -> None:
    users, items, liked = random_ratings(2)
    config = IALSConfig(30, 25, n_factors=5, l2=3.0, alpha=10.0, low_weight=0.25)
    model = IALS(config)
    torch.manual_seed(1)
    model.item_factors.copy_(torch.randn(25, 5))
    confidence = (1 + config.alpha * np.where(liked, 1.0, config.low_weight)).astype(np.float32)
    chunks = Rows.of(users, items, confidence, 30).chunks(torch.device("cpu"))
    solve_side(model.user_factors, model.item_factors, chunks, config.l2, steps=10)

    user = 7
    mine = users == user
    folded = model.fold_in(
        torch.from_numpy(items[mine]), torch.ones(int(mine.sum())), torch.from_numpy(liked[mine])
    )
    assert torch.allclose(folded, model.score_all_items(torch.tensor([user]))[0], atol=1e-3)
