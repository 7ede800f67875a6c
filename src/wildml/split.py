"""Group-aware, stratified train/validation/test split.

Whole duplicate groups are assigned to one split. Groups are taken stratum by stratum (label,
product and language by default) in a seeded random order, and each goes to the split that is
furthest below its target share, so every stratum is spread over the splits in proportion.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "validation", "test")


def grouped_split(
    groups: Sequence[str],
    strata: Sequence[str],
    *,
    validation: float,
    test: float,
    seed: int,
) -> list[str]:
    """Assign each row a split so that no group straddles two splits.

    Parameters
    ----------
    groups
        Group name per row (rows of one duplicate group share it).
    strata
        Stratum per row; a group's stratum is its rarest member stratum, so a group holding
        one positive counts as positive.
    validation, test
        Target shares of rows for those splits; the rest is train.
    seed
        Seed of the group order.

    Returns
    -------
    list of str
        ``train``, ``validation`` or ``test`` per row.
    """
    if not 0 <= validation < 1 or not 0 <= test < 1 or validation + test >= 1:
        raise ValueError("validation and test shares must be in [0, 1) and sum below 1")
    shares = np.array([1 - validation - test, validation, test])
    group_rows: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        group_rows[group].append(index)
    stratum_size: dict[str, int] = defaultdict(int)
    for stratum in strata:
        stratum_size[stratum] += 1
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for group, rows in group_rows.items():
        rarest = min((strata[row] for row in rows), key=lambda s: (stratum_size[s], s))
        by_stratum[rarest].append(group)
    rng = np.random.default_rng(seed)
    assignment = [""] * len(groups)
    for stratum in sorted(by_stratum, key=lambda s: (stratum_size[s], s)):
        _assign_stratum(by_stratum[stratum], group_rows, shares, rng, assignment)
    return assignment


def _assign_stratum(
    stratum_groups: list[str],
    group_rows: dict[str, list[int]],
    shares: np.ndarray,
    rng: np.random.Generator,
    assignment: list[str],
) -> None:
    order = rng.permutation(len(stratum_groups))
    # Large groups first, so the small ones can even out the shares afterwards.
    ordered = sorted(
        (stratum_groups[i] for i in order), key=lambda g: -len(group_rows[g]), reverse=False
    )
    counts = np.zeros(3)
    total = sum(len(group_rows[g]) for g in ordered)
    for group in ordered:
        size = len(group_rows[group])
        deficit = shares * (counts.sum() + size) - counts
        # Test and validation get their first group before train does, so a small stratum
        # still reaches the held-out splits.
        if counts.sum() == 0 and total >= 3:
            choice = int(np.argmax(shares[1:]) + 1) if shares[1:].max() > 0 else 0
        else:
            choice = int(np.argmax(deficit))
        counts[choice] += size
        for row in group_rows[group]:
            assignment[row] = SPLITS[choice]
