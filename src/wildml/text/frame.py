"""The listing table every text model reads: text, seller_profile and lang as clean strings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

INPUT_COLUMNS = ("text", "seller_profile", "lang")


def as_frame(frame: Any) -> pd.DataFrame:
    """Return a DataFrame with string columns text, seller_profile and lang.

    Missing columns and missing values become ``""`` (``"und"`` for lang), so a caller may pass
    only ``text``. Other columns are dropped.
    """
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    out = pd.DataFrame(index=range(len(frame)))
    for column in INPUT_COLUMNS:
        values = frame[column].tolist() if column in frame.columns else [""] * len(frame)
        out[column] = [v if isinstance(v, str) else "" for v in values]
    out["lang"] = [lang.strip().lower() or "und" for lang in out["lang"]]
    return out


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Log-odds of probabilities, clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Inverse of :func:`logit`."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))
