"""Fitting components: hyper-parameters chosen on validation, out-of-fold scores on train."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

from wildml import metrics
from wildml.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class Fitted:
    """One component fitted on all of train, with its scores on every split."""

    name: str
    component: Any
    oof: np.ndarray  # (n_train,) out-of-fold log-odds
    oof_coverage: np.ndarray | None
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # split -> log-odds
    coverage: dict[str, np.ndarray] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)


def make_folds(frame: pd.DataFrame, n_folds: int, seed: int) -> list[np.ndarray]:
    """Fold index (0..k-1) of each training listing, grouped by ``group_id`` and stratified.

    Raises
    ------
    DataError
        When train holds fewer than two listings of either class.
    """
    y = frame["label"].to_numpy()
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if min(n_pos, n_neg) < 2:
        raise DataError(
            f"train split: needs at least 2 positive and 2 negative listings, has {n_pos}/{n_neg}"
        )
    groups = frame["group_id"].where(frame["group_id"] != "", frame["listing_id"]).to_numpy()
    k = max(2, min(n_folds, n_pos, n_neg))
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(y)), y, groups)]


def _take(features: Any, rows: np.ndarray) -> Any:
    if isinstance(features, pd.DataFrame):
        return features.iloc[rows].reset_index(drop=True)
    return features[rows]


def _coverage(component: Any, features: Any) -> np.ndarray | None:
    if not hasattr(component, "coverage"):
        return None
    return component.coverage(features)


def fit_component(
    name: str,
    prototype: Any,
    features: dict[str, Any],
    labels: dict[str, np.ndarray],
    grid: list[float] | None,
    folds: list[np.ndarray],
) -> Fitted:
    """Choose ``c`` on validation PR-AUC, then cross-fit on train and score every split.

    Parameters
    ----------
    name
        Component name, used in logs and metrics.
    prototype
        Unfitted component; clones of it are fitted.
    features
        Output of ``prototype.featurize`` per split (``train``, ``validation``, ...).
    labels
        0/1 labels of ``train`` and ``validation``.
    grid
        Values of ``c`` to try; None or one value skips the search.
    folds
        Held-out row indices of each fold of train.
    """
    best, best_ap, search = None, -1.0, []
    for c in grid or [None]:
        candidate = clone(prototype) if c is None else clone(prototype).set_params(c=c)
        candidate.fit_features(features["train"], labels["train"])
        val_scores = candidate.decision_features(features["validation"])
        ap = metrics.average_precision(labels["validation"], val_scores) or 0.0
        search.append({"c": c, "validation_pr_auc": ap})
        logger.info("%s: c=%s validation PR-AUC %.4f", name, c, ap)
        if ap > best_ap:
            best, best_ap = candidate, ap
    oof, oof_cov = _cross_fit(best, features["train"], labels["train"], folds)
    fitted = Fitted(name, best, oof, oof_cov, search=search)
    fitted.chosen = {"c": getattr(best, "c", None), "validation_pr_auc": best_ap}
    for split, split_features in features.items():
        fitted.scores[split] = best.decision_features(split_features)
        cov = _coverage(best, split_features)
        if cov is not None:
            fitted.coverage[split] = cov
    return fitted


def _cross_fit(
    component: Any, features: Any, y: np.ndarray, folds: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold log-odds (and coverage) of every training row."""
    oof = np.zeros(len(y), dtype=np.float64)
    cov = np.zeros(len(y), dtype=np.float64) if hasattr(component, "coverage") else None
    every = np.arange(len(y))
    for held_out in folds:
        kept = np.setdiff1d(every, held_out)
        fold_model = clone(component).fit_features(_take(features, kept), y[kept])
        oof[held_out] = fold_model.decision_features(_take(features, held_out))
        if cov is not None:
            cov[held_out] = fold_model.coverage(_take(features, held_out))
    return oof, cov
