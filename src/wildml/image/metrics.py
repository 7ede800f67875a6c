"""Photo-model figures: balanced accuracy, per-class recall/precision, confusion, bone-as-ivory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, confusion_matrix


def split_metrics(
    frame: pd.DataFrame, probs: np.ndarray, classes: Sequence[str], *, ivory: str = "ivory"
) -> dict[str, Any]:
    """Figures for one split's labelled, usable photos.

    Parameters
    ----------
    frame
        Photo rows with ``target`` (class index, -1 unlabelled) and ``photo_class``.
    probs
        (n, n_classes) probabilities aligned with ``frame``; NaN rows are unusable photos.
    classes
        Class names in column order.

    Returns
    -------
    dict
        ``n``, ``balanced_accuracy`` (over classes present in the truth), ``recall`` and
        ``precision`` per class (None where undefined), ``confusion_matrix`` (rows truth,
        columns prediction, in ``classes`` order), ``ivory_recall``, ``bone_as_ivory_rate``
        and ``n_bone``.
    """
    usable = ~np.isnan(probs).any(axis=1)
    labelled = (frame["target"].to_numpy() >= 0) & usable
    truth = frame["target"].to_numpy()[labelled]
    pred = probs[labelled].argmax(axis=1) if labelled.any() else np.array([], dtype=int)
    out: dict[str, Any] = {"n": int(labelled.sum()), "n_unusable": int((~usable).sum())}
    if not labelled.any():
        return {
            **out,
            "balanced_accuracy": None,
            "recall": {},
            "precision": {},
            "confusion_matrix": [],
            "ivory_recall": None,
            "bone_as_ivory_rate": None,
            "n_bone": 0,
        }
    matrix = confusion_matrix(truth, pred, labels=list(range(len(classes))))
    out["balanced_accuracy"] = float(balanced_accuracy_score(truth, pred))
    out["recall"] = {c: _ratio(matrix[i, i], matrix[i].sum()) for i, c in enumerate(classes)}
    out["precision"] = {c: _ratio(matrix[i, i], matrix[:, i].sum()) for i, c in enumerate(classes)}
    out["confusion_matrix"] = matrix.tolist()
    out["ivory_recall"] = out["recall"].get(ivory)
    bone = (frame["photo_class"].fillna("").to_numpy() == "bone") & usable
    out["n_bone"] = int(bone.sum())
    if ivory in classes and bone.any():
        out["bone_as_ivory_rate"] = float(
            (probs[bone].argmax(axis=1) == classes.index(ivory)).mean()
        )
    else:
        out["bone_as_ivory_rate"] = None
    return out


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def flat_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """Scalar figures of :func:`split_metrics` as MLflow metric names."""
    flat: dict[str, float] = {}
    for key in ("balanced_accuracy", "ivory_recall", "bone_as_ivory_rate"):
        if metrics.get(key) is not None:
            flat[f"{prefix}_{key}"] = float(metrics[key])
    for kind in ("recall", "precision"):
        for name, value in (metrics.get(kind) or {}).items():
            if value is not None:
                flat[f"{prefix}_{kind}_{name}"] = float(value)
    return flat


def plot_confusion(
    matrices: dict[str, list[list[int]]], classes: Sequence[str], path: Path
) -> Path:
    """Draw one confusion matrix per title side by side into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = [t for t, m in matrices.items() if m]
    fig, axes = plt.subplots(1, max(len(titles), 1), figsize=(4.6 * max(len(titles), 1), 4.2))
    axes = np.atleast_1d(axes)
    for ax, title in zip(axes, titles, strict=False):
        matrix = np.asarray(matrices[title])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
