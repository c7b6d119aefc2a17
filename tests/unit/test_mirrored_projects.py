"""What the listing feed diffs against (``upstream.feeds.MirroredProjects``): the root index, held once."""

from __future__ import annotations

import random
from array import array

import pytest

from bandersnatch.names import normalize
from bandersnatch.upstream.feeds import MirroredProjects, _diff_block, _diff_entries, _normalized, _unset


def test_the_root_index_s_order_is_kept_and_names_are_found_by_bisection() -> None:
    known = MirroredProjects.from_entries([("alpha", 3), ("beta", None), ("gamma", 2**70)])
    assert known.names == ["alpha", "beta", "gamma"]
    assert list(known.serials) == [3, -1, 2**63 - 1]  # none: -1; past 64 bits: the highest
    assert [known.find(key) for key in ("alpha", "beta", "gamma", "aaa", "delta", "zzz", "")] == \
        [0, 1, 2, -1, -1, -1, -1]


def test_a_hand_made_list_out_of_order_is_sorted_each_name_once_with_its_highest_serial() -> None:
    known = MirroredProjects.from_entries([("b", 1), ("a", None), ("b", 5), ("c", 2), ("b", 3)])
    assert (known.names, list(known.serials)) == (["a", "b", "c"], [-1, 5, 2])


def test_nothing_mirrored_finds_nothing() -> None:
    known = MirroredProjects([], array("q"))
    assert len(known) == 0 and known.find("a") == -1


@pytest.mark.parametrize("flags, unset", [
    (b"", []), (b"\1\1", []), (b"\0", [0]), (b"\1\0\1\0\0", [1, 3, 4]),
])
def test_the_projects_the_listing_did_not_name_are_the_unset_flags(flags: bytes, unset: list[int]) -> None:
    assert list(_unset(bytearray(flags))) == unset


def test_a_block_of_the_listing_is_diffed_as_entry_by_entry() -> None:
    rng = random.Random(750)
    spellings = ["p{}", "P_{}", "p..{}", "p-{}", "p\n{}", "{}.X"]
    for _ in range(200):
        mirrored = sorted({f"p-{i}" for i in rng.sample(range(400), rng.randint(0, 300))})
        known = MirroredProjects.from_entries(
            (name, None if rng.random() < 0.05 else rng.randint(0, 9)) for name in mirrored)
        start = rng.randint(0, 400)
        numbers = range(start, start + rng.randint(1, 100))
        if rng.random() < 0.3:
            numbers = rng.sample(range(400), len(numbers))  # out of the index's order
        odd = rng.random() < 0.5
        names = [(rng.choice(spellings) if odd and rng.random() < 0.1 else "p-{}").format(i) for i in numbers]
        serials = [rng.randint(0, 10) if rng.random() < 0.05 else 0 for _ in names]
        serial = rng.randint(0, 10)
        keys = [normalize(name) for name in names]
        assert _normalized(names) == keys
        one_by_one, batched = bytearray(len(known)), bytearray(len(known))
        expected = list(_diff_entries(known, names, keys, serials, serial, one_by_one))
        assert list(_diff_block(known, names, serials, serial, batched)) == expected
        assert batched == one_by_one
