"""A blend: several collaborative models fitted on the same ratings, scoring as one.

Scores are a weighted sum of the members' scores, each divided by its ``scale``:
for ranking models, the spread of its scores (their standard deviation over the
training users and all items), so that a weight says how much a member counts
whatever its units; for rating models 1, and the weights sum to 1, so a blend of
predicted ratings is a predicted rating. Being a sum, the blend's scores are inner
products of concatenated vectors whenever every member's are, so an approximate index
can search it; otherwise it is scored exactly. The members and weights are chosen on
the hold-out (recsys.collab.blend_learner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.scorer import CollabScorer, NoBiasesError


@dataclass(frozen=True)
class BlendConfig:
    n_users: int
    n_items: int
    members: tuple[dict[str, Any], ...]  # each member's model_config (class and config)
    weights: tuple[float, ...]
    scales: tuple[float, ...]


class Blend(CollabScorer):
    """Σ weight · member scores / scale, over members that share their index spaces."""

    def __init__(self, config: BlendConfig, members: list[CollabScorer] | None = None) -> None:
        super().__init__()
        if members is None:
            from recsys.models.factory import build_model  # the factory registers Blend

            members = [build_model(dict(spec)) for spec in config.members]  # type: ignore[misc]  # members are saved as model specs
        if not len(members) == len(config.weights) == len(config.scales) >= 1:
            raise ValueError("a blend needs one weight and one scale per member")
        self.config = config
        self.n_users, self.n_items = config.n_users, config.n_items
        self.members = nn.ModuleList(members)
        ranges = {member.rating_range for member in members}
        if len(ranges) != 1:
            raise ValueError("a blend's members must all predict ratings, or all only rank")
        self.rating_range = ranges.pop()

    @property
    def factors(self) -> list[float]:
        """What each member's scores are multiplied by."""
        return [w / s for w, s in zip(self.config.weights, self.config.scales, strict=True)]

    def _sum(self, scores: list[torch.Tensor]) -> torch.Tensor:
        total = scores[0] * self.factors[0]
        for factor, score in zip(self.factors[1:], scores[1:], strict=True):
            total = total + factor * score
        return total

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._sum([member.score_pairs(users, items) for member in self._members()])

    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        return self._sum([member.score_all_items(users) for member in self._members()])

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._sum([member.score_candidates(users, items) for member in self._members()])

    def fold_in(
        self, items: torch.Tensor, ratings: torch.Tensor, liked: torch.Tensor, steps: int = 0
    ) -> torch.Tensor:
        """Each member folds the user in its own way (``steps``: for those that take
        gradient steps; 0 = their default)."""
        return self._sum(
            [
                member.fold_in(items, ratings, liked, **({"steps": steps} if steps else {}))
                for member in self._members()
            ]
        )

    def item_embeddings(self) -> torch.Tensor:
        """The members' unit item vectors side by side, each times √weight: the cosine of
        two items is the weighted mean of their cosines in each member."""
        return torch.cat(
            [
                F.normalize(member.item_embeddings().float(), dim=1) * abs(weight) ** 0.5
                for member, weight in zip(self._members(), self._shares(), strict=True)
            ],
            dim=1,
        )

    def user_embeddings(self) -> torch.Tensor:
        return torch.cat(
            [
                F.normalize(member.user_embeddings().float(), dim=1) * abs(weight) ** 0.5
                for member, weight in zip(self._members(), self._shares(), strict=True)
            ],
            dim=1,
        )

    def biases(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The blend's explicit bias terms: the weighted sum of its members' biases (a
        member without biases, like EmbeddingNN, adds none)."""
        parts = []
        for member, factor in zip(self._members(), self.factors, strict=True):
            try:
                user_biases, item_biases = member.biases()
            except NoBiasesError:
                continue
            parts.append((factor * user_biases, factor * item_biases))
        if not parts:
            raise NoBiasesError("none of the blend's members has biases")
        return sum(p[0] for p in parts), sum(p[1] for p in parts)  # type: ignore[return-value]  # sums of tensors

    def item_search_vectors(self) -> torch.Tensor:
        return torch.cat([member.item_search_vectors() for member in self._members()], dim=1)

    def user_search_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                factor * member.user_search_vectors(users)
                for member, factor in zip(self._members(), self.factors, strict=True)
            ],
            dim=1,
        )

    def _members(self) -> list[CollabScorer]:
        return list(self.members)  # type: ignore[arg-type]  # the members are CollabScorers

    def _shares(self) -> list[float]:
        total = sum(abs(weight) for weight in self.config.weights) or 1.0
        return [abs(weight) / total for weight in self.config.weights]
