"""Recommender: a trained collaborative model with its id maps, answering in external ids.

The one object every caller uses — a notebook, the CLI, the API, evaluation and
the cold-start path — so they all give the same answer for the same model and
user. It scores through the :class:`~recsys.models.scorer.CollabScorer` contract
only, and every ranked answer goes through the one :func:`~recsys.collab.top_k.top_k`.

Which items count as a user's "seen" ones is decided by its
:class:`~recsys.collab.interactions.Interactions`: the training ratings for a
recommender built from a learner, every rating in the database for one loaded
for serving (:func:`recsys.serving.loading.load_version`); feedback added
with :meth:`Recommender.add_feedback` counts from the next call.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recsys.artifacts import load_artifact
from recsys.collab.ann_index import ItemIndex, LazyItemIndex
from recsys.collab.baseline import RatingBaseline
from recsys.collab.interactions import Interactions
from recsys.collab.rating_prediction import RatingPredictions, RatingPredictor, Unknown
from recsys.collab.recommender_state import RecommenderState
from recsys.collab.top_k import finite_rows, top_k
from recsys.data.ids import LIKED_AT, IdMap, SharedIdMaps, UnknownIdError
from recsys.data.metadata import MetadataEncoder
from recsys.db.identity import check_identity
from recsys.models.scorer import (
    CollabScorer,
    NoMetadataError,
)

Allowed = Iterable[object] | torch.Tensor | None
FOLD_IN_CACHE = 256  # folded-in users kept (each: one score per item)
# Up to this many items, a serving snapshot holds every item pair's similarity (a float32
# n x n table: 16 MiB here), and similar items and "because you liked" look them up (see
# use_similarity_table).
SIMILARITY_TABLE_MAX_ITEMS = 2_048
OVER_FETCH = 4  # approximate search: candidates per item wanted


@dataclass(frozen=True)
class TopItems:
    """One ranked answer, best first: external ids, scores and model indices."""

    item_ids: np.ndarray
    scores: np.ndarray
    indices: np.ndarray

    def frame(self) -> pd.DataFrame:
        """As a frame (``item_id``, ``score``), for the notebook and the command line."""
        return pd.DataFrame({"item_id": self.item_ids, "score": self.scores})

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True)
class TopUsers:
    """Ranked users, best first: external ids, scores and model indices."""

    user_ids: np.ndarray
    scores: np.ndarray
    indices: np.ndarray

    def frame(self) -> pd.DataFrame:
        """As a frame (``user_id``, ``score``)."""
        return pd.DataFrame({"user_id": self.user_ids, "score": self.scores})

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class HiddenItems:
    """The items never answered: a mask of the visible ones (None: all are) and how many
    are hidden, replaced together in one assignment (a request sees the old or the new)."""

    visible: torch.Tensor | None = None
    count: int = 0

    @classmethod
    def of(cls, indices: np.ndarray, n_items: int, device: torch.device) -> HiddenItems:
        if len(indices) == 0:
            return cls()
        visible = torch.ones(n_items, dtype=torch.bool, device=device)
        visible[torch.from_numpy(indices).to(device)] = False
        return cls(visible, int(n_items - visible.sum()))


class Recommender:
    """Predict ratings, recommend, find similar items and users, explain; in external ids.

    Args:
        model: any collaborative model (the CollabScorer contract).
        user_map, item_map: external id <-> model index.
        seen: each user's rated and liked items (see the module docstring for which).
        encoder: the metadata vocabularies of a model that reads metadata, else None.

    Example::

        recommender = load_recommender("model.pt")
        recommender.recommend("196", n=10).frame()  # TopItems; as a frame: item_id, score
        recommender.recommend_many(["196", "22"], n=10, exclude=["50"], allowed=["1", "2"])
    """

    def __init__(
        self,
        model: CollabScorer,
        user_map: IdMap,
        item_map: IdMap,
        seen: Interactions,
        encoder: MetadataEncoder | None = None,
        baseline: RatingBaseline | None = None,
    ) -> None:
        self.model = model.eval()
        self.baseline = baseline
        self.hidden = HiddenItems()  # see hide and forget
        self._hidden_items = np.array([], dtype=np.int64)  # the ones hide() was given
        self.item_index: ItemIndex | LazyItemIndex | None = None  # see use_index
        self.user_map = user_map
        self.item_map = item_map
        self.seen = seen
        self.encoder = encoder
        self.device = next(iter([*model.parameters(), *model.buffers()])).device
        self._ratings = RatingPredictor(
            self.model, user_map, item_map, encoder, baseline, self.device
        )
        self._unit_items: np.ndarray | None = None  # see unit_items
        self._similarity_table: np.ndarray | None = None  # see use_similarity_table
        # Folded-in users' scores, by their ratings: computed again only when those change.
        self._folded: OrderedDict[tuple[bytes, bytes], torch.Tensor] = OrderedDict()
        self._folded_lock = threading.Lock()

    def with_seen(self, seen: Interactions) -> Recommender:
        """The same model and maps with other seen items (shares everything else)."""
        other = copy.copy(self)
        other.seen = seen
        return other

    @property
    def has_user_vectors(self) -> bool:
        """Whether users can be compared with each other (EASE has no user vectors): the
        model implements ``user_embeddings``. Asked, not computed: two towers and the
        hybrid run a tower over every user for it."""
        return type(self.model).user_embeddings is not CollabScorer.user_embeddings

    @property
    def reads_metadata(self) -> bool:
        """Whether users and items unseen in training can be scored from their metadata."""
        return self.encoder is not None

    # -- candidates ------------------------------------------------------------------------
    def item_mask(self, allowed: Allowed) -> torch.Tensor | None:
        """A bool mask over model items from ids (unknown ones ignored) or a mask itself."""
        if allowed is None or isinstance(allowed, torch.Tensor):
            return allowed
        mask = torch.zeros(len(self.item_map), dtype=torch.bool)
        mask[torch.from_numpy(self._known_items(allowed))] = True
        return mask

    def _known_items(self, item_ids: Iterable[object]) -> np.ndarray:
        """Model indices of the ids the model knows; the others are skipped."""
        return np.array(
            [self.item_map.index(i) for i in item_ids if i in self.item_map], dtype=np.int64
        )

    def use_index(self, index: ItemIndex | LazyItemIndex | None) -> None:
        """Answer :meth:`recommend_many` from ``index`` (approximate: see
        recsys.collab.ann_index) rather than by scoring every item; None: exact again."""
        if index is not None and index.n_items != len(self.item_map):
            raise ValueError(
                f"the index holds {index.n_items:,} items, the model {len(self.item_map):,}"
            )
        self.item_index = index

    def _ranked_by_index(
        self,
        users: np.ndarray,
        n: int,
        exclude_seen: bool,
        exclude: Iterable[object],
        offset: int,
    ) -> list[TopItems] | None:
        """The index's candidates for each user, scored exactly and ranked by
        :meth:`_ranked` (the same rules as every answer); None when a user's eligible
        candidates run out before the page is full (the caller searches exactly)."""
        assert self.item_index is not None
        exclude = list(exclude)
        seen = [self.seen.seen(int(u)) for u in users] if exclude_seen else None
        wanted = n + offset
        # Over-fetch: candidates are scored exactly, and the search misses a few.
        left_out = max(map(len, seen or [np.empty(0)])) + len(exclude) + self.hidden.count
        k = min(len(self.item_map), max(OVER_FETCH * wanted, 100) + left_out)
        device_users = torch.from_numpy(users).to(self.device)
        queries = self.model.user_search_vectors(device_users).cpu().numpy()
        candidates = self.item_index.search(queries, k)
        scores = torch.full(candidates.shape, -torch.inf, device=self.device)
        for row, found in enumerate(candidates):
            real = np.flatnonzero(found >= 0)
            user = device_users[row].expand(len(real))
            items = torch.from_numpy(found[real]).to(self.device)
            scores[row, torch.from_numpy(real).to(self.device)] = self.model.score_pairs(
                user, items
            ).float()
        answers = self._ranked(scores, n, seen, exclude, None, offset, candidates)
        if k < len(self.item_map) and any(len(top.indices) < n for top in answers):
            return None
        return answers

    @property
    def unit_items(self) -> np.ndarray:
        """Each item's embedding scaled to length one (n_items, d), float32 on the CPU: the
        cosine similarity of two items is the product of their rows. Computed at first
        use, or given by a serving snapshot (:meth:`use_unit_items`)."""
        if self._unit_items is None:
            with torch.no_grad():
                embeddings = self.model.item_embeddings().float()
                norms = embeddings.norm(dim=1, keepdim=True).clamp_min(1e-12)
                self._unit_items = (embeddings / norms).cpu().numpy()
        return self._unit_items

    def use_unit_items(self, units: np.ndarray | None) -> None:
        """Take :attr:`unit_items` as computed before (a serving snapshot's, mapped and
        shared by the workers) rather than computing them; None: compute again."""
        if units is not None and len(units) != len(self.item_map):
            raise ValueError(f"{len(units):,} unit item vectors for {len(self.item_map):,} items")
        self._unit_items = units

    def item_similarity_table(self) -> np.ndarray:
        """Every item pair's cosine similarity (n_items, n_items)."""
        return self._item_similarities(np.arange(len(self.item_map)))

    def use_similarity_table(self, table: np.ndarray | None) -> None:
        """Look item similarities up in ``table`` (:meth:`item_similarity_table`, kept in
        a serving snapshot for small catalogs) instead of multiplying item vectors on
        every call: EASE's are a column of B each, 1,682 numbers at MovieLens-100k, and
        the products for "because you liked" cost more than scoring the user. None:
        multiply again."""
        if table is not None and table.shape != (len(self.item_map),) * 2:
            raise ValueError(f"a similarity table of {table.shape}, not of every item pair")
        self._similarity_table = table

    def _item_similarities(self, rows: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """The cosine similarities of items ``rows`` with items ``columns`` (every item when
        None), a new (rows, columns) array: looked up in the similarity table when there
        is one, else products of the unit vectors, clamped (in float32 they reach
        1.0000005, and a cosine similarity is answered within [-1, 1])."""
        if self._similarity_table is not None:
            found = self._similarity_table[rows]
            return found if columns is None else found[:, columns]
        units = self.unit_items
        others = units if columns is None else units[columns]
        return np.clip(units[rows] @ others.T, -1.0, 1.0)

    def hide(self, item_ids: Iterable[object]) -> None:
        """These items, and no others, are never recommended or offered as similar (ids
        the model does not know are ignored): discontinued products, takedowns. Deleted
        items (see :meth:`forget`) stay left out as well."""
        self._hidden_items = self._known_items(item_ids)
        self._update_hidden()

    def _update_hidden(self) -> None:
        present = self.item_map.present
        left_out = (
            self._hidden_items
            if present is None
            else np.union1d(self._hidden_items, np.flatnonzero(~present))
        )
        self.hidden = HiddenItems.of(left_out, len(self.item_map), self.device)

    def forget(self, user_ids: Iterable[object] = (), item_ids: Iterable[object] = ()) -> None:
        """Erased users and deleted items, from the next call on: unknown to every lookup
        (recommend, predict, similar, explain), never answered as an item, a neighbour or
        a reason. The model keeps their vectors until it is trained again without them;
        ids it does not know are ignored. A forgotten id stays forgotten, even if the
        database gets it again: the vector here was learned from what was deleted."""
        users = self.user_map.positions(user_ids)
        items = self.item_map.positions(item_ids)
        users, items = users[users >= 0], items[items >= 0]
        if len(users):
            self.user_map = self.user_map.without(users)
        if len(items):
            self.item_map = self.item_map.without(items)
            self._update_hidden()
        if len(users) or len(items):
            self._ratings = replace(self._ratings, user_map=self.user_map, item_map=self.item_map)

    def _ranked(
        self,
        scores: torch.Tensor,
        n: int,
        exclude_rows: Sequence[np.ndarray] | None,
        exclude: Iterable[object],
        allowed: Allowed,
        offset: int = 0,
        candidates: np.ndarray | None = None,
    ) -> list[TopItems]:
        """The one ranking path: best ``n`` from place ``offset`` on, never a hidden item;
        ``scores`` of every item, or of per-row ``candidates`` (see top_k)."""
        mask, visible = self.item_mask(allowed), self.hidden.visible  # built once per hide()
        if visible is not None:
            mask = visible if mask is None else mask & visible
        values, indices = top_k(
            scores, n + offset, exclude_rows, self._known_items(exclude), mask, candidates
        )
        return [
            TopItems(self.item_map.ids[rows[offset:]], values_row[offset:], rows[offset:])
            for rows, values_row in finite_rows(values, indices)
        ]

    # -- recommendations -------------------------------------------------------------------
    @torch.no_grad()
    def recommend_many(
        self,
        user_ids: Sequence[object],
        n: int = 10,
        exclude_seen: bool = True,
        exclude: Iterable[object] = (),
        allowed: Allowed = None,
        offset: int = 0,
    ) -> list[TopItems]:
        """Each user's top-``n`` items, best first (batch-first: one scoring pass).

        Args:
            user_ids: known users; UnknownIdError names the first unknown one.
            n: the most items per user; fewer when fewer are eligible.
            exclude_seen: leave out each user's seen items (see the module docstring).
            exclude: item ids no user gets (unknown ids are ignored).
            allowed: the only candidates — item ids, or a bool mask over model items.
            offset: skip the best ``offset`` (paging: the next page is offset + n).
        """
        users = self.user_map.indices(user_ids)
        if self.item_index is not None and allowed is None:  # a genre filter: exact
            exclude = list(exclude)
            answered = self._ranked_by_index(users, n, exclude_seen, exclude, offset)
            if answered is not None:
                return answered
        scores = self.model.score_all_items(torch.from_numpy(users).to(self.device)).float()
        seen = [self.seen.seen(int(u)) for u in users] if exclude_seen else None
        return self._ranked(scores, n, seen, exclude, allowed, offset)

    def recommend(
        self,
        user_id: object,
        n: int = 10,
        exclude_seen: bool = True,
        exclude: Iterable[object] = (),
        allowed: Allowed = None,
    ) -> TopItems:
        """One user's top-``n``; see :meth:`recommend_many`."""
        return self.recommend_many([user_id], n, exclude_seen, exclude, allowed)[0]

    @torch.no_grad()
    def recommend_for_profile(
        self,
        profile: Mapping[str, object],
        n: int = 10,
        exclude: Iterable[object] = (),
        allowed: Allowed = None,
        offset: int = 0,
    ) -> TopItems:
        """Top-``n`` for someone known only by metadata, e.g. ``{"age": 31, "gender": "F",
        "occupation": "engineer"}``; NoMetadataError for a model that reads none."""
        if self.encoder is None:
            raise NoMetadataError(f"{type(self.model).__name__} cannot recommend from metadata")
        metadata = torch.from_numpy(self.encoder.encode_user(profile)).to(self.device)
        scores = self.model.score_new_users(metadata[None]).float()
        return self._ranked(scores, n, None, exclude, allowed, offset)[0]

    def recommend_from_ratings(
        self,
        ratings: pd.DataFrame,
        n: int = 10,
        exclude: Iterable[object] = (),
        allowed: Allowed = None,
        offset: int = 0,
        exclude_seen: bool = True,
    ) -> TopItems:
        """Top-``n`` for a user the model never saw, from their ratings (``item_id``,
        ``rating``): their vector is folded in against the fixed model (see
        ``CollabScorer.fold_in``); the rated items are left out (unless not
        ``exclude_seen``), and so is ``exclude``. Items the model does not know are
        ignored; with none it knows, UnknownIdError."""
        known = ratings[self.item_map.positions(ratings["item_id"]) >= 0]
        if known.empty:
            raise UnknownIdError("item", ratings["item_id"].iloc[0] if len(ratings) else None)
        indices = self.item_map.indices(known["item_id"])
        values = known["rating"].to_numpy(np.float32)
        key = (indices.tobytes(), values.tobytes())  # the same ratings: the same vector
        with self._folded_lock:
            scores = self._folded.get(key)
            if scores is not None:
                self._folded.move_to_end(key)
        if scores is None:
            items = torch.from_numpy(indices).to(self.device)
            rated = torch.from_numpy(values).to(self.device)
            scores = self.model.fold_in(items, rated, rated >= LIKED_AT).float()
            with self._folded_lock:
                self._folded[key] = scores
                while len(self._folded) > FOLD_IN_CACHE:
                    self._folded.popitem(last=False)
        seen = [indices] if exclude_seen else None
        return self._ranked(scores[None].clone(), n, seen, exclude, allowed, offset)[0]

    # -- ratings ---------------------------------------------------------------------------
    def predict(
        self,
        pairs: pd.DataFrame,
        user_col: str = "user_id",
        item_col: str = "item_id",
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        unknown: Unknown = "error",
    ) -> RatingPredictions:
        """Predicted ratings for rows of (user, item), and which are baselines: see
        recsys.collab.rating_prediction (``users``/``items``: metadata rows of ids a model
        that reads metadata never saw; ``unknown``: "error" or "baseline")."""
        return self._ratings.predict(pairs, user_col, item_col, users, items, unknown)

    # -- neighbours and reasons ------------------------------------------------------------
    @torch.no_grad()
    def similar_items(
        self, item_id: object, n: int = 10, min_ratings: int = 0, allowed: Allowed = None
    ) -> TopItems:
        """The ``n`` items nearest by cosine similarity of embeddings (never the item itself).

        ``min_ratings`` leaves out neighbours with fewer ratings among the seen
        interactions: an item rated once has an embedding that says little, yet can
        land close to anything.
        """
        item = self.item_map.index(item_id)
        similarity = torch.from_numpy(self._item_similarities(np.array([item])))
        mask = self.item_mask(allowed)
        if min_ratings > 0:
            popular = torch.from_numpy(self.seen.item_counts() >= min_ratings)
            mask = popular if mask is None else mask & popular
        return self._ranked(similarity, n, [np.array([item])], (), mask)[0]

    @torch.no_grad()
    def similar_users(self, user_id: object, n: int = 10) -> TopUsers:
        """The ``n`` users nearest by cosine similarity of user vectors (never the user)."""
        user = self.user_map.index(user_id)
        vectors = self.model.user_embeddings().float()
        units = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
        similarity = (units @ units[user]).clamp(-1.0, 1.0)[None]  # see _item_similarities
        present = self.user_map.present  # erased users are never anyone's neighbours
        allowed = None if present is None else torch.from_numpy(present).to(self.device)
        values, indices = top_k(similarity, n, [np.array([user])], None, allowed)
        rows, scores = finite_rows(values, indices)[0]
        return TopUsers(self.user_map.ids[rows], scores, rows)

    def because_you_liked(
        self, user_id: object, item_ids: Sequence[object] | TopItems, n: int = 1
    ) -> list[TopItems]:
        """For each of ``item_ids`` (or of the items of a ranked answer, whose model
        indices are taken as they are: the service explains every answer), the user's
        liked items most similar to it, best first (scores are cosine similarities);
        empty when they liked nothing the model knows. An item never explains itself."""
        liked = self.seen.liked(self.user_map.index(user_id))
        present = self.item_map.present  # a deleted item is never a reason
        if present is not None:
            liked = liked[present[liked]]
        if isinstance(item_ids, TopItems):
            targets = np.asarray(item_ids.indices, dtype=np.int64)
        else:
            targets = self.item_map.indices(item_ids)
        if len(liked) == 0 or len(targets) == 0:
            empty = np.array([], dtype=np.int64)
            return [TopItems(self.item_map.ids[empty], np.array([]), empty) for _ in targets]
        # A (targets, liked) block of a few hundred at most: numpy on the CPU costs a tenth
        # of the torch calls it replaces, on every request.
        similarity = self._item_similarities(targets, liked)
        similarity[targets[:, None] == liked[None, :]] = -np.inf
        values, indices = top_k(torch.from_numpy(similarity), n)
        return [
            TopItems(self.item_map.ids[liked[rows]], scores, liked[rows])
            for rows, scores in finite_rows(values, indices)
        ]

    def explain(self, user_id: object, item_id: object, n: int = 3) -> TopItems:
        """Why ``item_id`` suits the user: their ``n`` liked items most similar to it (the
        scores are cosine similarities)."""
        return self.because_you_liked(user_id, [item_id], n)[0]

    # -- feedback --------------------------------------------------------------------------
    def add_feedback(self, ratings: pd.DataFrame) -> None:
        """New ratings (``user_id``, ``item_id``, ``rating``) count as seen (and liked) from
        the next call; ids the model does not know are skipped. Adding a rating twice
        changes nothing."""
        users = pd.Series(ratings["user_id"], dtype=object).map(self.user_map.position)
        items = pd.Series(ratings["item_id"], dtype=object).map(self.item_map.position)
        known = (users >= 0) & (items >= 0)
        self.seen.add(
            users[known].to_numpy(np.int64),
            items[known].to_numpy(np.int64),
            ratings["rating"].to_numpy(np.float64)[known.to_numpy()],
        )

    def remove_feedback(self, pairs: pd.DataFrame) -> None:
        """Deleted ratings (``user_id``, ``item_id``) are no longer seen or liked from the
        next call (until rated again); ids the model does not know are skipped."""
        users = self.user_map.positions(pairs["user_id"])
        items = self.item_map.positions(pairs["item_id"])
        known = (users >= 0) & (items >= 0)
        self.seen.remove(users[known], items[known])


def recommender_from_state(
    model: CollabScorer,
    state: RecommenderState,
    seen: Interactions | None = None,
    maps: SharedIdMaps | None = None,
) -> Recommender:
    """A Recommender from a model and the state a collab learner saves beside it;
    ``seen`` replaces the saved training interactions; ``maps``: id maps shared with
    the models loaded beside it."""
    return Recommender(
        model,
        state.user_map(maps),
        state.item_map(maps),
        seen if seen is not None else state.seen(),
        state.encoder(),
        state.baseline(),
    )


def load_recommender(
    path: Path | str,
    device: str | torch.device = "cpu",
    database: str | None = None,
    maps: SharedIdMaps | None = None,
) -> Recommender:
    """A :class:`Recommender` from a file written by a collaborative learner's ``save``;
    its seen items are the training ratings. With ``database`` (an identity, see
    recsys.db.identity), a file trained on another database is refused; ``maps``: id
    maps shared with the models loaded beside it (a serving worker's)."""
    artifact = load_artifact(path)
    if database is not None:
        check_identity(database, artifact.metadata.get("database"), path)
    state = RecommenderState.from_extra(artifact.extra)
    model = artifact.model.to(device)  # a collaborative file holds a CollabScorer
    return recommender_from_state(model, state, maps=maps)  # type: ignore[arg-type]  # a collaborative file holds a CollabScorer
