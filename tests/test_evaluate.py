"""The evaluate stage end to end after fuse, on synthetic prepared sets."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from test_fuse import synthetic_listings, write_inputs
from wildml import evaluate, fuse
from wildml.errors import DataError

SECTIONS = {
    "overall",
    "by_lang",
    "by_product",
    "by_source",
    "by_photo",
    "calibration",
    "signals",
    "errors",
}
PANEL = {
    "pr_auc",
    "roc_auc",
    "f1",
    "precision",
    "recall",
    "recall_at_precision_0.9",
    "precision_at_recall_0.9",
    "precision_at_10",
    "precision_at_50",
    "precision_at_100",
    "ece",
    "brier",
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Run fuse then evaluate once, tracked; return (root, report, tracking URI)."""
    root = tmp_path_factory.mktemp("evaluated")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("WILDML_ARTIFACT_ROOT", str(root / "artifacts"))
        params = write_inputs(root, evaluate={"track": True})
        fuse.run(params)
        report = evaluate.run(params)
    return root, report, uri


def test_metrics_json_has_every_section(evaluated):
    root, _, _ = evaluated
    saved = json.loads((root / "metrics.json").read_text())
    assert set(saved) >= SECTIONS
    assert set(saved["overall"]) >= PANEL
    assert set(saved["by_lang"]) == {"en", "zh", "vi", "fr"}
    assert set(saved["by_product"]) == {"ivory", "pangolin_scale", "rhino_horn"}
    assert set(saved["by_photo"]) == {"text_only", "with_photo"}
    assert set(saved["signals"]) == {"fused", "text", "photo"}
    assert saved["ece_bins"] == 10
    assert saved["bootstrap"]["n_boot"] == 30
    # A metric floor: the synthetic signals are informative, the fused score must use them.
    overall = saved["overall"]["pr_auc"]
    assert overall["value"] > 0.8
    assert overall["low"] <= overall["value"] <= overall["high"]
    assert saved["overall"]["ece"]["value"] < 0.15
    assert saved["overall"]["n"] == 160


def test_fused_beats_photo_alone_with_paired_interval(evaluated):
    _, report, _ = evaluated
    photo = report["signals"]["photo"]["fused_minus_signal"]
    assert photo["diff"] > 0 and photo["low"] > 0


def test_plots_and_error_table(evaluated):
    root, report, _ = evaluated
    for name in ("pr_curve", "roc_curve", "reliability", "pr_auc_by_group"):
        assert (root / "plots" / f"{name}.csv").is_file()
        assert (root / "plots" / f"{name}.png").stat().st_size > 1000
    signals = pd.read_csv(root / "plots/signals.csv")
    assert signals["signal"].tolist() == ["fused", "text", "photo"]
    assert np.isnan(signals.loc[0, "fused_minus_signal"])
    reliability = report["calibration"]["reliability"]
    assert len(reliability) == report["ece_bins"] == 10
    assert sum(row["count"] for row in reliability) == report["overall"]["n"]
    errors = pd.read_csv(root / "plots/errors.csv")
    assert set(errors["kind"]) <= {"false_positive", "false_negative"}
    assert "text" not in errors.columns
    counts = report["errors"]
    assert len(errors) == min(5, counts["false_positives"]) + min(5, counts["false_negatives"])
    fps = errors[errors["kind"] == "false_positive"]["p_final"].tolist()
    assert fps == sorted(fps, reverse=True)


def test_mlflow_run_has_metrics_and_test_scores(evaluated):
    client = mlflow.tracking.MlflowClient(tracking_uri=evaluated[2])
    experiment = client.get_experiment_by_name("test-fuse")
    runs = client.search_runs([experiment.experiment_id], "tags.`wildml.stage` = 'evaluate'")
    assert len(runs) == 1
    assert runs[0].data.metrics["overall.pr_auc.value"] > 0.8
    names = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"test_scores.parquet", "reliability.png", "errors.csv"} <= names
    assert not any("bangle" in value for value in runs[0].data.params.values())
    local = client.download_artifacts(runs[0].info.run_id, "test_scores.parquet")
    scores = pd.read_parquet(local)
    assert {
        "listing_id",
        "label",
        "lang",
        "product",
        "source",
        "has_photo",
        "p_final",
        "p_text",
        "img_p_ivory",
        "score_photo_only",
    } <= set(scores.columns)
    assert "text" not in scores.columns


def test_group_with_one_class_reports_null(tmp_path):
    listings = synthetic_listings()
    # Every Vietnamese test listing is a negative: ranking metrics there are undefined.
    vi_test = (listings["split"] == "test") & (listings["lang"] == "vi")
    listings.loc[vi_test, ["label", "product"]] = [0, ""]
    params = write_inputs(tmp_path, listings=listings)
    fuse.run(params)
    report = evaluate.run(params)
    vi = report["by_lang"]["vi"]
    assert vi["n_pos"] == 0
    assert vi["pr_auc"] == {"value": None, "low": None, "high": None}
    assert vi["brier"]["value"] is not None


def test_test_rows_used_for_fit_are_refused(tmp_path):
    listings = synthetic_listings()
    scores = pd.DataFrame(
        {
            "listing_id": listings["listing_id"],
            "split": listings["split"],
            "p_final": 0.5,
            "used_for_fit": listings["split"] == "test",
        }
    )
    with pytest.raises(DataError, match="used to fit"):
        evaluate.test_frame(listings, scores)


def test_flatten_metrics_drops_nulls():
    flat = evaluate.flatten_metrics({"a": {"b": 1, "c": None, "d": float("nan")}, "x y!": 2})
    assert flat == {"a.b": 1.0, "x y_": 2.0}


def test_product_slice_keeps_all_negatives():
    frame = pd.DataFrame(
        {
            "label": [1, 1, 0, 0],
            "product": ["ivory", "rhino_horn", "", ""],
            "lang": ["en"] * 4,
            "source": ["s"] * 4,
            "has_photo": [0.0, 1.0, 0.0, 1.0],
        }
    )
    masks = evaluate._groups(frame)["by_product"]
    assert masks["ivory"].tolist() == [True, False, True, True]
    assert masks["rhino_horn"].tolist() == [False, True, True, True]
    assert np.array_equal(
        evaluate._groups(frame)["by_photo"]["with_photo"], [False, True, False, True]
    )


def test_cli_evaluate(tmp_path):
    from typer.testing import CliRunner

    from wildml.cli import app

    params = write_inputs(tmp_path)
    fuse.run(params)
    result = CliRunner().invoke(app, ["evaluate", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "metrics.json").is_file()
