"""The fuse stage on small synthetic prepared sets and score files written per test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from wildml import metrics
from wildml.errors import DataError
from wildml.fuse import Fuser, build_features, check_disjoint_splits, load_listings, run

LANGS = ("en", "zh", "vi", "fr")
PRODUCTS = ("ivory", "pangolin_scale", "rhino_horn")
CLASSES = ("ivory", "bone", "pangolin_scale", "rhino_horn", "other")
# Written for these tests; any words work since the KB is switched off unless stated.
POS_TEXT = "carved ivory bangle for sale, pm for price"
NEG_TEXT = "white resin bangle, costume jewellery"


def synthetic_listings(
    n: dict[str, int] | None = None, seed: int = 0, pos_share: float = 0.3
) -> pd.DataFrame:
    """Listings of the prepared contract (the columns fuse and evaluate read)."""
    n = n or {"train": 240, "validation": 160, "test": 160}
    generator = np.random.default_rng(seed)
    rows = []
    for split, count in n.items():
        for i in range(count):
            label = int(generator.random() < pos_share)
            has_photo = generator.random() < 0.5
            no_text = generator.random() < 0.08
            rows.append(
                {
                    "listing_id": f"{split[:2]}{i:04d}",
                    "source": "market" if i % 3 else "hotline",
                    "text": "" if no_text else (POS_TEXT if label else NEG_TEXT),
                    "lang": LANGS[i % len(LANGS)],
                    "label": label,
                    "product": PRODUCTS[i % len(PRODUCTS)] if label else "",
                    "image_paths": [f"/photos/{split}{i}.jpg"] if has_photo else [],
                    "group_id": f"g{split}{i}",
                    "split": split,
                }
            )
    return pd.DataFrame(rows)


def synthetic_scores(listings: pd.DataFrame, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Text scores (noisy, informative) and photo listing scores (NaN without a photo)."""
    generator = np.random.default_rng(seed)
    y = listings["label"].to_numpy()
    logit = (y * 2.4 - 1.2) + generator.normal(0, 1.1, len(y))
    text = pd.DataFrame(
        {
            "listing_id": listings["listing_id"],
            "split": listings["split"],
            "p_text": 1 / (1 + np.exp(-logit)),
        }
    )
    has_photo = listings["image_paths"].map(len).to_numpy() > 0
    image = pd.DataFrame({"listing_id": listings["listing_id"], "split": listings["split"]})
    image["n_photos"] = has_photo.astype(int)
    for cls in CLASSES:
        signal = y * (cls == "ivory") * 0.5 + generator.random(len(y)) * 0.5
        image[f"img_p_{cls}"] = np.where(has_photo, signal, np.nan)
    return text, image


