"""Read ratings from the database into contiguous indices and tensors.

Users and items get indices 0..n-1 in the order of their database ids, so the
same database gives the same indices every time; the external ids are kept
beside the tensors for serving (index -> id) and lookup (id -> index).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sqlalchemy import Connection, Engine, Table, literal, select, true, tuple_

from recsys.db.tables import deletions, items, ratings, users
from recsys.db.write_log import write_number

# A rating at or above this counts as "liked": the ranking objective's full-weight
# interactions, relevance in evaluation, and the "because you liked" reasons.
LIKED_AT = 4.0
# How many written ratings a worker reads per query when it follows the write log.
FOLLOW_PAGE_ROWS = 100_000
CHANGE_COLUMNS = ["user_id", "item_id", "rating", "seq"]
DELETION_COLUMNS = ["seq", "kind", "user_id", "item_id"]


class UnknownIdError(KeyError):
    """An external id the data (or model) has never seen."""

    def __init__(self, kind: str, external_id: object) -> None:
        self.kind = kind
        self.external_id = external_id
        super().__init__(f"unknown {kind} id {external_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class IdMap:
    """External ids in index order, and the reverse lookup.

    The lookup is the ids' hashes, sorted, beside the order that sorts them: a binary
    search finds an id's candidates and equality confirms one, as a dict would (hash,
    then ==), in 16 bytes an id. A dict of a million users took 59 MB of every serving
    worker's own memory; this takes 16 MB, and a lookup about 2 µs.
    """

    kind: str
    ids: np.ndarray
    _hashes: np.ndarray = field(init=False, repr=False, compare=False)  # sorted
    _order: np.ndarray = field(init=False, repr=False, compare=False)  # ids' indices
    # Indices no lookup finds (see without); None: every id is found.
    _absent: np.ndarray | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        hashes = np.fromiter(map(hash, self.ids.tolist()), dtype=np.int64, count=len(self.ids))
        order = np.argsort(hashes, kind="stable")
        object.__setattr__(self, "_hashes", hashes[order])
        object.__setattr__(self, "_order", order)

    def __len__(self) -> int:
        return len(self.ids)

    def without(self, indices: np.ndarray) -> IdMap:
        """The same ids at the same indices, but those at ``indices`` (and any this map
        leaves out already) found by no lookup: erased users and deleted items, whose
        vectors a model keeps until it is trained again. Shares the lookup arrays."""
        absent = np.zeros(len(self), dtype=bool) if self._absent is None else self._absent.copy()
        absent[np.asarray(indices, dtype=np.int64)] = True
        view = copy.copy(self)
        object.__setattr__(view, "_absent", absent)
        return view

    @property
    def full(self) -> IdMap:
        """This map with every id found (the one :meth:`without` started from)."""
        if self._absent is None:
            return self
        whole = copy.copy(self)
        object.__setattr__(whole, "_absent", None)
        return whole

    @property
    def present(self) -> np.ndarray | None:
        """Which indices lookups find (a bool per id); None when all are."""
        return None if self._absent is None else ~self._absent

    def present_ids(self) -> np.ndarray:
        """The ids lookups find, in index order."""
        return self.ids if self._absent is None else self.ids[~self._absent]

    def __contains__(self, external_id: object) -> bool:
        return self.position(external_id) >= 0

    def index(self, external_id: object) -> int:
        """The index of one external id; UnknownIdError when it was never seen."""
        found = self.position(external_id)
        if found < 0:
            raise UnknownIdError(self.kind, external_id)
        return found

    def position(self, external_id: object) -> int:
        """The index of one external id, or -1 when it was never seen."""
        try:
            key = hash(external_id)
        except TypeError:  # unhashable: never an id
            return -1
        start = int(np.searchsorted(self._hashes, key))
        while start < len(self._hashes) and self._hashes[start] == key:
            candidate = int(self._order[start])
            known = self.ids[candidate]
            if known is external_id or known == external_id:
                return -1 if self._absent is not None and self._absent[candidate] else candidate
            start += 1
        return -1

    def positions(self, external_ids: Iterable[object]) -> np.ndarray:
        """Indices of many external ids, -1 for those never seen: one binary search for
        all, then a scalar look for the rare id whose hash another id shares."""
        wanted = list(external_ids)
        if len(wanted) < 32:  # a request's few: the vectorised search costs more
            return np.fromiter(map(self.position, wanted), dtype=np.int64, count=len(wanted))
        try:
            keys = np.fromiter(map(hash, wanted), dtype=np.int64, count=len(wanted))
        except TypeError:  # an unhashable one among them
            return np.fromiter(map(self.position, wanted), dtype=np.int64, count=len(wanted))
        if not len(self) or not wanted:
            return np.full(len(wanted), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._hashes, keys), len(self) - 1)
        candidates = self._order[at]
        hashed = self._hashes[at] == keys
        values = np.empty(len(wanted), dtype=object)
        values[:] = wanted
        same = hashed & (self.ids[candidates] == values).astype(bool)
        found = np.where(same, candidates, -1)
        if self._absent is not None:
            found[same & self._absent[candidates]] = -1
        for row in np.flatnonzero(hashed & ~same):  # another id with the same hash first
            found[row] = self.position(wanted[row])
        return found.astype(np.int64)

    def indices(self, external_ids: Iterable[object]) -> np.ndarray:
        """Indices of many external ids; UnknownIdError names the first unknown one."""
        wanted = list(external_ids)
        found = self.positions(wanted)
        unknown = np.flatnonzero(found < 0)
        if len(unknown):
            raise UnknownIdError(self.kind, wanted[unknown[0]])
        return found


ID_SEPARATOR = "\x1f"  # never in an id that the database accepts (see recsys.db.validate)
PackedIds = list[object] | torch.Tensor


def pack_ids(ids: Sequence[object]) -> PackedIds:
    """Ids as a model file keeps them: text ids as one UTF-8 tensor, separated by
    ``ID_SEPARATOR`` (mapped from the file when it is loaded: no Python object per id
    until a map is built), any others as a list."""
    ids = list(ids)
    if ids and all(isinstance(i, str) and ID_SEPARATOR not in i for i in ids):
        text = ID_SEPARATOR.join(ids).encode()  # type: ignore[arg-type]
        return torch.frombuffer(bytearray(text), dtype=torch.uint8)
    return ids


def unpack_ids(packed: PackedIds) -> list[object]:
    """The ids :func:`pack_ids` packed, in order."""
    if isinstance(packed, torch.Tensor):
        return list(packed.numpy().tobytes().decode().split(ID_SEPARATOR))
    return list(packed)


class SharedIdMaps:
    """Id maps kept once for the models loaded together: two versions trained on the same
    ratings know the same users, and a map of a million of them costs 130 MB. A map is
    found by a digest of its packed ids (see :func:`pack_ids`), without unpacking them."""

    def __init__(self, maps: Iterable[IdMap] = ()) -> None:
        self._given = list(maps)  # digested at the first get: most passes load nothing
        self._maps: dict[tuple[str, str], IdMap] = {}

    def get(self, kind: str, packed: PackedIds) -> IdMap:
        """The map of ``packed`` ids: one already kept, or a new one, kept."""
        for known in self._given:
            self._maps.setdefault((known.kind, ids_digest(pack_ids(known.ids.tolist()))), known)
        self._given = []
        key = (kind, ids_digest(packed))
        if key not in self._maps:
            self._maps[key] = IdMap(kind, np.asarray(unpack_ids(packed), dtype=object))
        return self._maps[key]


def ids_digest(packed: PackedIds) -> str:
    """A digest of ids in order, as :func:`pack_ids` packs them: equal for the same ids
    only (what shares an id map, and ties a serving snapshot to its model's ids)."""
    data = packed.numpy().tobytes() if isinstance(packed, torch.Tensor) else repr(packed).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class RatingsTable:
    """All ratings as index tensors, with the id maps and optional metadata frames."""

    users: torch.Tensor  # (n_ratings,) int64 user indices
    items: torch.Tensor  # (n_ratings,) int64 item indices
    ratings: torch.Tensor  # (n_ratings,) float32
    timestamps: torch.Tensor  # (n_ratings,) int64 Unix seconds
    user_map: IdMap
    item_map: IdMap
    user_metadata: pd.DataFrame | None = None  # one row per user index
    item_metadata: pd.DataFrame | None = None  # one row per item index

    def __len__(self) -> int:
        return len(self.ratings)

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    def take(self, rows: np.ndarray) -> RatingsTable:
        """The ratings at ``rows``, with the same id maps and metadata."""
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return RatingsTable(
            self.users[index],
            self.items[index],
            self.ratings[index],
            self.timestamps[index],
            self.user_map,
            self.item_map,
            self.user_metadata,
            self.item_metadata,
        )

    def frame(self) -> pd.DataFrame:
        """The ratings in external ids: user_id, item_id, rating, timestamp."""
        return pd.DataFrame(
            {
                "user_id": self.user_map.ids[self.users.numpy()],
                "item_id": self.item_map.ids[self.items.numpy()],
                "rating": self.ratings.numpy(),
                "timestamp": self.timestamps.numpy(),
            }
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        user_col: str = "user_id",
        item_col: str = "item_id",
        rating_col: str = "rating",
        timestamp_col: str = "timestamp",
    ) -> RatingsTable:
        """The same table from a frame (no metadata): what the benchmarks hand to the
        training job's ``fit_select_refit`` without going through a database."""
        user_index, user_ids = pd.factorize(frame[user_col], sort=True)
        item_index, item_ids = pd.factorize(frame[item_col], sort=True)
        return cls(
            users=torch.from_numpy(user_index.astype(np.int64)),
            items=torch.from_numpy(item_index.astype(np.int64)),
            ratings=torch.from_numpy(frame[rating_col].to_numpy(np.float32, copy=True)),
            timestamps=torch.from_numpy(frame[timestamp_col].to_numpy(np.int64, copy=True)),
            user_map=IdMap("user", np.asarray(user_ids, dtype=object)),
            item_map=IdMap("item", np.asarray(item_ids, dtype=object)),
        )


def read_ratings(
    engine: Engine, *, with_metadata: bool = False, chunk_rows: int = 100_000
) -> RatingsTable:
    """Stream every rating out of the database in chunks into a :class:`RatingsTable`."""
    parts = []
    with engine.connect() as connection:
        # The driver's own cursor, not SQLAlchemy rows: this loop is the whole cost
        # of building a data set, and tuples -> one float64 array is the fast path.
        # PostgreSQL streams through a server-side (named) cursor; SQLite steps lazily.
        driver = connection.connection.driver_connection
        is_postgres = connection.dialect.name == "postgresql"
        cursor = driver.cursor(name="recsys_read_ratings") if is_postgres else driver.cursor()
        try:
            cursor.execute("SELECT user_id, item_id, value, timestamp FROM ratings")
            while rows := cursor.fetchmany(chunk_rows):
                parts.append(np.array(rows, dtype=np.float64))  # (rows, 4); ids < 2**53
        finally:
            cursor.close()
        user_rows = _entity_rows(connection, users, with_metadata)
        item_rows = _entity_rows(connection, items, with_metadata)
    columns = np.concatenate(parts) if parts else np.empty((0, 4))
    # Sorting makes the row order independent of how the rows were stored.
    order = np.lexsort((columns[:, 1], columns[:, 0]))
    columns = columns[order]

    user_db_ids, user_index = np.unique(columns[:, 0].astype(np.int64), return_inverse=True)
    item_db_ids, item_index = np.unique(columns[:, 1].astype(np.int64), return_inverse=True)
    user_rows = user_rows.loc[user_db_ids]
    item_rows = item_rows.loc[item_db_ids]
    return RatingsTable(
        users=torch.from_numpy(user_index.astype(np.int64)),
        items=torch.from_numpy(item_index.astype(np.int64)),
        ratings=torch.from_numpy(columns[:, 2].astype(np.float32)),
        timestamps=torch.from_numpy(columns[:, 3].astype(np.int64)),
        user_map=IdMap("user", user_rows["external_id"].to_numpy(dtype=object)),
        item_map=IdMap("item", item_rows["external_id"].to_numpy(dtype=object)),
        user_metadata=user_rows.reset_index(drop=True) if with_metadata else None,
        item_metadata=item_rows.reset_index(drop=True) if with_metadata else None,
    )


def _entity_rows(connection: Connection, table: Table, with_metadata: bool) -> pd.DataFrame:
    columns = (
        [c for c in table.c if c.name != "created_at"]
        if with_metadata
        else [table.c.id, table.c.external_id]
    )
    rows = connection.execute(select(*columns)).all()
    return pd.DataFrame(rows, columns=[c.name for c in columns]).set_index("id")


def latest_write(engine: Engine) -> int:
    """The number of the latest write to the ratings, deletions included (0 before any).
    Writes take their numbers in commit order, so every write up to it has committed."""
    with engine.connect() as connection:
        return write_number(connection)


def read_deletions(
    engine: Engine, after: int, through: int, kinds: Sequence[str] = ("rating", "item", "user")
) -> pd.DataFrame:
    """The tombstones of writes ``after`` < seq <= ``through`` (see recsys.db.deletion),
    oldest first: seq, kind, user_id, item_id."""
    query = (
        select(deletions.c.seq, deletions.c.kind, deletions.c.user_id, deletions.c.item_id)
        .where(deletions.c.seq > after, deletions.c.seq <= through, deletions.c.kind.in_(kinds))
        .order_by(deletions.c.seq, deletions.c.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=DELETION_COLUMNS)


def read_rating_changes(
    engine: Engine, after: int, through: int | None = None, page_rows: int = FOLLOW_PAGE_ROWS
) -> Iterator[pd.DataFrame]:
    """Ratings written after write number ``after`` (up to ``through`` when given),
    oldest first, in pages of at most ``page_rows``: user_id, item_id, rating, seq.

    Every rating of one write carries the same seq, and one write may hold millions:
    the pages go on from the last (seq, user, item) read, never from the last seq
    alone, which would skip the rest of a write cut by a page. The last page is the
    first shorter than ``page_rows``; a write committed meanwhile is read to its end.
    """
    query = (
        select(
            users.c.external_id.label("user_id"),
            items.c.external_id.label("item_id"),
            ratings.c.value.label("rating"),
            ratings.c.seq,
            ratings.c.user_id.label("user_key"),
            ratings.c.item_id.label("item_key"),
        )
        .select_from(
            ratings.join(users, users.c.id == ratings.c.user_id).join(
                items, items.c.id == ratings.c.item_id
            )
        )
        .order_by(ratings.c.seq, ratings.c.user_id, ratings.c.item_id)  # ix_ratings_seq
        .limit(page_rows)
    )
    bound = ratings.c.seq <= through if through is not None else true()
    where = ratings.c.seq > after
    while True:
        with engine.connect() as connection:
            rows = connection.execute(query.where(where, bound)).all()
        if rows:
            yield pd.DataFrame([row[:4] for row in rows], columns=CHANGE_COLUMNS)
        if len(rows) < page_rows:
            return
        seq, user_key, item_key = rows[-1][3:]
        where = tuple_(ratings.c.seq, ratings.c.user_id, ratings.c.item_id) > tuple_(
            literal(seq), literal(user_key), literal(item_key)
        )
