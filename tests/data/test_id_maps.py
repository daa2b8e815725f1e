"""Id maps: lookups like a dict's, how a model file keeps the ids, and the maps shared
between models loaded together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.data.ids import IdMap, SharedIdMaps, UnknownIdError, pack_ids, unpack_ids


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


def test_lookups_answer_as_a_dict_would() -> None:
    ids = ["196", "22", "ü", 7, -1, -2, 3.5]  # hash(-1) == hash(-2) in CPython
    id_map = IdMap("user", np.array(ids, dtype=object))
    as_dict = {key: i for i, key in enumerate(ids)}
    asked = [*ids, "7", 7.0, "nope", None, (1, 2)]
    assert [id_map.position(x) for x in asked] == [as_dict.get(x, -1) for x in asked]
    assert id_map.positions(asked).tolist() == [as_dict.get(x, -1) for x in asked]
    many = asked * 10  # the vectorised search, for many at once
    assert id_map.positions(many).tolist() == [as_dict.get(x, -1) for x in many]
    assert [x in id_map for x in asked] == [x in as_dict for x in asked]
    assert id_map.positions([[1]]).tolist() == [-1]  # unhashable: never an id
    assert id_map.indices(["22", -2]).tolist() == [1, 5]
    with pytest.raises(UnknownIdError, match="unknown user id 'nope'"):
        id_map.indices(["22", "nope", "x"])
    assert IdMap("item", np.array([], dtype=object)).positions(["a"]).tolist() == [-1]


def test_a_map_without_some_ids_finds_none_of_them_and_keeps_every_index() -> None:
    ids = ["196", "22", "ü", 7, -1, -2, 3.5]
    whole = IdMap("user", np.array(ids, dtype=object))
    forgotten = {"22", -2}  # -2 shares its hash with -1, which stays found
    partial = whole.without(whole.indices(list(forgotten)))
    expected = [-1 if key in forgotten else i for i, key in enumerate(ids)]
    assert [partial.position(x) for x in ids] == expected
    assert partial.positions(ids * 10).tolist() == expected * 10  # the vectorised search
    assert [x in partial for x in ids] == [x not in forgotten for x in ids]
    with pytest.raises(UnknownIdError, match="unknown user id '22'"):
        partial.indices(["196", "22"])
    assert len(partial) == len(whole)
    assert list(partial.ids) == ids  # indices unchanged: the model's rows
    assert list(partial.present_ids()) == [x for x in ids if x not in forgotten]
    assert partial.without(np.array([0])).positions(ids).tolist() == [-1, *expected[1:]]
    assert whole.present is None
    assert partial.full.positions(ids).tolist() == list(range(len(ids)))
    assert whole.positions(ids).tolist() == list(range(len(ids)))  # the original untouched
