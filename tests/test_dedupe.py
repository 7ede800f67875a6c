"""Near-duplicate texts and photos."""

from __future__ import annotations

import pytest

from wildml.dedupe import UnionFind, near_duplicate_pairs, near_identical_photos, text_key


def test_exact_key_folds_case_and_spacing():
    assert text_key("Ivory  Bangle") == text_key("ivory bangle")
    assert text_key("ivory bangle") != text_key("ivory bangles")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "Antique carved ivory bangle, 62 mm, old stock, DM for price, ships worldwide",
            "Antique carved ivory bangle, 62 mm, old stock, DM for price, ships worldwide!!",
        ),
        (
            "出售老象牙手镯，保真，价格私聊，全国包邮，支持验货",
            "出售老象牙手镯，保真，价格私聊，全国包邮，支持验货。",
        ),
        (
            "ขายกำไลงาช้างแท้ ของเก่า สภาพดี ราคาคุยกันได้ ส่งฟรีทั่วประเทศ",
            "ขายกำไลงาช้างแท้ ของเก่า สภาพดี ราคาคุยกันได้ ส่งฟรีทั่วประเทศ!",
        ),
    ],
)
def test_near_duplicates_found(first, second):
    pairs = near_duplicate_pairs(
        ["a", "b", "c"], [first, second, "Fresh mangoes from our farm, 2 kg box"]
    )
    assert ("a", "b") in pairs
    assert all("c" not in pair for pair in pairs)


def test_short_texts_are_not_near_duplicates():
    assert near_duplicate_pairs(["a", "b"], ["ivory", "ivory"]) == []


def test_photo_pairs_by_hamming_distance():
    hashes = ["ffffffffffffffff", "fffffffffffffffe", "0000000000000000"]
    assert near_identical_photos(hashes, 2) == [(0, 1)]
    assert near_identical_photos(hashes, 0) == []


def test_union_find_names_groups_by_smallest_member():
    union = UnionFind(["c", "b", "a", "d"])
    union.union("c", "b")
    union.union("b", "a")
    groups = union.groups()
    assert groups["c"] == groups["b"] == groups["a"] == "a"
    assert groups["d"] == "d"
