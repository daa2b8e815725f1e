"""The serving snapshot written beside a model version: what a worker needs besides the
weights, so that it starts without reading the ratings table.

It holds, as of one write number (``ratings.seq``):

- every model user's seen items and which of them they liked, over every rating the
  database holds (CSR: ``indptr``, ``indices``, ``liked``);
- each rated item's number of ratings and sum of ratings (the catalog's popularity
  order and means; titles, genres and hidden flags are read from the items table,
  which is small and edited through the API);
- each item's embedding scaled to length one (``Recommender.unit_items``: similar
  items and "because you liked" are their products);
- for a catalog of up to ``SIMILARITY_TABLE_MAX_ITEMS`` items, every item pair's
  similarity, which "because you liked" looks up (see
  ``Recommender.use_similarity_table``).

One file, ``<artifact>.serving``: a JSON header, then flat little-endian arrays,
each 64-byte aligned. A worker maps it read-only, so every worker on the machine
shares one copy in the page cache; nothing in it is unpickled. The header names the
version, the database and digests of the model's id maps: a snapshot that does
not match its artifact, or that is truncated or damaged, is refused with
:class:`SnapshotUnusable` and the loader reads the database instead (and says so).
Ratings written after the snapshot's number are folded in by the follower, as for
any served model.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.collab.interactions import Interactions, RatingsSnapshot
from recsys.collab.recommender import SIMILARITY_TABLE_MAX_ITEMS, Recommender, load_recommender
from recsys.data.ids import ID_SEPARATOR, IdMap, ids_digest, pack_ids

MAGIC = b"recsys serving snapshot\n"
FORMAT = 4  # 2: the similarity table; 3: the unit item vectors; 4: ids' digests
ALIGN = 64
_LENGTH = struct.Struct("<Q")  # the header's length in bytes, after the magic
ARRAYS = (
    "seen_indptr",
    "seen_indices",
    "seen_liked",
    "item_id_text",  # the rated items' ids, UTF-8, separated by ID_SEPARATOR
    "item_n_ratings",
    "item_rating_sums",
    "unit_items",  # each model item's embedding scaled to length one
    "item_similarity",  # every model item pair's, for a small catalog; else (0, 0)
)


class SnapshotUnusable(ValueError):
    """A snapshot file that cannot serve its version: damaged, truncated or another
    version's (the message says which)."""


def snapshot_path(artifact_path: Path | str) -> Path:
    """Where the snapshot of the model file ``artifact_path`` lives."""
    path = Path(artifact_path)
    return path.with_name(f"{path.name}.serving")


