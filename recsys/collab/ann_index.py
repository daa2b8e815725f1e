"""Approximate nearest-neighbour search over the catalog, for catalogs too big to score
exactly on every request.

A factor model's score is an inner product (plus an item bias, folded in as one more
coordinate: user ``[u, 1]``, item ``[i, b_i]``), so the top items of a user are a
maximum-inner-product search, turned into a nearest-neighbour one by one extra
coordinate. A faiss HNSW graph answers it in well under a millisecond at a million
items with nearly all of the exact answer; the Recommender then
scores the candidates exactly, removes seen, excluded and hidden ones, and keeps
the best (it over-fetches, and falls back to exact search for a user whose
candidates run out). The index is built by the training job beside the artifact
(``<artifact>.faiss``, faiss' own format: no pickle) for catalogs of at least
``ANN_MIN_ITEMS`` items; below that, exact search is both exact and fast.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np
import torch

from recsys.models.scorer import CapabilityError, CollabScorer

# From here an exact search costs about a millisecond of one core per request (a 1 x 64
# by 64 x n product and a top-k: 0.29 ms at 25,000 items, 0.59 at 50,000, 1.29 at
# 100,000, measured with one thread as a worker has): the index answers instead.
ANN_MIN_ITEMS = 80_000
HNSW_NEIGHBOURS, EF_CONSTRUCTION, EF_SEARCH = 32, 80, 128


@dataclass
class ItemIndex:
    """An HNSW inner-product index over a model's item search vectors."""

    index: faiss.Index

    @classmethod
    def build(cls, model: CollabScorer, ef_search: int = EF_SEARCH) -> ItemIndex:
        """Index ``model``'s items; CapabilityError for a model whose scores are not inner
        products of per-user and per-item vectors (EASE, the concatenating MLP)."""
        items = _float32(model.item_search_vectors())
        # Inner product -> Euclidean (Bachrach et al., 2014): items get one more
        # coordinate, sqrt(max norm² - norm²), queries a 0, and the nearest item is the
        # one with the largest inner product. Graph search is reliable on a metric;
        # on raw inner products it misses items whose norms differ.
        norms = np.square(items).sum(axis=1)
        extra = np.sqrt(np.maximum(norms.max() - norms, 0.0))[:, None]
        items = np.ascontiguousarray(np.hstack([items, extra]), dtype=np.float32)
        index = faiss.IndexHNSWFlat(items.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_L2)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(items)
        index.hnsw.efSearch = ef_search
        return cls(index)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` items of largest inner product with each query row (B, k) — queries
        as ``user_search_vectors`` gives them; -1 where fewer exist."""
        padded = np.hstack([queries, np.zeros((len(queries), 1), dtype=np.float32)])
        _, indices = self.index.search(np.ascontiguousarray(padded, dtype=np.float32), k)
        return indices

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def at(cls, path: Path) -> LazyItemIndex:
        """The index of ``path``, read at its first search (see LazyItemIndex)."""
        return LazyItemIndex(path)

    def save(self, path: Path) -> Path:
        partial = path.with_name(f".{path.name}.partial")
        try:  # written by Python, so that a full disk is an OSError that says so
            partial.write_bytes(faiss.serialize_index(self.index).tobytes())
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: Path, ef_search: int = EF_SEARCH) -> ItemIndex:
        index = faiss.read_index(str(path))
        cast(Any, faiss.downcast_index(index)).hnsw.efSearch = ef_search  # an HNSW index
        return cls(index)


class LazyItemIndex:
    """An index file read at its first search, not before: a worker's model that never
    recommends (a rating model beside the ranking one) never holds its graph, which is
    the worker's own memory (51 MB at 100,000 items: faiss reads an HNSW graph even when
    asked to map it). Its size is read from the file's header at once, so that a file
    of another catalog is refused when the model loads, not at a request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as file:  # faiss' header: fourcc, d (int32), ntotal (int64)
            header = file.read(16)
        if len(header) < 16:
            raise ValueError(f"{path} is not a faiss index (or is truncated)")
        self.n_items = int(np.frombuffer(header, "<i8", 1, 8)[0])
        self._index: ItemIndex | None = None
        self._lock = threading.Lock()

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """See ItemIndex.search."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = ItemIndex.load(self.path)
        return self._index.search(queries, k)


def index_path(artifact: Path | str) -> Path:
    """Where the index of an artifact lives: beside it."""
    return Path(artifact).with_suffix(".faiss")


def build_beside(
    model: CollabScorer, artifact: Path, min_items: int = ANN_MIN_ITEMS
) -> Path | None:
    """Build and save the index next to ``artifact`` when the catalog has at least
    ``min_items`` items and the model's scores are inner products; else None."""
    if model.n_items < min_items:
        return None
    try:
        index = ItemIndex.build(model)
    except CapabilityError:
        return None
    return index.save(index_path(artifact))


def _float32(vectors: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(vectors.detach().float().cpu().numpy())