def write_inputs(
    root: Path,
    listings: pd.DataFrame | None = None,
    fuse: dict | None = None,
    evaluate: dict | None = None,
) -> Path:
    """Prepared listings, both score files and params.yaml under ``root``; returns params."""
    from datasets import Dataset, DatasetDict

    listings = synthetic_listings() if listings is None else listings
    splits = {
        split: Dataset.from_pandas(frame.drop(columns="split").reset_index(drop=True))
        for split, frame in listings.groupby("split")
    }
    DatasetDict(splits).save_to_disk(str(root / "data/prepared/listings"))
    text, image = synthetic_scores(listings)
    for path, frame in [
        ("models/text/scores.parquet", text),
        ("models/image/listing_scores.parquet", image),
    ]:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(root / path, index=False)
    params = {
        "base": {"seed": 3, "experiment": "test-fuse"},
        "fuse": {
            # MLflow is exercised by the evaluate tests; a fresh sqlite store costs seconds.
            "track": False,
            "inputs": {"kb": False},
            "n_folds": 3,
            "target_recall": 0.9,
            "fit_on": {"mode": "auto", "min_train_positives": 30},
            "tiers": {"urgent_precision": 0.9},
            **(fuse or {}),
        },
        "evaluate": {"track": False, "n_boot": 30, "n_errors": 5, **(evaluate or {})},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _fit_small(stacker: str = "logistic", calibration: str = "auto") -> tuple[Fuser, pd.DataFrame]:
    listings = synthetic_listings()
    text, image = synthetic_scores(listings)
    features = build_features(listings, text["p_text"].to_numpy(), image)
    train = (listings["split"] == "train").to_numpy()
    fuser = Fuser(stacker=stacker, calibration=calibration, n_folds=3, random_state=0)
    fuser.fit(features[train].reset_index(drop=True), listings["label"][train].to_numpy())
    fuser.set_thresholds(
        listings["label"][train], fuser.oof_proba_, target_recall=0.9, urgent_precision=0.9
    )
    return fuser, features


# ---- feature frame ------------------------------------------------------------------------


def test_missing_photo_and_text_are_their_own_state():
    listings = pd.DataFrame(
        {
            "listing_id": ["a", "b", "c"],
            "text": ["ivory bangle", "", "  "],
            "lang": ["en", "zh", "vi"],
        }
    )
    image = pd.DataFrame(
        {"listing_id": ["a"], "n_photos": [2], "img_p_ivory": [0.8], "img_p_other": [0.1]}
    )
    features = build_features(listings, np.array([0.7, 0.93, 0.4]), image)
    assert features["has_photo"].tolist() == [1.0, 0.0, 0.0]
    assert features["n_photos"].tolist() == [2.0, 0.0, 0.0]
    assert np.isnan(features.loc[1, "img_p_ivory"])
    # Whatever the text model said about an empty text, it is not evidence.
    assert features["has_text"].tolist() == [1.0, 0.0, 0.0]
    assert features["p_text"].isna().tolist() == [False, True, True]


def test_inputs_can_be_left_out():
    listings = synthetic_listings({"train": 10})
    features = build_features(listings, None, None, metadata=False)
    assert list(features.columns) == ["listing_id"]
    _, image = synthetic_scores(listings)
    assert "p_text" not in build_features(listings, None, image).columns


# ---- the fuser ----------------------------------------------------------------------------


@pytest.mark.parametrize("stacker", ["logistic", "gbm"])
def test_fuser_ranks_and_calibrates(stacker):
    fuser, features = _fit_small(stacker)
    listings = synthetic_listings()
    val = (listings["split"] == "validation").to_numpy()
    p = fuser.predict(features[val])
    y = listings["label"][val].to_numpy()
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert metrics.average_precision(y, p) > 0.8
    # Calibrated: mean probability close to the positive share, bins close to the diagonal.
    assert abs(p.mean() - y.mean()) < 0.08
    assert metrics.expected_calibration_error(y, p, 10) < 0.15
    assert fuser.calibration_ == min(fuser.calibration_loss_, key=fuser.calibration_loss_.get)


@pytest.mark.parametrize("lang", ["sw", "und", ""])
def test_unseen_language_is_scored(lang):
    fuser, features = _fit_small()
    row = features.iloc[[0]].copy()
    row["lang"] = lang
    p = fuser.predict(row)
    assert p.shape == (1,) and 0.0 <= p[0] <= 1.0
    encoded = dict(zip(fuser.feature_names_out_, fuser.design_matrix(row)[0], strict=True))
    assert encoded["lang=other"] == 1.0


@pytest.mark.parametrize("state", ["no_photo", "no_text", "neither_text_nor_lang_seen"])
def test_listing_states_score_without_error(state):
    fuser, features = _fit_small()
    row = features.iloc[[0]].copy()
    if state in ("no_photo", "neither_text_nor_lang_seen"):
        row[[c for c in row.columns if c.startswith("img_p_")]] = np.nan
        row[["has_photo", "n_photos"]] = 0.0
    if state in ("no_text", "neither_text_nor_lang_seen"):
        row[["p_text"]] = np.nan
        row[["has_text", "text_len"]] = 0.0
    if state == "neither_text_nor_lang_seen":
        row["lang"] = "xx"
    p = fuser.predict(row)
    assert np.isfinite(p).all() and 0.0 <= p[0] <= 1.0


def test_missing_feature_column_is_a_data_error():
    fuser, features = _fit_small()
    with pytest.raises(DataError, match="p_text"):
        fuser.predict(features.drop(columns=["p_text"]))


def test_save_load_reproduces_scores_exactly(tmp_path):
    fuser, features = _fit_small(calibration="isotonic")
    fuser.save(tmp_path)
    loaded = Fuser.load(tmp_path)
    assert np.array_equal(loaded.predict(features), fuser.predict(features))
    assert loaded.tier(np.array([0.0, 1.0])).tolist()[0] == "low"
    assert loaded.threshold_ == fuser.threshold_


def test_tiers_order():
    fuser, _ = _fit_small()
    fuser.threshold_, fuser.urgent_threshold_ = 0.3, 0.8
    assert fuser.tier(np.array([0.1, 0.3, 0.79, 0.8])).tolist() == [
        "low",
        "review",
        "review",
        "urgent",
    ]
    fuser.urgent_threshold_ = None
    assert "urgent" not in fuser.tier(np.array([0.99])).tolist()


def test_duplicate_listing_across_splits_raises():
    frame = pd.DataFrame({"listing_id": ["a", "b", "a"], "split": ["train", "test", "validation"]})
    with pytest.raises(DataError, match="exactly one split"):
        check_disjoint_splits(frame)


# ---- the stage ----------------------------------------------------------------------------


@pytest.mark.parametrize(("min_pos", "chosen"), [(30, "train"), (10_000, "validation")])
def test_stage_reaches_target_recall_on_validation(tmp_path, min_pos, chosen):
    params = write_inputs(
        tmp_path, fuse={"fit_on": {"mode": "auto", "min_train_positives": min_pos}}
    )
    record = run(params)
    assert record["fit_on"]["chosen"] == chosen
    assert record["validation_at_threshold"]["recall"] >= 0.9
    scores = pd.read_parquet(tmp_path / "models/fuse/scores.parquet")
    listings = load_listings(tmp_path / "data/prepared/listings")
    assert scores["listing_id"].tolist() == listings["listing_id"].tolist()
    assert not scores.loc[scores["split"] == "test", "used_for_fit"].any()
    if chosen == "train":
        # Thresholds came from the saved fuser's validation scores: recheck them there.
        val = scores["split"] == "validation"
        y = listings.loc[val, "label"].to_numpy()
        threshold = Fuser.load(tmp_path / "models/fuse").threshold_
        got = metrics.precision_recall_f1(y, scores.loc[val, "p_final"], threshold)
        assert got["recall"] >= 0.9
    saved = json.loads((tmp_path / "models/fuse/fuse.json").read_text())
    assert {"fuser", "fit_on", "tiers", "threshold_source"} <= set(saved)
    assert saved["fuser"]["calibration_method"] in ("isotonic", "sigmoid")


def test_stage_scores_reproduce_from_saved_fuser(tmp_path):
    params = write_inputs(tmp_path)
    run(params)
    scores = pd.read_parquet(tmp_path / "models/fuse/scores.parquet")
    fuser = Fuser.load(tmp_path / "models/fuse")
    features = scores.drop(columns=["split", "p_final", "tier", "used_for_fit"])
    assert np.array_equal(fuser.predict(features), scores["p_final"].to_numpy())
    assert set(scores["tier"]) <= {"urgent", "review", "low"}
    # The scorer's path: new listings -> feature frame -> p_final, with nothing from the run.
    listings = load_listings(tmp_path / "data/prepared/listings")
    text = pd.read_parquet(tmp_path / "models/text/scores.parquet")
    image = pd.read_parquet(tmp_path / "models/image/listing_scores.parquet")
    p_text = text.set_index("listing_id").loc[listings["listing_id"], "p_text"].to_numpy()
    rebuilt = fuser.build_features(listings, p_text, image)
    assert np.array_equal(fuser.predict(rebuilt), scores["p_final"].to_numpy())
    assert fuser.tier(fuser.predict(rebuilt)).tolist() == scores["tier"].tolist()


@pytest.mark.parametrize("off", ["text", "image"])
def test_stage_with_an_input_switched_off(tmp_path, off):
    params = write_inputs(tmp_path, fuse={"inputs": {"kb": False, off: False}})
    record = run(params)
    scores = pd.read_parquet(tmp_path / "models/fuse/scores.parquet")
    assert record["inputs"][off] is False
    dropped = "p_text" if off == "text" else "img_p_ivory"
    assert dropped not in scores.columns


def test_stage_rejects_split_mismatch(tmp_path):
    params = write_inputs(tmp_path)
    path = tmp_path / "models/text/scores.parquet"
    text = pd.read_parquet(path)
    text.loc[0, "split"] = "test"
    text.to_parquet(path, index=False)
    with pytest.raises(DataError, match="different split"):
        run(params)


def test_stage_with_kb_features(tmp_path):
    pytest.importorskip("wildml.kb.features", reason="knowledge base features not installed")
    params = write_inputs(tmp_path, fuse={"inputs": {"kb": True}})
    run(params)
    scores = pd.read_parquet(tmp_path / "models/fuse/scores.parquet")
    assert "kb__any_confirmed" in scores.columns
    # The positive texts name ivory for sale; the negative ones only a resin look-alike.
    listings = load_listings(tmp_path / "data/prepared/listings")
    confirmed = scores["kb__any_confirmed"].to_numpy()
    has_text = listings["text"].str.len().to_numpy() > 0
    positive = listings["label"].to_numpy() == 1
    assert confirmed[positive & has_text].mean() > confirmed[~positive].mean()
    assert "kb" in json.loads((tmp_path / "models/fuse/fuse.json").read_text())

    from wildml import evaluate

    report = evaluate.run(params)
    assert "kb" in report["signals"]


def test_cli_fuse_tracks_a_run(tmp_path):
    import mlflow
    from typer.testing import CliRunner

    from wildml.cli import app

    params = write_inputs(tmp_path, fuse={"track": True, "inputs": {"kb": False}})
    result = CliRunner().invoke(app, ["fuse", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models/fuse/stacker.skops").is_file()
    client = mlflow.tracking.MlflowClient()
    experiment = client.get_experiment_by_name("test-fuse")
    runs = client.search_runs([experiment.experiment_id], "tags.`wildml.stage` = 'fuse'")
    assert runs and 0.0 < runs[0].data.metrics["threshold"] < 1.0


def test_auto_calibration_is_sigmoid_on_a_small_fit_set():
    listings = synthetic_listings()
    text, image = synthetic_scores(listings)
    features = build_features(listings, text["p_text"].to_numpy(), image)
    train = (listings["split"] == "train").to_numpy()
    fit = features[train].reset_index(drop=True), listings["label"][train].to_numpy()
    small = Fuser(n_folds=3, min_isotonic=1000, random_state=0).fit(*fit)
    assert small.calibration_ == "sigmoid"
    # With the bar lowered, isotonic is a candidate again and the lower log-loss wins.
    large = Fuser(n_folds=3, min_isotonic=10, random_state=0).fit(*fit)
    losses = large.calibration_loss_
    assert large.calibration_ == min(losses, key=losses.get)


def test_features_beyond_the_fit_range_are_clipped(tmp_path):
    fuser, features = _fit_small()
    low, high = fuser.feature_range_["text_len"]
    row = features.iloc[[0]].copy()
    at_edge, beyond = row.copy(), row.copy()
    at_edge["text_len"], beyond["text_len"] = high, high + 5.0
    assert fuser.predict(beyond)[0] == pytest.approx(fuser.predict(at_edge)[0])
    below = row.copy()
    below["text_len"] = low - 5.0
    assert fuser.predict(below)[0] == pytest.approx(fuser.predict(row.assign(text_len=low))[0])
    fuser.save(tmp_path)
    again = Fuser.load(tmp_path)
    assert again.feature_range_ == fuser.feature_range_
    np.testing.assert_array_equal(again.predict(beyond), fuser.predict(beyond))


def test_uncalibrated_scores_order_listings_within_a_calibrated_step():
    fuser, features = _fit_small(calibration="isotonic")
    p, raw = fuser.predict_with_scores(features)
    np.testing.assert_array_equal(p, fuser.predict(features))
    assert np.unique(raw).size > np.unique(p).size
    order = np.lexsort((-raw, -p))
    assert np.all(np.diff(p[order]) <= 0)
