"""``wildml compare``: figures, paired deltas and renderings over real evaluate runs.

The runs are made by the real ``wildml.evaluate.run`` on small hand-made fused scores, so
their metric names, threshold and ``test_scores.parquet`` artifact are exactly evaluate's.
Other test modules import the helpers below.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from wildml import compare
from wildml.errors import ConfigError, DataError

LANGS = ("en", "zh", "vi", "fr")
PRODUCTS = ("ivory", "pangolin_scale", "rhino_horn")
EXPERIMENT = "test-compare"
pytestmark = pytest.mark.slow
MODEL = "test-scorer"


# ---- helpers shared with test_promote / test_notebook -----------------------------------


def synthetic_listings(n_test: int = 200, seed: int = 0, pos_share: float = 0.35) -> pd.DataFrame:
    """Prepared-listings rows: a labelled test split, and token train/validation rows."""
    generator = np.random.default_rng(seed)
    rows = []
    for split, count in {"train": 4, "validation": 4, "test": n_test}.items():
        for i in range(count):
            label = int(generator.random() < pos_share)
            rows.append(
                {
                    "listing_id": f"{split[:2]}{i:04d}",
                    "source": "market" if i % 3 else "hotline",
                    "text": "",
                    "lang": LANGS[i % len(LANGS)],
                    "label": label,
                    "product": PRODUCTS[(i // len(LANGS)) % len(PRODUCTS)] if label else "",
                    "image_paths": [],
                    "group_id": f"g{split}{i}",
                    "split": split,
                }
            )
    return pd.DataFrame(rows)


def fused_scores(
    listings: pd.DataFrame,
    *,
    seed: int = 1,
    strength: float = 2.0,
    noise: float = 1.2,
    degrade_lang: str | None = None,
) -> np.ndarray:
    """Calibrated-looking scores: informative logits; ``degrade_lang`` gets pure noise."""
    generator = np.random.default_rng(seed)
    y = listings["label"].to_numpy()
    logit = (y - 0.5) * strength + generator.normal(0, noise, len(y))
    if degrade_lang is not None:
        in_lang = (listings["lang"] == degrade_lang).to_numpy()
        logit[in_lang] = generator.normal(-0.5, 1.0, int(in_lang.sum()))
    return 1 / (1 + np.exp(-logit))


def write_listings(root: Path, listings: pd.DataFrame) -> Path:
    """Save listings as the prepared DatasetDict evaluate reads; return its folder."""
    from datasets import Dataset, DatasetDict

    folder = root / "listings"
    splits = {
        split: Dataset.from_pandas(frame.drop(columns="split").reset_index(drop=True))
        for split, frame in listings.groupby("split")
    }
    DatasetDict(splits).save_to_disk(str(folder))
    return folder


def evaluate_run(
    root: Path,
    name: str,
    listings: pd.DataFrame,
    p_final: np.ndarray,
    *,
    threshold: float = 0.5,
    listings_dir: Path | None = None,
    experiment: str = EXPERIMENT,
    dvc_name: str | None = None,
    n_boot: int = 20,
) -> str:
    """Run the real evaluate stage on the given fused scores; return the MLflow run id."""
    import mlflow

    from wildml import evaluate

    folder = root / name
    (folder / "fuse").mkdir(parents=True)
    scores = pd.DataFrame(
        {
            "listing_id": listings["listing_id"],
            "split": listings["split"],
            "p_final": p_final,
            "p_text": p_final,
        }
    )
    scores.to_parquet(folder / "fuse" / "scores.parquet", index=False)
    (folder / "fuse" / "fuse.json").write_text(json.dumps({"fuser": {"threshold": threshold}}))
    listings_dir = listings_dir or write_listings(folder, listings)
    params = {
        "base": {"experiment": experiment, "seed": 0},
        "evaluate": {
            "listings_dir": str(listings_dir),
            "fuse_dir": "fuse",
            "n_boot": n_boot,
            "n_errors": 3,
            "track": True,
        },
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as patch:
        if dvc_name:
            patch.setenv("DVC_EXP_NAME", dvc_name)
        else:
            patch.delenv("DVC_EXP_NAME", raising=False)
        evaluate.run(folder / "params.yaml")
    return mlflow.last_active_run().info.run_id


def export_run(experiment: str = EXPERIMENT, dvc_name: str | None = None) -> str:
    """What ``wildml export`` leaves in MLflow after an evaluate run: an export run.

    The real export needs trained text and photo models; promote reads only its MLflow
    footprint (stage tag, provenance tags, a ``scorer`` folder), which this reproduces through
    the same ``start_run``. Returns the export run id; :func:`register` makes a version of it.
    """
    import tempfile

    import mlflow

    from wildml.tracking import start_run

    with pytest.MonkeyPatch.context() as patch:
        if dvc_name:
            patch.setenv("DVC_EXP_NAME", dvc_name)
        else:
            patch.delenv("DVC_EXP_NAME", raising=False)
        with start_run("export", {"experiment": experiment}) as run:
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "MLmodel").write_text("artifact_path: scorer\n")
                mlflow.log_artifacts(tmp, artifact_path="scorer")
            return run.info.run_id


def register(export_run_id: str, model_name: str = MODEL) -> str:
    """Register an export run's package as export does; return the version number."""
    import mlflow

    version = mlflow.register_model(
        f"runs:/{export_run_id}/scorer", model_name, tags={"wildml.package_digest": "0" * 64}
    )
    return str(version.version)


