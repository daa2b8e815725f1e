"""External ids and model indices: the maps between them, how a model file keeps the ids,
and the maps shared by the models loaded together; what counts as "liked". Nothing here
touches the database (recsys.data.ratings reads the ratings into these)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

# A rating at or above this counts as "liked": the ranking objective's full-weight
# interactions, relevance in evaluation, and the "because you liked" reasons.
LIKED_AT = 4.0


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
        text = ID_SEPARATOR.join(ids).encode()  # type: ignore[arg-type]  # every id is text here (checked above)
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
