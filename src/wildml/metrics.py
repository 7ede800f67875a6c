"""Ranking, threshold and calibration metrics for binary listing scores, with bootstrap CIs.

Pure numpy: every function takes ``labels`` (0/1) and ``scores`` (higher = more likely a
protected-wildlife offer) as 1-d arrays of the same length. A listing counts as flagged when
``score >= threshold``. A metric that is undefined on the given listings (no positives, no
negatives, fewer than ``k`` listings) returns ``None`` instead of raising, so a report over
many small groups never crashes; JSON writes it as ``null``.

The functions are written for speed on small arrays because the bootstrap calls them
thousands of times; :func:`average_precision` and :func:`roc_auc` agree with scikit-learn's
``average_precision_score`` and ``roc_auc_score`` (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray], "float | dict[str, float | None] | None"]

# Guards against log(0) in log-loss; isotonic calibration outputs exact 0 and 1.
LOG_LOSS_EPS = 1e-6


def _as_arrays(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    n_pos = int(y.sum())
    return 0 < n_pos < y.size


def _ranked_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True/false positive counts at each distinct score, thresholds from high to low."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Last index of each run of equal scores: ties enter together.
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y_sorted.size - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    return tp, fp, s_sorted[last]


def average_precision(labels: Any, scores: Any) -> float | None:
    """Area under the precision-recall curve as a step sum (PR-AUC).

    ``sum_n (R_n - R_{n-1}) * P_n`` over distinct score thresholds, the same definition as
    scikit-learn's ``average_precision_score``. ``None`` without positives.
    """
    y, s = _as_arrays(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0 or y.size == 0:
        return None
    tp, fp, _ = _ranked_counts(y, s)
    precision = tp / (tp + fp)
    recall_gain = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(recall_gain * precision))


def roc_auc(labels: Any, scores: Any) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half)."""
    y, s = _as_arrays(labels, scores)
    if not _both_classes(y):
        return None
    ranks = _average_ranks(s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    rank_sum = float(ranks[y == 1].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks of ``s`` with tied values given their mean rank."""
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s_sorted)) + 1]
    ends = np.r_[starts[1:], s.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks start+1 .. end
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def precision_recall_f1(labels: Any, scores: Any, threshold: float) -> dict[str, float | None]:
    """Precision, recall and F1 of flagging ``score >= threshold``.

    Precision is ``None`` when nothing is flagged, recall ``None`` without positives, F1
    ``None`` when either is undefined (F1 is 0.0 when both are defined and tp is 0).
    """
    y, s = _as_arrays(labels, scores)
    flagged = s >= threshold
    tp = int(np.sum(flagged & (y == 1)))
    n_flagged = int(flagged.sum())
    n_pos = int(y.sum())
    precision = tp / n_flagged if n_flagged else None
    recall = tp / n_pos if n_pos else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def f1_at_threshold(labels: Any, scores: Any, threshold: float) -> float | None:
    """F1 of flagging ``score >= threshold`` (see :func:`precision_recall_f1`)."""
    return precision_recall_f1(labels, scores, threshold)["f1"]


def recall_at_precision(labels: Any, scores: Any, min_precision: float = 0.9) -> float | None:
    """Highest recall over thresholds whose precision is at least ``min_precision``.

    0.0 when no threshold reaches that precision; ``None`` without positives.
    """
    y, s = _as_arrays(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    tp, fp, _ = _ranked_counts(y, s)
    ok = tp / (tp + fp) >= min_precision
    return float(tp[ok].max() / n_pos) if ok.any() else 0.0


def precision_at_recall(labels: Any, scores: Any, min_recall: float = 0.9) -> float | None:
    """Highest precision over thresholds whose recall is at least ``min_recall``."""
    y, s = _as_arrays(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    tp, fp, _ = _ranked_counts(y, s)
    ok = tp / n_pos >= min_recall - 1e-12
    return float(np.max(tp[ok] / (tp[ok] + fp[ok])))


def precision_at_k(labels: Any, scores: Any, k: int) -> float | None:
    """Share of positives among the ``k`` highest-scored listings.

    Ties at the cut are broken by input order (stable sort). ``None`` when there are fewer
    than ``k`` listings, because a shorter queue would not answer the same question.
    """
    y, s = _as_arrays(labels, scores)
    if k <= 0 or y.size < k:
        return None
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].mean())


def brier_score(labels: Any, probs: Any) -> float | None:
    """Mean squared difference between predicted probability and outcome."""
    y, p = _as_arrays(labels, probs)
    if y.size == 0:
        return None
    return float(np.mean((p - y) ** 2))


def log_loss(labels: Any, probs: Any) -> float | None:
    """Mean negative log-likelihood, probabilities clipped to [1e-6, 1 - 1e-6]."""
    y, p = _as_arrays(labels, probs)
    if y.size == 0:
        return None
    p = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    # Equal-width bins [0, 1/n), ..., [(n-1)/n, 1]; 1.0 falls in the last bin.
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


def reliability_table(labels: Any, probs: Any, n_bins: int = 10) -> list[dict[str, float | int]]:
    """Per equal-width bin: edges, listing count, mean predicted probability, positive share.

    Empty bins are kept (count 0, means ``nan``) so every table has ``n_bins`` rows.
    """
    y, p = _as_arrays(labels, probs)
    idx = _bin_index(np.clip(p, 0.0, 1.0), n_bins)
    rows: list[dict[str, float | int]] = []
    for b in range(n_bins):
        in_bin = idx == b
        count = int(in_bin.sum())
        rows.append(
            {
                "bin": b,
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "count": count,
                "mean_pred": float(p[in_bin].mean()) if count else float("nan"),
                "frac_pos": float(y[in_bin].mean()) if count else float("nan"),
            }
        )
    return rows


def expected_calibration_error(labels: Any, probs: Any, n_bins: int = 10) -> float | None:
    """ECE over ``n_bins`` equal-width bins: sum_b (n_b / n) * |positive share_b - mean p_b|."""
    y, p = _as_arrays(labels, probs)
    if y.size == 0:
        return None
    idx = _bin_index(np.clip(p, 0.0, 1.0), n_bins)
    pos = np.bincount(idx, weights=y, minlength=n_bins)
    conf = np.bincount(idx, weights=p, minlength=n_bins)
    return float(np.sum(np.abs(pos - conf)) / y.size)


def threshold_for_recall(labels: Any, scores: Any, target_recall: float) -> float:
    """Highest threshold at which flagging ``score >= threshold`` reaches ``target_recall``.

    With ``n_pos`` positives the threshold is the ``ceil(target_recall * n_pos)``-th highest
    positive score; ties may raise the reached recall above the target, never below.

    Raises
    ------
    ValueError
        When there are no positives or ``target_recall`` is outside (0, 1].
    """
    y, s = _as_arrays(labels, scores)
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    pos_scores = np.sort(s[y == 1])[::-1]
    if pos_scores.size == 0:
        raise ValueError("no positive listings: cannot set a threshold for recall")
    # The small tolerance keeps 0.9 * 10 from becoming 10 through rounding.
    needed = max(1, math.ceil(target_recall * pos_scores.size - 1e-9))
    return float(pos_scores[needed - 1])


def threshold_for_precision(labels: Any, scores: Any, min_precision: float) -> float | None:
    """Lowest distinct-score threshold whose precision is at least ``min_precision``.

    ``None`` when no threshold reaches it (including when there are no positives).
    """
    y, s = _as_arrays(labels, scores)
    if y.size == 0 or int(y.sum()) == 0:
        return None
    tp, fp, thresholds = _ranked_counts(y, s)
    ok = np.flatnonzero(tp / (tp + fp) >= min_precision)
    return float(thresholds[ok[-1]]) if ok.size else None


def _stratified_indices(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One bootstrap resample drawn within each class, so class counts stay fixed."""
    parts = []
    for cls in (0, 1):
        members = np.flatnonzero(y == cls)
        if members.size:
            parts.append(rng.choice(members, size=members.size, replace=True))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _interval(values: list[float], level: float) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(values), [tail, 100 - tail])
    return float(low), float(high)


def _as_dict(value: float | dict[str, float | None] | None) -> dict[str, float | None]:
    return value if isinstance(value, dict) else {"value": value}


def bootstrap_ci(
    metric: MetricFn,
    labels: Any,
    scores: Any,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    stratified: bool = True,
) -> dict[str, dict[str, float | int | None]]:
    """Point estimate and percentile bootstrap interval of one metric or a panel of metrics.

    Parameters
    ----------
    metric
        ``metric(labels, scores)`` returning a float, ``None``, or a dict name -> float/None
        (a panel computed together, which saves the per-replicate sort).
    labels, scores
        1-d arrays of the same length (n,).
    n_boot
        Number of resamples.
    level
        Coverage of the interval (0.95 for a 95 % interval).
    seed
        Seed of the resampling generator: the same inputs and seed give the same interval.
    stratified
        Resample positives and negatives separately, so every replicate keeps the class
        counts (a replicate without positives would make PR-AUC undefined).

    Returns
    -------
    dict
        name -> ``{"value", "low", "high", "n_boot"}``; a single metric is named
        ``"value"``. ``low``/``high`` are ``None`` when the metric is undefined on the data
        (for example a group with one class); ``n_boot`` counts replicates where it was
        defined.
    """
    y, s = _as_arrays(labels, scores)
    point = _as_dict(metric(y, s))
    draws: dict[str, list[float]] = {name: [] for name in point}
    rng = np.random.default_rng(seed)
    for _ in range(n_boot if y.size else 0):
        idx = _stratified_indices(y, rng) if stratified else rng.integers(0, y.size, y.size)
        for name, value in _as_dict(metric(y[idx], s[idx])).items():
            if value is not None and name in draws and np.isfinite(value):
                draws[name].append(float(value))
    out: dict[str, dict[str, float | int | None]] = {}
    for name, value in point.items():
        low, high = _interval(draws[name], level) if value is not None else (None, None)
        out[name] = {"value": value, "low": low, "high": high, "n_boot": len(draws[name])}
    return out


def paired_bootstrap_diff(
    metric: Callable[[np.ndarray, np.ndarray], float | None],
    labels: Any,
    scores_a: Any,
    scores_b: Any,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    stratified: bool = True,
) -> dict[str, float | int | None]:
    """Difference ``metric(a) - metric(b)`` with a paired bootstrap interval.

    Both score vectors are scored on the same resampled listings in every replicate, so the
    interval reflects the difference between the two models, not the noise of the sample
    they share. An interval that excludes 0 says the difference is unlikely to be chance.

    Returns
    -------
    dict
        ``{"a", "b", "diff", "low", "high", "n_boot"}``; ``None`` values where the metric is
        undefined.
    """
    y, a = _as_arrays(labels, scores_a)
    _, b = _as_arrays(labels, scores_b)
    value_a, value_b = metric(y, a), metric(y, b)
    diff = None if value_a is None or value_b is None else value_a - value_b
    draws: list[float] = []
    rng = np.random.default_rng(seed)
    for _ in range(n_boot if diff is not None else 0):
        idx = _stratified_indices(y, rng) if stratified else rng.integers(0, y.size, y.size)
        ra, rb = metric(y[idx], a[idx]), metric(y[idx], b[idx])
        if ra is not None and rb is not None:
            draws.append(ra - rb)
    low, high = _interval(draws, level)
    return {
        "a": value_a,
        "b": value_b,
        "diff": diff,
        "low": low,
        "high": high,
        "n_boot": len(draws),
    }
