"""wildml.metrics against values worked out by hand on tiny inputs, and against sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from wildml import metrics

# Four listings, ranked by score: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg).
Y = np.array([1, 0, 1, 0])
S = np.array([0.9, 0.8, 0.7, 0.1])


def test_average_precision_by_hand():
    # Threshold 0.9: P = 1/1, recall rises 0 -> 1/2, adds 1/2 * 1 = 0.5.
    # Threshold 0.8: recall unchanged, adds 0.
    # Threshold 0.7: P = 2/3, recall rises 1/2 -> 1, adds 1/2 * 2/3 = 1/3.
    # AP = 0.5 + 1/3 = 0.8333...
    assert metrics.average_precision(Y, S) == pytest.approx(0.5 + 1 / 3)


def test_average_precision_ties_enter_together():
    # Scores 0.5 (pos), 0.5 (neg), 0.2 (pos): the tie is one threshold.
    # Threshold 0.5: P = 1/2, recall 0 -> 1/2, adds 1/4.  Threshold 0.2: P = 2/3, adds 1/3.
    # AP = 1/4 + 1/3 = 0.58333...
    assert metrics.average_precision([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(7 / 12)


def test_roc_auc_by_hand():
    # Positive-negative pairs: (0.9, 0.8) win, (0.9, 0.1) win, (0.7, 0.8) loss,
    # (0.7, 0.1) win -> 3 of 4 = 0.75.
    assert metrics.roc_auc(Y, S) == pytest.approx(0.75)
    # With a tie: (0.5 pos vs 0.5 neg) counts 1/2, (0.2 pos vs 0.5 neg) 0 -> 0.5 / 2 = 0.25.
    assert metrics.roc_auc([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("threshold", "precision", "recall", "f1"),
    [
        # >= 0.75 flags 0.9 (pos) and 0.8 (neg): P = 1/2, R = 1/2, F1 = 1/2.
        (0.75, 0.5, 0.5, 0.5),
        # >= 0.5 flags 0.9, 0.8, 0.7: P = 2/3, R = 2/2, F1 = 2 * (2/3 * 1) / (2/3 + 1) = 0.8.
        (0.5, 2 / 3, 1.0, 0.8),
        # >= 0.9 is inclusive: flags 0.9 only: P = 1, R = 1/2, F1 = 2/3.
        (0.9, 1.0, 0.5, 2 / 3),
    ],
)
def test_precision_recall_f1_by_hand(threshold, precision, recall, f1):
    got = metrics.precision_recall_f1(Y, S, threshold)
    assert got["precision"] == pytest.approx(precision)
    assert got["recall"] == pytest.approx(recall)
    assert metrics.f1_at_threshold(Y, S, threshold) == pytest.approx(f1)


def test_nothing_flagged_gives_null_precision():
    got = metrics.precision_recall_f1(Y, S, 0.95)
    assert got == {"precision": None, "recall": 0.0, "f1": None}


def test_recall_at_precision_by_hand():
    # Precision per threshold: 0.9 -> 1, 0.8 -> 1/2, 0.7 -> 2/3, 0.1 -> 1/2.
    # Only 0.9 reaches precision 0.9; its recall is 1/2.
    assert metrics.recall_at_precision(Y, S, 0.9) == pytest.approx(0.5)
    # Precision 0.6 is reached at 0.9 (R 1/2) and 0.7 (R 1): best recall 1.
    assert metrics.recall_at_precision(Y, S, 0.6) == pytest.approx(1.0)
    # Nothing reaches precision 1 beyond the top: a ranking with a negative on top gives 0.
    assert metrics.recall_at_precision([0, 1], [0.9, 0.1], 0.9) == 0.0


def test_precision_at_recall_by_hand():
    # Recall >= 0.9 needs both positives: thresholds 0.7 (P 2/3) and 0.1 (P 1/2) -> 2/3.
    assert metrics.precision_at_recall(Y, S, 0.9) == pytest.approx(2 / 3)
    # Recall >= 0.5 also admits 0.9 (P 1) -> 1.
    assert metrics.precision_at_recall(Y, S, 0.5) == pytest.approx(1.0)


@pytest.mark.parametrize(("k", "expected"), [(1, 1.0), (2, 0.5), (3, 2 / 3), (4, 0.5), (5, None)])
def test_precision_at_k_by_hand(k, expected):
    # Top k by score: [pos, neg, pos, neg]; fewer than k listings -> None.
    got = metrics.precision_at_k(Y, S, k)
    assert got == (None if expected is None else pytest.approx(expected))


def test_brier_by_hand():
    # (0.9-1)^2 + (0.8-0)^2 + (0.7-1)^2 + (0.1-0)^2 = 0.01 + 0.64 + 0.09 + 0.01 = 0.75; / 4.
    assert metrics.brier_score(Y, S) == pytest.approx(0.1875)


def test_ece_by_hand():
    # Two equal-width bins [0, 0.5) and [0.5, 1].
    # Bin 0: {0.1 (neg)}: mean p 0.1, positive share 0 -> |0 - 0.1| = 0.1, weight 1/4.
    # Bin 1: {0.9 pos, 0.8 neg, 0.7 pos}: mean p 0.8, share 2/3 -> |2/3 - 0.8| = 2/15,
    #        weight 3/4.  ECE = 0.025 + 0.1 = 0.125.
    assert metrics.expected_calibration_error(Y, S, n_bins=2) == pytest.approx(0.125)
    table = metrics.reliability_table(Y, S, n_bins=2)
    assert [row["count"] for row in table] == [1, 3]
    assert table[1]["frac_pos"] == pytest.approx(2 / 3)


def test_ece_of_perfect_calibration_is_zero():
    # Probabilities 0 and 1 that are always right: every bin's share equals its mean.
    assert metrics.expected_calibration_error([0, 1, 1], [0.0, 1.0, 1.0]) == 0.0


def test_log_loss_by_hand():
    # -(log 0.9 + log 0.2 + log 0.7 + log 0.9) / 4.
    expected = -(math.log(0.9) + math.log(0.2) + math.log(0.7) + math.log(0.9)) / 4
    assert metrics.log_loss(Y, S) == pytest.approx(expected)


@pytest.mark.parametrize(("target", "expected"), [(0.5, 0.9), (0.9, 0.7), (1.0, 0.7)])
def test_threshold_for_recall_by_hand(target, expected):
    # Positive scores, highest first: [0.9, 0.7].  ceil(target * 2) positives must pass:
    # 0.5 -> 1 -> 0.9;  0.9 -> 2 -> 0.7;  1.0 -> 2 -> 0.7.
    threshold = metrics.threshold_for_recall(Y, S, target)
    assert threshold == pytest.approx(expected)
    assert metrics.precision_recall_f1(Y, S, threshold)["recall"] >= target


def test_threshold_for_recall_exact_fraction():
    # Ten positives scored 0.1 .. 1.0; recall 0.9 needs 9 of them: the 9th highest is 0.2.
    y = np.ones(10, dtype=int)
    s = np.arange(1, 11) / 10
    assert metrics.threshold_for_recall(y, s, 0.9) == pytest.approx(0.2)


def test_threshold_for_recall_needs_positives():
    with pytest.raises(ValueError, match="no positive"):
        metrics.threshold_for_recall([0, 0], [0.1, 0.2], 0.9)


def test_threshold_for_precision_by_hand():
    # Precision >= 0.6 at 0.9 (1.0) and 0.7 (2/3): the lowest is 0.7; >= 0.9 only at 0.9.
    assert metrics.threshold_for_precision(Y, S, 0.6) == pytest.approx(0.7)
    assert metrics.threshold_for_precision(Y, S, 0.9) == pytest.approx(0.9)
    assert metrics.threshold_for_precision([0, 1], [0.9, 0.1], 0.9) is None


@pytest.mark.parametrize(
    "fn", [metrics.average_precision, metrics.roc_auc, metrics.recall_at_precision]
)
def test_one_class_gives_none(fn):
    assert fn([0, 0, 0], [0.1, 0.2, 0.3]) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_agree_with_sklearn(seed):
    generator = np.random.default_rng(seed)
    y = generator.integers(0, 2, 200)
    # Rounded scores create many ties, the case where definitions differ most.
    s = np.round(generator.random(200) * 0.6 + y * 0.3, 1)
    assert metrics.average_precision(y, s) == pytest.approx(average_precision_score(y, s))
    assert metrics.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_bootstrap_is_seeded_and_brackets_the_estimate(rng):
    y = rng.integers(0, 2, 300)
    s = y * 0.5 + rng.random(300)
    first = metrics.bootstrap_ci(metrics.average_precision, y, s, n_boot=200, seed=7)["value"]
    again = metrics.bootstrap_ci(metrics.average_precision, y, s, n_boot=200, seed=7)["value"]
    assert first == again
    assert first["low"] < first["value"] < first["high"]
    assert first["n_boot"] == 200


def test_bootstrap_stratified_keeps_class_counts(rng):
    # A single positive among 50: unstratified replicates often lose it; stratified never do.
    y = np.zeros(50, dtype=int)
    y[3] = 1
    s = rng.random(50)
    out = metrics.bootstrap_ci(metrics.average_precision, y, s, n_boot=100, seed=0)
    assert out["value"]["n_boot"] == 100


def test_bootstrap_panel_and_one_class_group():
    def panel(labels, scores):
        return {
            "pr_auc": metrics.average_precision(labels, scores),
            "brier": metrics.brier_score(labels, scores),
        }

    out = metrics.bootstrap_ci(panel, [0, 0, 0], [0.1, 0.4, 0.2], n_boot=20, seed=0)
    assert out["pr_auc"] == {"value": None, "low": None, "high": None, "n_boot": 0}
    assert out["brier"]["value"] == pytest.approx((0.01 + 0.16 + 0.04) / 3)
    assert out["brier"]["low"] is not None


def test_paired_bootstrap_against_itself_contains_zero(rng):
    y = rng.integers(0, 2, 120)
    s = y * 0.3 + rng.random(120)
    out = metrics.paired_bootstrap_diff(metrics.average_precision, y, s, s, n_boot=200, seed=3)
    assert out["diff"] == 0.0
    assert out["low"] <= 0.0 <= out["high"]


def test_paired_bootstrap_detects_a_better_model(rng):
    y = rng.integers(0, 2, 400)
    good = y * 1.0 + rng.random(400)
    noise = rng.random(400)
    out = metrics.paired_bootstrap_diff(
        metrics.average_precision, y, good, noise, n_boot=200, seed=3
    )
    assert out["diff"] > 0.3
    assert out["low"] > 0.0


def test_paired_bootstrap_undefined_metric_is_null():
    out = metrics.paired_bootstrap_diff(metrics.roc_auc, [1, 1], [0.2, 0.3], [0.1, 0.4])
    assert out["diff"] is None and out["low"] is None
