"""``wildml promote``: the gate refuses planted regressions, allows improvements, records all."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from test_compare import (
    evaluate_run,
    export_run,
    fused_scores,
    register,
    run_main,
    synthetic_listings,
    use_store,
    write_listings,
)
from wildml import compare, promote
from wildml.errors import ConfigError, DataError

GATE = {
    "floors": {"pr_auc": 0.5, "recall": 0.6},
    "max_ece": 0.2,
    "lang_f1_floor": {"default": 0.5},
    "min_lang_positives": 5,
    "tolerance": {"pr_auc": 0.02, "recall": 0.02, "lang_pr_auc": 0.05},
    "n_boot": 100,
}


# ---- the gate on hand-made runs (no MLflow) ----------------------------------------------


def _run(name: str, listings: pd.DataFrame, p_final: np.ndarray) -> compare.RunScores:
    test = listings[listings["split"] == "test"].reset_index(drop=True)
    scores = test[["listing_id", "label", "lang", "product"]].assign(p_final=p_final)
    return compare.RunScores(run_id=name * 4, name=name, threshold=0.5, ece_bins=10, scores=scores)


def _gate_cfg() -> dict:
    cfg = promote.gate_config(None)
    cfg.update(GATE)
    return cfg


@pytest.fixture(scope="module")
def listings():
    return synthetic_listings(n_test=400)


def _test_scores(listings: pd.DataFrame, **kwargs) -> np.ndarray:
    test = listings[listings["split"] == "test"].reset_index(drop=True)
    return fused_scores(test, **kwargs)


def _failed(checks: list[promote.Check]) -> set[str]:
    return {c.name for c in checks if c.passed is False}


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        ("lang", {"F1 floor [zh]", "PR-AUC vs champion", "PR-AUC vs champion [zh]"}),
        ("calibration", {"ECE ceiling"}),
        ("recall", {"recall floor", "recall vs champion"}),
    ],
)
def test_gate_refuses_planted_regression(listings, plant, expected):
    champion = _run("champ", listings, _test_scores(listings))
    p = _test_scores(listings)
    if plant == "lang":
        p = _test_scores(listings, degrade_lang="zh")
    elif plant == "calibration":
        # Same ranking and the same flags at 0.5, but squashed towards 0.5: badly calibrated.
        p = 0.5 + (p - 0.5) * 0.15
    elif plant == "recall":
        p = p * 0.6  # the same ranking, far fewer listings over the threshold
    checks = promote.gate(_run("cand", listings, p), champion, _gate_cfg())
    assert expected <= _failed(checks)
    # A check the plant could not have moved still passes.
    if plant == "calibration":
        assert not {"PR-AUC vs champion", "recall vs champion"} & _failed(checks)


def test_gate_allows_improvement(listings):
    champion = _run("champ", listings, _test_scores(listings))
    better = _run("cand", listings, _test_scores(listings, strength=5.0, noise=1.0, seed=2))
    checks = promote.gate(better, champion, _gate_cfg())
    assert _failed(checks) == set()
    vs = {c.name: c for c in checks}["PR-AUC vs champion"]
    assert vs.delta > 0 and vs.low is not None and vs.low > 0


def test_without_champion_only_floors_apply(listings):
    checks = promote.gate(_run("cand", listings, _test_scores(listings)), None, _gate_cfg())
    names = {c.name for c in checks}
    assert {"PR-AUC floor", "recall floor", "ECE ceiling", "F1 floor [zh]"} <= names
    assert not any("champion" in name for name in names)


def test_language_with_too_few_positives_is_reported_not_gated(listings):
    few = listings.copy()
    thai = (few["split"] == "test") & (few["lang"] == "vi")
    few.loc[thai, "lang"] = "th"
    few.loc[thai & (few["label"] == 1), ["label", "product"]] = [0, ""]
    few.loc[few[thai].index[0], ["label", "product"]] = [1, "ivory"]
    checks = promote.gate(_run("cand", few, _test_scores(few)), None, _gate_cfg())
    thai_check = {c.name: c for c in checks}["F1 floor [th]"]
    assert thai_check.passed is None and "1 test positives" in thai_check.detail


def test_describe_names_value_and_limit(listings):
    champion = _run("champ", listings, _test_scores(listings))
    worse = _run("cand", listings, _test_scores(listings, degrade_lang="zh"))
    checks = promote.gate(worse, champion, _gate_cfg())
    line = promote.describe({c.name: c for c in checks}["PR-AUC vs champion"])
    assert line.startswith("[FAILED] PR-AUC vs champion:")
    assert "allowed >= -0.020" in line and "interval [" in line


def test_champion_on_other_listings_is_compared_unpaired(listings):
    champion = _run("champ", listings, _test_scores(listings))
    champion.scores["listing_id"] = "old-" + champion.scores["listing_id"]
    worse = _run("cand", listings, _test_scores(listings, degrade_lang="zh"))
    checks = {c.name: c for c in promote.gate(worse, champion, _gate_cfg())}
    vs = checks["PR-AUC vs champion"]
    assert vs.passed is False and vs.low is None and "unpaired" in vs.detail
    assert vs.delta == pytest.approx(vs.value - vs.champion)
    json.dumps([asdict(c) for c in checks.values()], allow_nan=False)


# ---- promotion through MLflow: alias, tags, artifact, CLI exit codes --------------------


@pytest.fixture(scope="module")
def pipeline_runs(tmp_path_factory):
    """Three evaluate runs, each followed by its export run, as `dvc exp run` would leave."""
    root = tmp_path_factory.mktemp("promote")
    listings = synthetic_listings()
    variants = {
        "base": ({}, None),
        "worse_zh": ({"degrade_lang": "zh"}, "exp-worse-zh"),
        "better": ({"strength": 5.0, "noise": 1.0, "seed": 2}, "exp-better"),
    }
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        uri = use_store(patch, root)
        shared = write_listings(root, listings)
        for name, (kwargs, dvc_name) in variants.items():
            scores = fused_scores(listings, **kwargs)
            evaluated = evaluate_run(
                root, name, listings, scores, listings_dir=shared, dvc_name=dvc_name
            )
            runs[name] = (evaluated, export_run(dvc_name=dvc_name))
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"promote": GATE}))
    return {"root": root, "uri": uri, "runs": runs, "params": params}


@pytest.fixture
def store(pipeline_runs, monkeypatch):
    use_store(monkeypatch, pipeline_runs["root"])
    return compare.client(pipeline_runs["uri"])


def _registered(pipeline_runs, model: str, *names: str) -> dict[str, str]:
    return {name: register(pipeline_runs["runs"][name][1], model) for name in names}


def _promote(pipeline_runs, name: str, model: str, **kwargs) -> dict:
    return promote.promote(
        pipeline_runs["runs"][name][0],
        model_name=model,
        params_path=pipeline_runs["params"],
        **kwargs,
    )


@pytest.mark.slow
def test_export_version_is_found_from_its_evaluate_run(pipeline_runs, store):
    versions = _registered(pipeline_runs, "m-lineage", "base", "worse_zh", "better")
    for name, number in versions.items():
        found = promote.version_for_run(store, "m-lineage", pipeline_runs["runs"][name][0])
        assert str(found.version) == number


@pytest.mark.slow
def test_first_promotion_checks_floors_and_sets_alias(pipeline_runs, store):
    versions = _registered(pipeline_runs, "m-first", "base")
    record = _promote(pipeline_runs, "base", "m-first")
    assert record["decision"] == "promoted" and record["champion"] is None
    assert not any("champion" in c["name"] for c in record["checks"])
    version = store.get_model_version_by_alias("m-first", "champion")
    assert str(version.version) == versions["base"]
    evaluated = pipeline_runs["runs"]["base"][0]
    assert version.tags[compare.EVALUATE_RUN_TAG] == evaluated
    assert compare.resolve_baseline(store, model_name="m-first") == (
        evaluated,
        "m-first@champion",
    )
    tags = store.get_run(evaluated).data.tags
    assert tags["wildml.promote.champion.decision"] == "promoted"
    assert tags["wildml.promote.champion.forced"] == "false"
    local = store.download_artifacts(evaluated, record["artifact"])
    saved = json.loads(Path(local).read_text(encoding="utf-8"))
    assert saved["by"] and saved["at"] and saved["model_version"] == versions["base"]
    assert {c["name"] for c in saved["checks"]} >= {"PR-AUC floor", "ECE ceiling"}


@pytest.mark.slow
def test_regression_is_refused_with_exit_code_and_recorded(
    pipeline_runs, store, monkeypatch, capsys
):
    versions = _registered(pipeline_runs, "m-refuse", "base", "worse_zh")
    _promote(pipeline_runs, "base", "m-refuse")
    candidate = pipeline_runs["runs"]["worse_zh"][0]
    args = ["promote", candidate, "--alias", "champion", "--model-name", "m-refuse"]
    args += ["--params", str(pipeline_runs["params"])]
    assert run_main(monkeypatch, args) == promote.PromotionRefusedError.exit_code
    message = capsys.readouterr().err
    for check in ("PR-AUC vs champion:", "F1 floor [zh]", "PR-AUC vs champion [zh]"):
        assert f"[FAILED] {check}" in message
    assert "[FAILED] F1 floor [en]" not in message
    champion = store.get_model_version_by_alias("m-refuse", "champion")
    assert str(champion.version) == versions["base"]
    tags = store.get_run(candidate).data.tags
    assert tags["wildml.promote.champion.decision"] == "refused"
    assert "F1 floor [zh]" in tags["wildml.promote.champion.failed"]


@pytest.mark.slow
def test_improvement_is_promoted(pipeline_runs, store):
    versions = _registered(pipeline_runs, "m-improve", "base", "better")
    _promote(pipeline_runs, "base", "m-improve")
    record = _promote(pipeline_runs, "better", "m-improve")
    assert record["decision"] == "promoted" and record["failed"] == []
    assert record["champion"]["run_id"] == pipeline_runs["runs"]["base"][0]
    vs = {c["name"]: c for c in record["checks"]}["PR-AUC vs champion"]
    assert vs["delta"] > 0
    champion = store.get_model_version_by_alias("m-improve", "champion")
    assert str(champion.version) == versions["better"]


@pytest.mark.slow
def test_forced_promotion_records_the_reason(pipeline_runs, store, monkeypatch, capsys):
    versions = _registered(pipeline_runs, "m-force", "base", "worse_zh")
    _promote(pipeline_runs, "base", "m-force")
    candidate = pipeline_runs["runs"]["worse_zh"][0]
    reason = "zh listings re-labelled; regression accepted until the back-fill lands"
    args = ["promote", candidate, "--model-name", "m-force", "--force", "--reason", reason]
    args += ["--params", str(pipeline_runs["params"])]
    assert run_main(monkeypatch, args) == 0
    assert "(forced)" in capsys.readouterr().out
    version = store.get_model_version_by_alias("m-force", "champion")
    assert str(version.version) == versions["worse_zh"]
    assert version.tags["wildml.promote.champion.reason"] == reason
    tags = store.get_run(candidate).data.tags
    assert tags["wildml.promote.champion.decision"] == "forced"
    assert tags["wildml.promote.champion.forced"] == "true"
    assert tags["wildml.promote.champion.reason"] == reason
    assert "PR-AUC vs champion" in tags["wildml.promote.champion.failed"]


@pytest.mark.slow
def test_force_needs_a_reason(pipeline_runs, store):
    with pytest.raises(ConfigError, match="--reason"):
        _promote(pipeline_runs, "base", "m-first", force=True, reason="  ")


@pytest.mark.slow
def test_run_without_exported_version_is_refused(pipeline_runs, store):
    _registered(pipeline_runs, "m-partial", "base")
    with pytest.raises(DataError, match="no version of 'm-partial' was exported"):
        _promote(pipeline_runs, "better", "m-partial")