def use_store(monkeypatch: pytest.MonkeyPatch, store: Path) -> str:
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("WILDML_ARTIFACT_ROOT", str(store / "artifacts"))
    return uri


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three evaluate runs on the same test listings, one on different listings."""
    root = tmp_path_factory.mktemp("compare")
    listings = synthetic_listings()
    with pytest.MonkeyPatch.context() as patch:
        uri = use_store(patch, root)
        shared = write_listings(root, listings)
        ids = {
            "base": evaluate_run(
                root, "base", listings, fused_scores(listings), listings_dir=shared
            ),
            "better": evaluate_run(
                root,
                "better",
                listings,
                fused_scores(listings, strength=5.0, noise=1.0, seed=2),
                listings_dir=shared,
                dvc_name="exp-better",
            ),
            "worse_zh": evaluate_run(
                root,
                "worse_zh",
                listings,
                fused_scores(listings, degrade_lang="zh"),
                listings_dir=shared,
                dvc_name="exp-worse-zh",
            ),
        }
        other = synthetic_listings(n_test=120, seed=5)
        other["listing_id"] = "x" + other["listing_id"]
        ids["other"] = evaluate_run(root, "other", other, fused_scores(other))
    return {"root": root, "uri": uri, "ids": ids}


@pytest.fixture
def store(runs, monkeypatch):
    use_store(monkeypatch, runs["root"])
    return compare.client(runs["uri"])


# ---- tests -------------------------------------------------------------------------------


def test_figures_equal_evaluate_metrics(runs, store):
    """Recomputed figures are the ones evaluate logged, overall and per language and product."""
    run = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    figures = compare.run_figures(run, ("pr_auc", "recall", "f1", "ece"))
    logged = store.get_run(run.run_id).data.metrics
    checked = 0
    for row in figures.to_dict("records"):
        kind, _, name = row["group"].partition(":")
        key = {"overall": "overall", "lang": f"by_lang.{name}", "product": f"by_product.{name}"}
        metric = f"{key[kind]}.{row['metric']}.value"
        assert row["value"] == pytest.approx(logged[metric], abs=1e-12), metric
        checked += 1
    assert checked == (1 + len(LANGS) + len(PRODUCTS)) * 4


def test_run_against_itself_has_zero_in_every_interval(runs, store):
    run = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    table = compare.paired_figures(run, run, compare.KEY_METRICS, n_boot=50)
    defined = table.dropna(subset=["delta"])
    assert len(defined) == len(table)
    assert (defined["delta"] == 0).all()
    assert ((defined["low"] <= 0) & (defined["high"] >= 0)).all()
    assert set(defined["verdict"]) == {"n.s."}


def test_clear_improvement_is_significant(runs, store):
    base = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    better = compare.load_run_scores(runs["ids"]["better"], mlflow_client=store)
    table = compare.paired_figures(better, base, ("pr_auc",), n_boot=200)
    overall = table[table["group"] == "overall"].iloc[0]
    assert overall["delta"] > 0.02
    assert overall["low"] > 0 and overall["verdict"] == "better"


@pytest.mark.parametrize("lang", ["zh"])
def test_degraded_language_shows_as_worse_only_there(runs, store, lang):
    base = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    worse = compare.load_run_scores(runs["ids"]["worse_zh"], mlflow_client=store)
    table = compare.paired_figures(worse, base, ("pr_auc",), n_boot=200).set_index("group")
    assert table.loc[f"lang:{lang}", "verdict"] == "worse"
    assert table.loc[f"lang:{lang}", "delta"] < -0.2
    for other in set(LANGS) - {lang}:
        assert table.loc[f"lang:{other}", "delta"] == 0


def test_different_listings_are_refused(runs, store):
    base = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    other = compare.load_run_scores(runs["ids"]["other"], mlflow_client=store)
    with pytest.raises(DataError, match="different test listings"):
        compare.paired_figures(other, base)


def test_relabelled_listing_is_refused(runs, store):
    base = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    flipped = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    flipped.scores.loc[0, "label"] = 1 - flipped.scores.loc[0, "label"]
    with pytest.raises(DataError, match="disagree on 1 test labels"):
        compare.join_scores(flipped, base)


def test_selection_by_dvc_name_and_last(runs, store):
    ids = runs["ids"]
    by_name = compare.select_runs(store, dvc_experiments=["exp-worse-zh", "exp-better"])
    assert by_name == [ids["worse_zh"], ids["better"]]
    last = compare.select_runs(store, experiment=EXPERIMENT, last=2)
    assert last == [ids["other"], ids["worse_zh"]]
    with pytest.raises(DataError, match="exp-missing"):
        compare.select_runs(store, dvc_experiments=["exp-missing"])
    with pytest.raises(ConfigError, match="--experiment"):
        compare.select_runs(store, last=2)


def test_not_an_evaluate_run_is_refused(runs, store):
    import mlflow

    with mlflow.start_run(experiment_id=store.get_run(runs["ids"]["base"]).info.experiment_id):
        other = mlflow.active_run().info.run_id
    with pytest.raises(DataError, match="operating_threshold"):
        compare.load_run_scores(other, mlflow_client=store)
    with pytest.raises(DataError, match="not found"):
        compare.load_run_scores("0" * 32, mlflow_client=store)


def test_disagreements_rank_the_changed_language_first(runs, store):
    base = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    worse = compare.load_run_scores(runs["ids"]["worse_zh"], mlflow_client=store)
    table = compare.disagreements(worse, base, top=10)
    assert len(table) == 10
    assert set(table["lang"]) == {"zh"}
    gaps = table["rank_gap"].abs().tolist()
    assert gaps == sorted(gaps, reverse=True) and gaps[0] > 0.3
    assert "text" not in table.columns


def test_cli_compare_by_run_ids_with_baseline(runs, store, tmp_path):
    """The table with deltas in the terminal, Markdown and self-contained HTML, plus PNGs."""
    from typer.testing import CliRunner

    from wildml.cli import app

    ids = runs["ids"]
    md, page, plots = tmp_path / "cmp.md", tmp_path / "cmp.html", tmp_path / "plots"
    args = ["compare", ids["better"], ids["worse_zh"], "--baseline", ids["base"]]
    args += ["--markdown", str(md), "--html", str(page), "--plots-dir", str(plots)]
    args += ["--n-boot", "50", "--params", str(tmp_path / "absent.yaml")]
    result = CliRunner().invoke(app, args, terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "Δ exp-better" in result.output and "lang:zh" in result.output
    text = md.read_text()
    assert re.search(r"\| lang:zh \| PR-AUC \|.*\| -0\.\d+ \[-0\.\d+, -0\.\d+\] worse \|", text)
    assert text.count("| product:") == len(PRODUCTS) * len(compare.KEY_METRICS)
    html = page.read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    assert 'class="worse"' in html
    for name in ("pr_curves.png", "reliability.png"):
        assert (plots / name).stat().st_size > 5000


def run_main(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> int:
    """Run the real entry point (error handling and exit codes included); return the code."""
    import sys

    from wildml.cli import main

    monkeypatch.setattr(sys, "argv", ["wildml", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_compare_refuses_different_listings(runs, store, monkeypatch, capsys):
    ids = runs["ids"]
    args = ["compare", ids["other"], "--baseline", ids["base"], "--no-plots"]
    assert run_main(monkeypatch, args) == 2
    assert "different test listings" in capsys.readouterr().err


def test_html_escapes_run_names(runs, store):
    run = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    run.name = "<script>alert(1)</script>"
    page = compare.to_html(compare.compare_runs([run]))
    assert "<script>" not in page and "&lt;script&gt;" in page
    markdown = compare.to_markdown(compare.compare_runs([run]))
    assert "No baseline" in markdown


def test_champion_alias_is_the_default_baseline(runs, store):
    """With the alias set on a version exported beside `base`, compare picks it up."""
    ids = runs["ids"]
    version = register(export_run(), "test-compare-model")
    store.set_registered_model_alias("test-compare-model", "champion", version)
    store.set_model_version_tag(
        "test-compare-model", version, compare.EVALUATE_RUN_TAG, ids["base"]
    )
    baseline, source = compare.resolve_baseline(store, model_name="test-compare-model")
    assert baseline == ids["base"] and source == "test-compare-model@champion"
    assert compare.resolve_baseline(store, model_name="no-such-model") == (None, "")


def test_champion_without_tag_is_found_through_export_lineage(runs, store):
    """An export run maps to the last evaluate run before it from the same pipeline run."""
    version = register(export_run(), "test-lineage-model")
    store.set_registered_model_alias("test-lineage-model", "in-service", version)
    found = compare.resolve_baseline(store, model_name="test-lineage-model", alias="in-service")
    # `other` is the latest evaluate run without a DVC experiment name.
    assert found == (runs["ids"]["other"], "test-lineage-model@in-service")
    exported = register(export_run(dvc_name="exp-better"), "test-lineage-model")
    version = store.get_model_version("test-lineage-model", exported)
    assert compare.evaluate_run_of_version(store, version) == runs["ids"]["better"]


def test_baseline_listed_among_runs_is_shown_once(runs, store):
    base = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    again = compare.load_run_scores(runs["ids"]["base"], mlflow_client=store)
    better = compare.load_run_scores(runs["ids"]["better"], mlflow_client=store)
    comparison = compare.compare_runs([again, better], base, ("pr_auc",), n_boot=20)
    wide = compare.wide_table(comparison)
    assert [c for c in wide.columns if "evaluate" in c] == [f"{base.name} = baseline"]
    assert len(wide) == 1 + len(LANGS) + len(PRODUCTS)