@dataclass(frozen=True)
class ItemAggregates:
    """Per rated item (external id as text): how many ratings and their sum."""

    item_ids: np.ndarray  # object array of str
    n_ratings: np.ndarray  # int64
    rating_sums: np.ndarray  # float64

    @classmethod
    def of(cls, ratings: RatingsSnapshot) -> ItemAggregates:
        table = ratings.table
        items = table.items.numpy()
        n_items = len(table.item_map)
        return cls(
            np.array([str(i) for i in table.item_map.ids.tolist()], dtype=object),
            np.bincount(items, minlength=n_items).astype(np.int64),
            np.bincount(items, weights=table.ratings.numpy(), minlength=n_items),
        )

    @property
    def mean_ratings(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.rating_sums / self.n_ratings


@dataclass(frozen=True)
class ServingSnapshot:
    """A version's seen items and the catalog's aggregates as of write ``through``."""

    seen: Interactions
    items: ItemAggregates
    unit_items: np.ndarray
    item_similarity: np.ndarray | None
    through: int
    source: str  # "file <path>" or "database": where it came from, for the log

    @classmethod
    def build(cls, ratings: RatingsSnapshot, recommender: Recommender) -> ServingSnapshot:
        """For ``recommender``'s model from every rating read at once (see
        RatingsSnapshot)."""
        seen = Interactions.from_snapshot(ratings, recommender.user_map, recommender.item_map)
        small = len(recommender.item_map) <= SIMILARITY_TABLE_MAX_ITEMS
        table = recommender.item_similarity_table() if small else None
        units = recommender.unit_items
        return cls(seen, ItemAggregates.of(ratings), units, table, ratings.through, "database")

    def save(self, path: Path | str, user_map: IdMap, item_map: IdMap, **header: Any) -> Path:
        """Write atomically (a temporary file renamed into place); ``header``: what the
        loader checks besides the id maps (the version and the database)."""
        path = Path(path)
        text = ID_SEPARATOR.join(self.items.item_ids.tolist()).encode()
        arrays = {
            "seen_indptr": self.seen.indptr.astype("<i8"),
            "seen_indices": self.seen.indices.astype("<i4"),
            "seen_liked": self.seen.liked_flags.astype(bool),
            "item_id_text": np.frombuffer(text, dtype=np.uint8),
            "item_n_ratings": self.items.n_ratings.astype("<i8"),
            "item_rating_sums": self.items.rating_sums.astype("<f8"),
            "unit_items": self.unit_items.astype("<f4"),
            "item_similarity": (
                np.zeros((0, 0)) if self.item_similarity is None else self.item_similarity
            ).astype("<f4"),
        }
        layout: dict[str, dict[str, Any]] = {}
        offset = 0
        for name, array in arrays.items():
            offset = -(-offset // ALIGN) * ALIGN
            layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "at": offset}
            offset += array.nbytes
        description = json.dumps(
            {
                "format": FORMAT,
                "through": self.through,
                "n_users": len(user_map),
                "n_items": len(item_map),
                "users": ids_digest(pack_ids(user_map.ids.tolist())),
                "items": ids_digest(pack_ids(item_map.ids.tolist())),
                "arrays": layout,
                **header,
            }
        ).encode()
        start = -(-(len(MAGIC) + _LENGTH.size + len(description)) // ALIGN) * ALIGN
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with temporary.open("wb") as file:
                file.write(MAGIC + _LENGTH.pack(len(description)) + description)
                for name, array in arrays.items():
                    file.seek(start + layout[name]["at"])
                    file.write(np.ascontiguousarray(array).tobytes())
                file.truncate(start + offset)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)  # never half a snapshot left behind
            raise
        return path

    @classmethod
    def load(
        cls, path: Path | str, user_map: IdMap, item_map: IdMap, **expected: Any
    ) -> ServingSnapshot:
        """Map the file read-only; SnapshotUnusable when it is damaged or was not
        written for these id maps and ``expected`` header values."""
        path = Path(path)
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        header, start = _read_header(mapped, path)
        wanted = {
            "format": FORMAT,
            "n_users": len(user_map),
            "n_items": len(item_map),
            **expected,
        }
        for key, value in wanted.items():
            if header.get(key) != value:
                raise SnapshotUnusable(
                    f"{path} is not this version's snapshot: {key} is {header.get(key)!r}, "
                    f"not {value!r}"
                )
        arrays = _arrays(mapped, header["arrays"], start, size, path)
        # Checked after the sizes: the id maps' digests cost a pass over the ids.
        for key, ids in (("users", user_map.ids), ("items", item_map.ids)):
            if header.get(key) != ids_digest(pack_ids(ids.tolist())):
                raise SnapshotUnusable(f"{path} was written for other {key} than the model's")
        indptr = arrays["seen_indptr"]
        if len(indptr) != len(user_map) + 1 or indptr[-1] != len(arrays["seen_indices"]):
            raise SnapshotUnusable(f"{path} is damaged: its seen items do not add up")
        text = arrays["item_id_text"].tobytes().decode()
        item_ids = np.array(text.split(ID_SEPARATOR) if text else [], dtype=object)
        if len(item_ids) != len(arrays["item_n_ratings"]):
            raise SnapshotUnusable(f"{path} is damaged: its item ids do not add up")
        seen = Interactions(
            indptr, arrays["seen_indices"], arrays["seen_liked"], len(item_map), header["through"]
        )
        items = ItemAggregates(item_ids, arrays["item_n_ratings"], arrays["item_rating_sums"])
        units = arrays["unit_items"]
        if units.ndim != 2 or len(units) != len(item_map):
            raise SnapshotUnusable(f"{path} is damaged: its unit item vectors are {units.shape}")
        table = arrays["item_similarity"]
        if table.size and table.shape != (len(item_map),) * 2:
            raise SnapshotUnusable(f"{path} is damaged: its similarity table is {table.shape}")
        similarity = table if table.size else None
        return cls(seen, items, units, similarity, int(header["through"]), f"file {path}")


def _arrays(
    mapped: mmap.mmap | bytes, layout: dict[str, Any], start: int, size: int, path: Path
) -> dict[str, np.ndarray]:
    """Read-only views of the arrays the header lays out."""
    arrays = {}
    try:
        for name in ARRAYS:
            if name not in layout:
                raise SnapshotUnusable(f"{path} has no {name} array")
            spec = layout[name]
            dtype, shape = np.dtype(spec["dtype"]), tuple(int(n) for n in spec["shape"])
            count, at = int(np.prod(shape)), start + int(spec["at"])
            if at + count * dtype.itemsize > size:
                raise SnapshotUnusable(f"{path} is truncated: {name} runs past its end")
            arrays[name] = np.frombuffer(mapped, dtype, count, at).reshape(shape)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, SnapshotUnusable):
            raise
        raise SnapshotUnusable(f"{path} has a damaged header ({error})") from None
    return arrays


def _read_header(mapped: mmap.mmap | bytes, path: Path) -> tuple[dict[str, Any], int]:
    """The header and where the arrays start."""
    fixed = len(MAGIC) + _LENGTH.size
    if len(mapped) < fixed or mapped[: len(MAGIC)] != MAGIC:
        raise SnapshotUnusable(f"{path} is not a serving snapshot (or is damaged)")
    (length,) = _LENGTH.unpack(mapped[len(MAGIC) : fixed])
    try:
        header = json.loads(bytes(mapped[fixed : fixed + length]))
    except ValueError:
        raise SnapshotUnusable(f"{path} has a damaged header") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), dict):
        raise SnapshotUnusable(f"{path} has a damaged header")
    return header, -(-(fixed + length) // ALIGN) * ALIGN


def write_snapshot(
    ratings: RatingsSnapshot, artifact_path: Path | str, version_id: int, database: str
) -> Path:
    """Write the serving snapshot of version ``version_id``, whose model file is
    ``artifact_path``, from ``ratings``: by the training job from the ratings it read,
    and by `recsys models snapshot`."""
    recommender = load_recommender(artifact_path)
    snapshot = ServingSnapshot.build(ratings, recommender)
    return snapshot.save(
        snapshot_path(artifact_path),
        recommender.user_map,
        recommender.item_map,
        version_id=version_id,
        database=database,
    )
