"""Grouped, stratified splitting."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildml.split import grouped_split


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from(["1|ivory", "0|", "1|rhino"])),
        min_size=1,
        max_size=200,
    ),
    st.integers(0, 1000),
)
def test_no_group_straddles_splits(rows, seed):
    groups = [f"g{g}" for g, _ in rows]
    strata = [s for _, s in rows]
    assignment = grouped_split(groups, strata, validation=0.2, test=0.2, seed=seed)
    seen: dict[str, set[str]] = defaultdict(set)
    for group, split in zip(groups, assignment, strict=True):
        seen[group].add(split)
    assert all(len(splits) == 1 for splits in seen.values())
    assert set(assignment) <= {"train", "validation", "test"}


def test_shares_and_strata_are_respected():
    groups = [f"g{i}" for i in range(1000)]
    strata = ["1|ivory" if i % 10 == 0 else "0|" for i in range(1000)]
    assignment = grouped_split(groups, strata, validation=0.15, test=0.25, seed=3)
    counts = Counter(assignment)
    assert counts["test"] == pytest.approx(250, abs=5)
    assert counts["validation"] == pytest.approx(150, abs=5)
    positives = Counter(a for a, s in zip(assignment, strata, strict=True) if s == "1|ivory")
    assert positives["test"] == pytest.approx(25, abs=2)
    assert positives["validation"] == pytest.approx(15, abs=2)


def test_same_seed_same_split_and_bad_shares():
    groups = [f"g{i % 40}" for i in range(100)]
    strata = ["a" if i % 3 else "b" for i in range(100)]
    first = grouped_split(groups, strata, validation=0.2, test=0.2, seed=5)
    assert first == grouped_split(groups, strata, validation=0.2, test=0.2, seed=5)
    with pytest.raises(ValueError):
        grouped_split(groups, strata, validation=0.6, test=0.5, seed=5)
