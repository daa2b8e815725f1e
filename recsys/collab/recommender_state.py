"""What a collaborative model file keeps beside the weights, typed: the id maps, the
training interactions, the rating baseline and, for a model that reads metadata, its
vocabularies. Saved as plain data (lists, tensors, dicts: ``weights_only`` loading); text
ids as one tensor, which loading maps from the file instead of unpickling a Python string
per id (a million users cost a worker 120 MB that way, freed too late to give back)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from recsys.collab.baseline import RatingBaseline
from recsys.collab.interactions import Interactions
from recsys.data.ids import ID_SEPARATOR, IdMap, PackedIds, SharedIdMaps, pack_ids
from recsys.data.metadata import MetadataEncoder


@dataclass(frozen=True)
class RecommenderState:
    """The extra state of a collaborative artifact (see the module docstring)."""

    user_ids: PackedIds  # see recsys.data.ratings.pack_ids
    item_ids: PackedIds
    seen_indptr: torch.Tensor
    seen_indices: torch.Tensor
    seen_liked: torch.Tensor
    # Artifacts saved before baselines have none: their unknown ids stay errors.
    rating_baseline: dict[str, Any] | None = None
    metadata_encoder: dict[str, Any] | None = None  # only a model that reads metadata

    @classmethod
    def of(
        cls,
        user_map: IdMap,
        item_map: IdMap,
        seen: Interactions,
        baseline: RatingBaseline | None,
        encoder: MetadataEncoder | None = None,
    ) -> RecommenderState:
        return cls(
            pack_ids(user_map.ids.tolist()),
            pack_ids(item_map.ids.tolist()),
            torch.from_numpy(seen.indptr),
            torch.from_numpy(seen.indices),
            torch.from_numpy(seen.liked_flags),
            baseline.state() if baseline is not None else None,
            encoder.state() if encoder is not None else None,
        )

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RecommenderState:
        """From an artifact's extra state; ValueError names what a file lacks."""
        names = [field.name for field in fields(cls)]
        required = names[:5]
        missing = [name for name in required if name not in extra]
        if missing:
            raise ValueError(f"not a collaborative model file: no {', '.join(missing)}")
        found: dict[str, Any] = {name: extra.get(name) for name in names}
        return cls(**found)

    def extra(self) -> dict[str, Any]:
        """As saved beside the weights (absent fields left out)."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return {name: value for name, value in values.items() if value is not None}

    def user_map(self, shared: SharedIdMaps | None = None) -> IdMap:
        """The users' map (``shared``: kept once with other models' equal maps)."""
        return (shared or SharedIdMaps()).get("user", self.user_ids)

    def item_map(self, shared: SharedIdMaps | None = None) -> IdMap:
        return (shared or SharedIdMaps()).get("item", self.item_ids)

    @property
    def n_items(self) -> int:
        if isinstance(self.item_ids, torch.Tensor):
            return int((self.item_ids == ord(ID_SEPARATOR)).sum()) + 1
        return len(self.item_ids)

    def seen(self) -> Interactions:
        """The training interactions."""
        return Interactions(
            self.seen_indptr.numpy(),
            self.seen_indices.numpy(),
            self.seen_liked.numpy().astype(bool, copy=False),
            self.n_items,
        )

    def baseline(self) -> RatingBaseline | None:
        return RatingBaseline.from_state(self.rating_baseline) if self.rating_baseline else None

    def encoder(self) -> MetadataEncoder | None:
        return MetadataEncoder.from_state(self.metadata_encoder) if self.metadata_encoder else None
