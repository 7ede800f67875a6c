"""``photo_scores.parquet`` and ``listing_scores.parquet``: per photo, and max per listing."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def photo_scores(
    frames: dict[str, pd.DataFrame],
    features: dict[str, tuple[np.ndarray, list[str]]],
    probs: dict[str, np.ndarray],
    oof_mask: np.ndarray,
    classes: list[str],
) -> pd.DataFrame:
    """One row per photo: image_path, listing_id, split, p_<class>, status, label, oof."""
    parts = []
    for split, frame in frames.items():
        part = pd.DataFrame(
            {
                "image_path": frame["image_path"].astype(str),
                "listing_id": frame["listing_id"].fillna("").astype(str),
                "split": split,
            }
        )
        for j, name in enumerate(classes):
            part[f"p_{name}"] = probs[split][:, j] if len(frame) else []
        part["status"] = features[split][1]
        part["label"] = [classes[t] if t >= 0 else "" for t in frame["target"]]
        part["label_source"] = frame["label_source"].to_numpy()
        part["oof"] = oof_mask if split == "train" else False
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def load_listing_splits(listings_dir: Path) -> pd.DataFrame | None:
    """listing_id and split of every prepared listing, or None when there are none."""
    if not listings_dir.is_dir():
        return None
    from datasets import load_from_disk

    data = load_from_disk(str(listings_dir))
    parts = [
        data[split].select_columns(["listing_id"]).to_pandas().assign(split=split)
        for split in data
    ]
    return pd.concat(parts, ignore_index=True) if parts else None


def listing_scores(
    photos: pd.DataFrame, classes: list[str], listings: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per listing: n_photos, n_usable, img_p_<class> = max over usable photos.

    Listings known from ``listings`` but without photos get n_photos 0 and NaN scores, so the
    fuse stage sees every listing.
    """
    rows = photos[photos["listing_id"] != ""]
    columns = [f"p_{name}" for name in classes]
    grouped = rows.groupby("listing_id", sort=True)
    # max() skips NaN, so unusable photos never lower or raise a listing's score.
    out = grouped[columns].max().rename(columns=lambda c: f"img_{c}")
    out.insert(0, "n_usable", grouped["status"].apply(lambda st: int((st == "ok").sum())))
    out.insert(0, "n_photos", grouped.size())
    out.insert(0, "split", grouped["split"].first())
    out = out.reset_index()
    if listings is not None:
        extra = listings[~listings["listing_id"].isin(out["listing_id"])].copy()
        extra = extra.assign(n_photos=0, n_usable=0, **{f"img_{c}": np.nan for c in columns})
        out = pd.concat([out, extra[out.columns]], ignore_index=True)
    return out.astype({"n_photos": int, "n_usable": int})
