"""Finding exact and near-duplicate listings and near-identical photos.

Texts are compared by MinHash over character shingles (which works the same for Chinese, Thai
and space-separated scripts) with locality-sensitive hashing, photos by the Hamming distance of
their perceptual hashes. Duplicates are joined into groups with a union-find, so that a later
split can keep every group on one side.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence

import numpy as np

logger = logging.getLogger(__name__)


class UnionFind:
    """Disjoint sets over string keys; a group is named by its smallest member."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._parent: dict[str, str] = {}
        for key in keys:
            self.add(key)

    def add(self, key: str) -> None:
        """Add a key as its own group if it is new."""
        self._parent.setdefault(key, key)

    def find(self, key: str) -> str:
        """Return the group name of ``key``."""
        self.add(key)
        root = key
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[key] != root:
            self._parent[key], key = root, self._parent[key]
        return root

    def union(self, first: str, second: str) -> None:
        """Join the groups of two keys."""
        root_a, root_b = self.find(first), self.find(second)
        if root_a != root_b:
            low, high = sorted((root_a, root_b))
            self._parent[high] = low

    def groups(self) -> dict[str, str]:
        """Map every key to its group name."""
        return {key: self.find(key) for key in self._parent}


def text_key(text: str) -> str:
    """Key under which two texts count as exact duplicates: case and spacing folded."""
    folded = " ".join(text.casefold().split())
    return hashlib.sha1(folded.encode("utf-8", "surrogatepass")).hexdigest()


def shingles(text: str, size: int) -> set[str]:
    """Character shingles of the case-folded text with spaces removed."""
    folded = "".join(text.casefold().split())
    if len(folded) < size:
        return {folded} if folded else set()
    return {folded[i : i + size] for i in range(len(folded) - size + 1)}


def near_duplicate_pairs(
    ids: Sequence[str],
    texts: Sequence[str],
    *,
    shingle: int = 5,
    num_perm: int = 128,
    threshold: float = 0.8,
    seed: int = 1,
) -> list[tuple[str, str]]:
    """Return pairs of ids whose texts have estimated Jaccard similarity >= ``threshold``.

    Texts shorter than ``2 * shingle`` characters are left out: on so little text a high
    similarity means nothing. Candidate pairs from LSH are checked with the MinHash estimate.
    """
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    signatures: dict[str, MinHash] = {}
    pairs: list[tuple[str, str]] = []
    for listing_id, text in zip(ids, texts, strict=True):
        grams = shingles(text, shingle)
        if len("".join(text.split())) < 2 * shingle:
            continue
        signature = MinHash(num_perm=num_perm, seed=seed)
        signature.update_batch([gram.encode("utf-8", "surrogatepass") for gram in grams])
        for other in lsh.query(signature):
            if signatures[other].jaccard(signature) >= threshold:
                pairs.append((other, listing_id))
        lsh.insert(listing_id, signature)
        signatures[listing_id] = signature
    return pairs


def phash_hex(image) -> str:
    """Perceptual hash of a PIL image as 16 hex digits."""
    import imagehash

    return str(imagehash.phash(image))


def near_identical_photos(hashes: Sequence[str], max_distance: int) -> list[tuple[int, int]]:
    """Return index pairs of photos whose perceptual hashes differ in <= ``max_distance`` bits."""
    if len(hashes) < 2:
        return []
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    pairs: list[tuple[int, int]] = []
    for start in range(len(values) - 1):
        rest = values[start + 1 :] ^ values[start]
        distance = np.unpackbits(rest.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        for offset in np.nonzero(distance <= max_distance)[0]:
            pairs.append((start, start + 1 + int(offset)))
    return pairs
