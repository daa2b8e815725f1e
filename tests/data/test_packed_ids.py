"""How a model file keeps its ids, and the maps shared between models loaded together."""

from __future__ import annotations

import numpy as np
import torch

from recsys.data.ratings import IdMap, SharedIdMaps, pack_ids, unpack_ids


def test_text_ids_are_one_tensor_and_others_a_list() -> None:
    text = ["196", "u 2", "Ünïcode", ""]
    packed = pack_ids(text)
    assert isinstance(packed, torch.Tensor)
    assert unpack_ids(packed) == text
    assert pack_ids([196, 22]) == [196, 22]  # a notebook's int ids stay ints
    assert pack_ids(["a\x1fb"]) == ["a\x1fb"]  # the separator itself: kept as a list
    assert unpack_ids(pack_ids([])) == []


def test_equal_ids_get_one_map_and_different_ids_their_own() -> None:
    served = IdMap("user", np.array(["1", "2", "3"], dtype=object))
    shared = SharedIdMaps([served])
    assert shared.get("user", pack_ids(["1", "2", "3"])) is served
    other = shared.get("user", pack_ids(["1", "3", "2"]))  # same ids, another order
    assert other is not served
    assert other.index("3") == 1
    assert shared.get("item", pack_ids(["1", "2", "3"])) is not served  # another kind
    ints = shared.get("user", [1, 2])
    assert shared.get("user", [1, 2]) is ints
    assert ints.index(2) == 1
