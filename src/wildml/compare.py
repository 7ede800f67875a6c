"""Compare evaluate runs on the same test listings: deltas, paired intervals, where they differ.

An evaluator asks three questions of a candidate model: is it better than the model in
service, is the difference more than the noise of a small test set, and where (which language,
which product) does it win or lose. This module answers them from what ``wildml evaluate``
logged to MLflow: the operating threshold (metric ``operating_threshold``), the calibration
bins (``ece_bins``) and the per-listing test scores artifact ``test_scores.parquet``.

Every figure is recomputed from the scores with :mod:`wildml.metrics`, the functions evaluate
uses, so a run's value here equals its ``metrics.json`` value. Differences against a baseline
are paired: both runs are scored on the same bootstrap resample of the same test listings
(:func:`wildml.metrics.paired_bootstrap_diff`), which is only meaningful when the two runs
scored the same listings with the same labels; :func:`join_scores` refuses otherwise.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildml import metrics
from wildml.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SCORES_ARTIFACT = "test_scores.parquet"
EVALUATE_STAGE = "evaluate"
EXPORT_STAGE = "export"
STAGE_TAG = "wildml.stage"
DVC_TAG = "dvc_experiment"
# Set on a registered model version by ``wildml promote``: the evaluate run that vouched for it.
EVALUATE_RUN_TAG = "wildml.evaluate_run_id"
DEFAULT_ALIAS = "champion"
DEFAULT_MODEL_NAME = "wildml-scorer"
SCORE_COLUMNS = ("listing_id", "label", "lang", "product", "p_final")
KEY_METRICS = ("pr_auc", "recall", "precision", "f1", "ece")


# --------------------------------------------------------------------------------------------
# Metrics compared
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """One compared metric: how to compute it and which direction is better.

    ``on_margin`` metrics are computed on ``p_final - threshold`` flagged at 0, so each run is
    judged at its own operating threshold while both share one metric function (the paired
    bootstrap applies one function to both score vectors). ``x - t >= 0`` exactly when
    ``x >= t`` in IEEE arithmetic, so no listing changes side.
    """

    name: str
    label: str
    higher_is_better: bool
    on_margin: bool
    fn: Callable[[np.ndarray, np.ndarray, int], float | None]

    def bind(self, ece_bins: int) -> Callable[[np.ndarray, np.ndarray], float | None]:
        """The metric as ``fn(labels, scores)``, with the calibration bins fixed."""
        return lambda labels, scores: self.fn(labels, scores, ece_bins)


def _at_zero(key: str) -> Callable[[np.ndarray, np.ndarray, int], float | None]:
    return lambda labels, margin, _bins: metrics.precision_recall_f1(labels, margin, 0.0)[key]


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "pr_auc", "PR-AUC", True, False, lambda y, p, _: metrics.average_precision(y, p)
        ),
        MetricSpec("roc_auc", "ROC-AUC", True, False, lambda y, p, _: metrics.roc_auc(y, p)),
        MetricSpec("recall", "recall@thr", True, True, _at_zero("recall")),
        MetricSpec("precision", "precision@thr", True, True, _at_zero("precision")),
        MetricSpec("f1", "F1@thr", True, True, _at_zero("f1")),
        MetricSpec("ece", "ECE", False, False, metrics.expected_calibration_error),
        MetricSpec("brier", "Brier", False, False, lambda y, p, _: metrics.brier_score(y, p)),
    )
}


def metric_spec(name: str) -> MetricSpec:
    """Return the spec of a compared metric, or raise ConfigError listing the known ones."""
    if name not in METRICS:
        raise ConfigError(f"unknown metric '{name}'; choose from {', '.join(METRICS)}")
    return METRICS[name]


# --------------------------------------------------------------------------------------------
# Loading runs
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RunScores:
    """One evaluate run: its identity, operating threshold and per-listing test scores.

    ``scores`` has one row per labelled test listing (``listing_id``, ``label``, ``lang``,
    ``product``, ``p_final``, and whatever else evaluate logged).
    """

    run_id: str
    name: str
    threshold: float
    ece_bins: int
    scores: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    experiment_id: str = ""

    @property
    def short_id(self) -> str:
        """The first eight characters of the run id, enough to tell runs apart in a table."""
        return self.run_id[:8]


def client(tracking_uri: str | None = None) -> Any:
    """An MlflowClient on the project's tracking store (``MLFLOW_TRACKING_URI`` wins)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # The download progress bar would land in the middle of the terminal table.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    from wildml.tracking import tracking_uri as project_uri

    return mlflow.MlflowClient(tracking_uri=tracking_uri or project_uri())


def run_label(tags: dict[str, str], run_id: str) -> str:
    """A human name for a run: its DVC experiment name, else its run name, with a short id."""
    name = tags.get(DVC_TAG) or tags.get("mlflow.runName") or "run"
    return f"{name} ({run_id[:8]})"


def load_run_scores(run_id: str, *, mlflow_client: Any | None = None) -> RunScores:
    """Fetch an evaluate run and its per-listing test scores.

    Parameters
    ----------
    run_id
        MLflow run id of a ``wildml evaluate`` run.
    mlflow_client
        Client to use; default: one on the project's tracking store.

    Raises
    ------
    DataError
        When the run does not exist, is not an evaluate run, or lacks the scores artifact.
    """
    from mlflow.exceptions import MlflowException

    mlflow_client = mlflow_client or client()
    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException as err:
        raise DataError(
            f"MLflow run '{run_id}' not found in {mlflow_client.tracking_uri}"
        ) from err
    tags = dict(run.data.tags)
    if "operating_threshold" not in run.data.metrics:
        stage = tags.get(STAGE_TAG, "unknown")
        raise DataError(
            f"run {run_id} (stage {stage}) has no 'operating_threshold' metric: "
            "pass the id of a `wildml evaluate` run"
        )
    scores = _download_scores(mlflow_client, run_id)
    return RunScores(
        run_id=run_id,
        name=run_label(tags, run_id),
        threshold=float(run.data.metrics["operating_threshold"]),
        ece_bins=int(run.data.metrics.get("ece_bins", 10)),
        scores=scores,
        metrics=dict(run.data.metrics),
        tags=tags,
        experiment_id=run.info.experiment_id,
    )


def _download_scores(mlflow_client: Any, run_id: str) -> pd.DataFrame:
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="wildml-compare-") as tmp:
        try:
            local = mlflow_client.download_artifacts(run_id, SCORES_ARTIFACT, tmp)
        except (MlflowException, OSError) as err:
            raise DataError(
                f"run {run_id}: artifact '{SCORES_ARTIFACT}' missing (re-run `wildml evaluate`)"
            ) from err
        scores = pd.read_parquet(local)
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise DataError(f"run {run_id}: {SCORES_ARTIFACT} lacks columns {missing}")
    scores["listing_id"] = scores["listing_id"].astype(str)
    if scores["listing_id"].duplicated().any():
        raise DataError(f"run {run_id}: {SCORES_ARTIFACT} repeats listing ids")
    scores["lang"] = scores["lang"].fillna("und").astype(str)
    scores["product"] = scores["product"].fillna("").astype(str)
    return scores


# --------------------------------------------------------------------------------------------
# Finding runs: by id, by DVC experiment name, the last N, the champion
# --------------------------------------------------------------------------------------------


def _evaluate_filter(extra: str = "") -> str:
    base = f"tags.`{STAGE_TAG}` = '{EVALUATE_STAGE}'"
    return f"{base} and {extra}" if extra else base


def _quoted(value: str) -> str:
    if "'" in value:
        raise ConfigError(f"name {value!r} must not contain a single quote")
    return value


def _experiment_ids(mlflow_client: Any, experiment: str | None) -> list[str]:
    if experiment is None:
        return [e.experiment_id for e in mlflow_client.search_experiments()]
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        raise ConfigError(f"MLflow experiment '{experiment}' not found")
    return [found.experiment_id]


def last_runs(mlflow_client: Any, experiment: str, n: int) -> list[str]:
    """Ids of the ``n`` most recent finished evaluate runs of an experiment, newest first."""
    if n < 1:
        raise ConfigError(f"--last must be at least 1, got {n}")
    runs = mlflow_client.search_runs(
        _experiment_ids(mlflow_client, experiment),
        _evaluate_filter("attributes.status = 'FINISHED'"),
        max_results=n,
        order_by=["attributes.start_time DESC"],
    )
    if not runs:
        raise DataError(f"experiment '{experiment}' has no finished evaluate runs")
    return [r.info.run_id for r in runs]


def runs_for_dvc_experiments(
    mlflow_client: Any, names: Sequence[str], experiment: str | None = None
) -> list[str]:
    """The latest finished evaluate run tagged with each DVC experiment name, in order.

    Raises
    ------
    DataError
        When a name has no evaluate run (the experiment was not run, or not tracked).
    """
    ids = _experiment_ids(mlflow_client, experiment)
    out = []
    for name in names:
        runs = mlflow_client.search_runs(
            ids,
            _evaluate_filter(
                f"tags.`{DVC_TAG}` = '{_quoted(name)}' and attributes.status = 'FINISHED'"
            ),
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if not runs:
            raise DataError(f"no finished evaluate run is tagged {DVC_TAG}={name!r}")
        out.append(runs[0].info.run_id)
    return out


def select_runs(
    mlflow_client: Any,
    run_ids: Sequence[str] = (),
    dvc_experiments: Sequence[str] = (),
    experiment: str | None = None,
    last: int | None = None,
) -> list[str]:
    """Run ids to compare: given ids, then DVC experiment names, then the last N; no repeats.

    Raises
    ------
    ConfigError
        When nothing is selected, or ``last`` is given without ``experiment``.
    """
    selected = list(run_ids)
    if dvc_experiments:
        selected += runs_for_dvc_experiments(mlflow_client, dvc_experiments, experiment)
    if last is not None:
        if experiment is None:
            raise ConfigError("--last needs --experiment NAME (the MLflow experiment)")
        selected += last_runs(mlflow_client, experiment, last)
    if not selected:
        raise ConfigError("nothing to compare: give run ids, --exp names or --experiment/--last")
    return list(dict.fromkeys(selected))


def resolve_baseline(
    mlflow_client: Any,
    baseline: str | None = None,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str | None = DEFAULT_ALIAS,
) -> tuple[str | None, str]:
    """The baseline run id and where it came from: ``--baseline``, else the alias, else None."""
    if baseline:
        return baseline, "--baseline"
    if alias:
        champion = champion_run_id(mlflow_client, model_name, alias)
        if champion:
            return champion, f"{model_name}@{alias}"
    return None, ""


def alias_version(mlflow_client: Any, model_name: str, alias: str) -> Any | None:
    """The model version behind a registry alias, or None when the model or alias is unset."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def _same_pipeline_run(tags_a: dict[str, str], tags_b: dict[str, str]) -> bool:
    for key in (DVC_TAG, "git_commit", "wildml.pipeline"):
        if tags_a.get(key) != tags_b.get(key):
            return False
    return True


def linked_evaluate_run(mlflow_client: Any, run: Any) -> str | None:
    """The evaluate run an export run packaged: the last one before it from the same pipeline.

    Same MLflow experiment, same DVC experiment name (or none), same git commit and pipeline,
    started before the export run. An explicit ``wildml.evaluate_run_id`` tag wins.
    """
    tagged = run.data.tags.get(EVALUATE_RUN_TAG)
    if tagged:
        return str(tagged)
    earlier = mlflow_client.search_runs(
        [run.info.experiment_id],
        f"tags.`{STAGE_TAG}` = '{EVALUATE_STAGE}' and "
        f"attributes.start_time <= {int(run.info.start_time)}",
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    for candidate in earlier:
        if candidate.info.status == "FINISHED" and _same_pipeline_run(
            dict(candidate.data.tags), dict(run.data.tags)
        ):
            return str(candidate.info.run_id)
    return None


def evaluate_run_of_version(mlflow_client: Any, version: Any) -> str | None:
    """The evaluate run whose figures stand behind a registered model version.

    ``wildml promote`` records it on the version (tag ``wildml.evaluate_run_id``); without
    the tag, a version registered from an export run maps to the evaluate run that export
    packaged (:func:`linked_evaluate_run`).
    """
    tagged = (version.tags or {}).get(EVALUATE_RUN_TAG)
    if tagged:
        return str(tagged)
    if version.run_id:
        run = mlflow_client.get_run(version.run_id)
        if run.data.tags.get(STAGE_TAG) == EVALUATE_STAGE:
            return str(version.run_id)
        if run.data.tags.get(STAGE_TAG) == EXPORT_STAGE:
            return linked_evaluate_run(mlflow_client, run)
    return None


def champion_run_id(
    mlflow_client: Any, model_name: str = DEFAULT_MODEL_NAME, alias: str = DEFAULT_ALIAS
) -> str | None:
    """The evaluate run behind the registry alias (the model in service), or None."""
    version = alias_version(mlflow_client, model_name, alias)
    if version is None:
        return None
    run_id = evaluate_run_of_version(mlflow_client, version)
    if run_id is None:
        logger.warning(
            "%s@%s (version %s) is linked to no evaluate run: no champion to compare with",
            model_name,
            alias,
            version.version,
        )
    return run_id


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def join_scores(candidate: RunScores, baseline: RunScores) -> pd.DataFrame:
    """Per-listing scores of two runs side by side, on listing_id.

    Returns
    -------
    pandas.DataFrame
        The candidate's columns plus ``p_base`` (the baseline's ``p_final``), candidate order.

    Raises
    ------
    DataError
        When the runs scored different test listings or disagree on a label: a paired
        comparison would then mix model differences with data differences.
    """
    cand, base = candidate.scores, baseline.scores
    only_cand = sorted(set(cand["listing_id"]) - set(base["listing_id"]))
    only_base = sorted(set(base["listing_id"]) - set(cand["listing_id"]))
    if only_cand or only_base:
        raise DataError(
            f"runs {candidate.short_id} and {baseline.short_id} scored different test "
            f"listings ({len(only_cand)} only in {candidate.short_id}, e.g. {only_cand[:3]}; "
            f"{len(only_base)} only in {baseline.short_id}, e.g. {only_base[:3]}): "
            "a paired comparison needs the same test split; compare them on metrics.json "
            "figures instead, or re-evaluate both on one split"
        )
    base_cols = base[["listing_id", "label", "p_final"]].rename(
        columns={"label": "label_base", "p_final": "p_base"}
    )
    joined = cand.merge(base_cols, on="listing_id", how="left", validate="one_to_one")
    relabelled = joined["label"] != joined["label_base"]
    if relabelled.any():
        ids = joined.loc[relabelled, "listing_id"].head(3).tolist()
        raise DataError(
            f"runs {candidate.short_id} and {baseline.short_id} disagree on "
            f"{int(relabelled.sum())} test labels, e.g. {ids}: re-evaluate both on one labelling"
        )
    return joined.drop(columns="label_base")


def slice_masks(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row masks of the compared groups: ``overall``, ``lang:<code>``, ``product:<id>``.

    A product group holds that product's positives and every negative, as in evaluate's
    ``by_product`` figures, so its PR-AUC asks "are listings offering this product found among
    all the harmless ones".
    """
    masks = {"overall": np.ones(len(frame), dtype=bool)}
    for lang in sorted(frame["lang"].unique()):
        masks[f"lang:{lang}"] = (frame["lang"] == lang).to_numpy()
    negatives = (frame["label"] == 0).to_numpy()
    positives = frame["label"] == 1
    products = frame.loc[positives, "product"].replace("", "unspecified")
    for product in sorted(products.unique()):
        is_product = frame["product"].replace("", "unspecified") == product
        masks[f"product:{product}"] = negatives | (positives & is_product).to_numpy()
    return masks


def _inputs(spec: MetricSpec, probs: np.ndarray, threshold: float) -> np.ndarray:
    return probs - threshold if spec.on_margin else probs


def run_figures(run: RunScores, metric_names: Sequence[str] = KEY_METRICS) -> pd.DataFrame:
    """A run's metrics per group, without a baseline.

    Returns
    -------
    pandas.DataFrame
        One row per group and metric: ``run``, ``run_id``, ``group``, ``n``, ``n_pos``,
        ``metric``, ``value`` (None where undefined, e.g. PR-AUC of a group without positives).
    """
    frame = run.scores
    y = frame["label"].to_numpy(np.int64)
    p = frame["p_final"].to_numpy(np.float64)
    rows = []
    for group, mask in slice_masks(frame).items():
        for name in metric_names:
            spec = metric_spec(name)
            value = spec.bind(run.ece_bins)(y[mask], _inputs(spec, p[mask], run.threshold))
            rows.append(_row(run, group, mask, y, name, value))
    return pd.DataFrame(rows)


def _row(
    run: RunScores, group: str, mask: np.ndarray, y: np.ndarray, name: str, value: Any
) -> dict[str, Any]:
    return {
        "run": run.name,
        "run_id": run.run_id,
        "group": group,
        "n": int(mask.sum()),
        "n_pos": int(y[mask].sum()),
        "metric": name,
        "value": value,
    }


def paired_figures(
    candidate: RunScores,
    baseline: RunScores,
    metric_names: Sequence[str] = KEY_METRICS,
    *,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Candidate minus baseline per group and metric, with paired bootstrap intervals.

    Each run is judged at its own operating threshold and the candidate's calibration bins.
    The resampling is stratified by label and seeded, so every metric of a group sees the same
    resampled listings.

    Returns
    -------
    pandas.DataFrame
        :func:`run_figures` columns plus ``baseline``, ``delta``, ``low``, ``high`` and
        ``verdict`` (``better`` / ``worse`` when the interval excludes 0, ``n.s.`` otherwise,
        ``""`` when undefined), for the candidate's rows.

    Raises
    ------
    DataError
        From :func:`join_scores` when the runs scored different listings.
    """
    joined = join_scores(candidate, baseline)
    y = joined["label"].to_numpy(np.int64)
    p_cand = joined["p_final"].to_numpy(np.float64)
    p_base = joined["p_base"].to_numpy(np.float64)
    rows = []
    for group, mask in slice_masks(joined).items():
        for name in metric_names:
            spec = metric_spec(name)
            diff = metrics.paired_bootstrap_diff(
                spec.bind(candidate.ece_bins),
                y[mask],
                _inputs(spec, p_cand[mask], candidate.threshold),
                _inputs(spec, p_base[mask], baseline.threshold),
                n_boot=n_boot,
                level=level,
                seed=seed,
            )
            row = _row(candidate, group, mask, y, name, diff["a"])
            row.update(baseline=diff["b"], delta=diff["diff"], low=diff["low"], high=diff["high"])
            row["verdict"] = verdict(spec, diff["low"], diff["high"])
            rows.append(row)
    return pd.DataFrame(rows)


def verdict(spec: MetricSpec, low: float | None, high: float | None) -> str:
    """``better`` / ``worse`` when the interval of the difference excludes 0, else ``n.s.``."""
    if low is None or high is None:
        return ""
    if low > 0 or high < 0:
        gain = low > 0
        return "better" if gain == spec.higher_is_better else "worse"
    return "n.s."


@dataclass
class Comparison:
    """The result of :func:`compare_runs`: the runs, the baseline and one tidy table."""

    runs: list[RunScores]
    baseline: RunScores | None
    table: pd.DataFrame
    metric_names: tuple[str, ...]
    level: float
    baseline_source: str = ""
    plots: dict[str, Path] = field(default_factory=dict)


def compare_runs(
    runs: Sequence[RunScores],
    baseline: RunScores | None = None,
    metric_names: Sequence[str] = KEY_METRICS,
    *,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
    baseline_source: str = "",
) -> Comparison:
    """Figures of every run per group, with paired deltas against ``baseline`` when given.

    The baseline's own figures come first (``delta`` 0 by definition is not repeated); a run
    that is the baseline is not compared with itself.
    """
    if not runs:
        raise ConfigError("nothing to compare: give run ids, --exp names or --experiment/--last")
    for name in metric_names:
        metric_spec(name)
    parts = []
    if baseline is not None:
        parts.append(run_figures(baseline, metric_names))
    for run in runs:
        if baseline is not None and run.run_id == baseline.run_id:
            continue
        if baseline is None:
            parts.append(run_figures(run, metric_names))
        else:
            kwargs = {"n_boot": n_boot, "level": level, "seed": seed}
            parts.append(paired_figures(run, baseline, metric_names, **kwargs))
    table = pd.concat(parts, ignore_index=True)
    return Comparison(
        runs=list(runs),
        baseline=baseline,
        table=table,
        metric_names=tuple(metric_names),
        level=level,
        baseline_source=baseline_source,
    )


def disagreements(
    first: RunScores, second: RunScores, *, top: int = 20, min_gap: float = 0.0
) -> pd.DataFrame:
    """Test listings that the two runs rank most differently.

    Ranks are percentiles within each run's test scores (1.0 = scored highest), so runs with
    differently scaled scores compare fairly. ``flag_a``/``flag_b`` say whether each run flags
    the listing at its own operating threshold.

    Returns
    -------
    pandas.DataFrame
        At most ``top`` rows, largest ``rank_gap`` first: ``listing_id``, ``label``, ``lang``,
        ``product``, ``p_a``, ``p_b``, ``rank_a``, ``rank_b``, ``rank_gap`` (rank_a -
        rank_b), ``flag_a``, ``flag_b``. Listing ids only, never listing text.
    """
    joined = join_scores(first, second).rename(columns={"p_final": "p_a", "p_base": "p_b"})
    joined["rank_a"] = joined["p_a"].rank(pct=True)
    joined["rank_b"] = joined["p_b"].rank(pct=True)
    joined["rank_gap"] = joined["rank_a"] - joined["rank_b"]
    joined["flag_a"] = joined["p_a"] >= first.threshold
    joined["flag_b"] = joined["p_b"] >= second.threshold
    columns = ["listing_id", "label", "lang", "product", "p_a", "p_b"]
    columns += ["rank_a", "rank_b", "rank_gap", "flag_a", "flag_b"]
    out = joined.loc[joined["rank_gap"].abs() >= min_gap, columns]
    order = out["rank_gap"].abs().sort_values(ascending=False, kind="stable").index
    return out.loc[order].head(top).reset_index(drop=True)


def flag_changes(first: RunScores, second: RunScores) -> pd.DataFrame:
    """Per group, how the flagged set changes from ``second`` to ``first``.

    Each run flags at its own operating threshold. ``found`` / ``lost``: positives flagged
    only by ``first`` / only by ``second``; ``new_false_alarms`` / ``removed_false_alarms``:
    negatives flagged only by ``first`` / only by ``second``. This is where a change of model
    changes a reviewer's queue.
    """
    joined = join_scores(first, second)
    flag_a = (joined["p_final"] >= first.threshold).to_numpy()
    flag_b = (joined["p_base"] >= second.threshold).to_numpy()
    positive = (joined["label"] == 1).to_numpy()
    rows = []
    for group, mask in slice_masks(joined).items():
        rows.append(
            {
                "group": group,
                "n": int(mask.sum()),
                "n_pos": int((mask & positive).sum()),
                "found": int((mask & positive & flag_a & ~flag_b).sum()),
                "lost": int((mask & positive & ~flag_a & flag_b).sum()),
                "new_false_alarms": int((mask & ~positive & flag_a & ~flag_b).sum()),
                "removed_false_alarms": int((mask & ~positive & ~flag_a & flag_b).sum()),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _runs_in_order(comparison: Comparison) -> list[RunScores]:
    runs = [comparison.baseline] if comparison.baseline is not None else []
    seen = {run.run_id for run in runs}
    return runs + [r for r in comparison.runs if r.run_id not in seen]


def plot_pr_curves(runs: Sequence[RunScores], path: Path) -> Path:
    """Overlaid precision-recall curves of the runs' test scores, operating points marked."""
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for run in runs:
        y = run.scores["label"].to_numpy(np.int64)
        p = run.scores["p_final"].to_numpy(np.float64)
        if not 0 < y.sum() < y.size:
            continue
        precision, recall, _ = precision_recall_curve(y, p)
        at = metrics.precision_recall_f1(y, p, run.threshold)
        (line,) = ax.plot(recall, precision, drawstyle="steps-post", label=run.name)
        if at["precision"] is not None:
            ax.plot(at["recall"], at["precision"], "o", color=line.get_color())
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("precision-recall on test (dot: operating threshold)")
    ax.legend(fontsize="small", loc="lower left")
    return _save(plt, fig, path)


def plot_reliability(runs: Sequence[RunScores], path: Path) -> Path:
    """Overlaid reliability diagrams: mean predicted p against the share really positive."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for run in runs:
        table = pd.DataFrame(
            metrics.reliability_table(run.scores["label"], run.scores["p_final"], run.ece_bins)
        ).dropna()
        ax.plot(table["mean_pred"], table["frac_pos"], marker="o", label=run.name)
    ax.set(xlabel="mean predicted p", ylabel="share really positive", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("reliability on test (equal-width bins)")
    ax.legend(fontsize="small", loc="upper left")
    return _save(plt, fig, path)


def write_plots(comparison: Comparison, plots_dir: Path) -> dict[str, Path]:
    """Write ``pr_curves.png`` and ``reliability.png`` for the compared runs; return paths."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    runs = _runs_in_order(comparison)
    comparison.plots = {
        "pr_curves": plot_pr_curves(runs, plots_dir / "pr_curves.png"),
        "reliability": plot_reliability(runs, plots_dir / "reliability.png"),
    }
    return comparison.plots


def _pyplot() -> Any:
    import matplotlib

    # Agg draws to files without a display, so plots work on servers and offline.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Rendering: terminal (rich), Markdown, self-contained HTML
# --------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _delta_text(row: pd.Series) -> str:
    if "delta" not in row or row["delta"] is None or pd.isna(row["delta"]):
        return "—"
    text = f"{row['delta']:+.3f}"
    if row.get("low") is not None and not pd.isna(row["low"]):
        text += f" [{row['low']:+.3f}, {row['high']:+.3f}]"
    return text


def wide_table(comparison: Comparison) -> pd.DataFrame:
    """One row per group and metric, one column block per run: the shape every output shows.

    Columns: ``group``, ``metric``, ``n (pos)``, then per run its value and, against a
    baseline, ``Δ <run> [CI]`` (delta with the paired interval and the verdict).
    """
    table = comparison.table
    first = table.drop_duplicates(["group", "metric"])[["group", "metric", "n", "n_pos"]]
    out = pd.DataFrame(
        {
            "group": first["group"].to_numpy(),
            "metric": [METRICS[m].label for m in first["metric"]],
            "n (pos)": [f"{n} ({k})" for n, k in zip(first["n"], first["n_pos"], strict=True)],
        }
    )
    keys = list(zip(first["group"], first["metric"], strict=True))
    for run in _runs_in_order(comparison):
        rows = table[table["run_id"] == run.run_id].set_index(["group", "metric"])
        rows = rows.reindex(keys)
        head = run.name + (" = baseline" if run is comparison.baseline else "")
        out[head] = [_fmt(v) for v in rows["value"]]
        if comparison.baseline is not None and run is not comparison.baseline:
            deltas = [_delta_text(r) for _, r in rows.iterrows()]
            verdicts = rows["verdict"].fillna("").tolist()
            out[f"Δ {run.name}"] = [
                f"{d} {v}".strip() if v else d for d, v in zip(deltas, verdicts, strict=True)
            ]
    return out


def _caption(comparison: Comparison) -> str:
    if comparison.baseline is None:
        return "No baseline: figures only (no champion alias set and no --baseline given)."
    source = f" ({comparison.baseline_source})" if comparison.baseline_source else ""
    return (
        f"Δ = run − baseline {comparison.baseline.name}{source}, with a paired bootstrap "
        f"{comparison.level:.0%} interval on the same test listings; better/worse: the "
        "interval excludes 0; n.s.: it does not. ECE and Brier: lower is better."
    )


def rich_table(comparison: Comparison) -> Any:
    """The wide table as a :class:`rich.table.Table` for the terminal."""
    from rich.table import Table

    wide = wide_table(comparison)
    table = Table(title="wildml compare: test split", caption=_caption(comparison))
    for column in wide.columns:
        table.add_column(str(column), justify="left" if column in ("group", "metric") else "right")
    styles = {"better": "green", "worse": "bold red"}
    for _, row in wide.iterrows():
        cells = []
        for value in row:
            text = str(value)
            style = next((s for word, s in styles.items() if text.endswith(word)), None)
            cells.append(f"[{style}]{_rich_escape(text)}[/]" if style else _rich_escape(text))
        table.add_row(*cells)
    return table


def _rich_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(comparison: Comparison, image_dir: Path | None = None) -> str:
    """The comparison as Markdown: run list, the wide table, links to the PNG plots.

    ``image_dir`` is the folder the Markdown file will live in; plot links are made relative
    to it.
    """
    wide = wide_table(comparison)
    lines = ["# wildml compare (test split)", ""]
    for run in _runs_in_order(comparison):
        role = "baseline" if run is comparison.baseline else "run"
        lines.append(
            f"- {role} `{run.run_id}`: {_md_cell(run.name)}, "
            f"operating threshold {run.threshold:.4f}, {len(run.scores)} test listings"
        )
    lines += ["", _caption(comparison), ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in wide.columns) + " |")
    lines.append("| " + " | ".join("---" for _ in wide.columns) + " |")
    for _, row in wide.iterrows():
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    for name, path in comparison.plots.items():
        link = _relative(path, image_dir) if image_dir else path
        lines += ["", f"![{name}]({link.as_posix()})"]
    return "\n".join(lines) + "\n"


def _relative(path: Path, folder: Path) -> Path:
    return Path(os.path.relpath(path.resolve(), folder.resolve()))


def to_html(comparison: Comparison) -> str:
    """A self-contained HTML page: every value escaped, plots embedded as data URIs."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_HTML_TEMPLATE)
    wide = wide_table(comparison)
    images = {
        name: base64.b64encode(path.read_bytes()).decode("ascii")
        for name, path in comparison.plots.items()
        if path.is_file()
    }
    runs = [
        {
            "role": "baseline" if run is comparison.baseline else "run",
            "run_id": run.run_id,
            "name": run.name,
            "threshold": f"{run.threshold:.4f}",
            "n": len(run.scores),
        }
        for run in _runs_in_order(comparison)
    ]
    rows = [[(str(v), _cell_class(str(v))) for v in row] for row in wide.itertuples(index=False)]
    return template.render(
        columns=[str(c) for c in wide.columns],
        rows=rows,
        runs=runs,
        caption=_caption(comparison),
        images=images,
    )


def _cell_class(text: str) -> str:
    if text.endswith("better"):
        return "better"
    if text.endswith("worse"):
        return "worse"
    return ""


_HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>wildml compare</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
td.better{background:#e5f5e0}td.worse{background:#fde0dd;font-weight:bold}
code{font-size:13px}img{max-width:48%;margin:1em 1% 0 0}
</style></head><body>
<h1>wildml compare (test split)</h1>
<ul>{% for run in runs %}
<li>{{ run.role }} <code>{{ run.run_id }}</code>: {{ run.name }}, operating threshold
{{ run.threshold }}, {{ run.n }} test listings</li>{% endfor %}
</ul>
<p>{{ caption }}</p>
<table><thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr>{% for text, cls in row %}<td class="{{ cls }}">{{ text }}</td>
{%- endfor %}</tr>
{% endfor %}</tbody></table>
{% for name, data in images.items() %}<img alt="{{ name }}" src="data:image/png;base64,{{ data }}">
{% endfor %}
</body></html>
"""


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def compare_settings(params_path: str | os.PathLike | None) -> dict[str, Any]:
    """Bootstrap settings from ``evaluate``, registry name and alias from ``promote``.

    Using evaluate's ``n_boot``, ``ci`` and seed makes compare's intervals the same kind as
    the ones in ``metrics.json``. Without a params file the defaults apply.
    """
    from wildml.config import load_params

    settings = {
        "n_boot": 500,
        "ci": 0.95,
        "seed": 0,
        "model_name": DEFAULT_MODEL_NAME,
        "alias": DEFAULT_ALIAS,
        "experiment": None,
    }
    if params_path is None or not Path(params_path).is_file():
        return settings
    params = load_params(params_path)
    base = params.get("base") or {}
    evaluate = params.get("evaluate") or {}
    promote = params.get("promote") or {}
    settings["experiment"] = base.get("experiment")
    settings["seed"] = int(evaluate.get("seed", base.get("seed", 0)))
    settings["n_boot"] = int(evaluate.get("n_boot", settings["n_boot"]))
    settings["ci"] = float(evaluate.get("ci", settings["ci"]))
    settings["model_name"] = str(promote.get("model_name", settings["model_name"]))
    settings["alias"] = str(promote.get("alias", settings["alias"]))
    return settings


def run_compare(
    run_ids: Sequence[str] = (),
    *,
    dvc_experiments: Sequence[str] = (),
    experiment: str | None = None,
    last: int | None = None,
    baseline: str | None = None,
    use_champion: bool = True,
    metric_names: Sequence[str] = KEY_METRICS,
    params_path: str | os.PathLike | None = None,
    n_boot: int | None = None,
    plots_dir: Path | None = None,
    markdown_path: Path | None = None,
    html_path: Path | None = None,
    mlflow_client: Any | None = None,
) -> Comparison:
    """Select runs, load their scores, compare with the baseline, write the requested files.

    ``--last N`` without ``--experiment`` uses the params file's ``base.experiment``. The
    baseline is ``baseline`` if given, else the run behind the champion alias (unless
    ``use_champion`` is False), else none.
    """
    settings = compare_settings(params_path)
    mlflow_client = mlflow_client or client()
    if last is not None and experiment is None:
        experiment = settings["experiment"]
    ids = select_runs(mlflow_client, run_ids, dvc_experiments, experiment, last)
    alias = settings["alias"] if use_champion else None
    base_id, source = resolve_baseline(
        mlflow_client, baseline, model_name=settings["model_name"], alias=alias
    )
    runs = [load_run_scores(run_id, mlflow_client=mlflow_client) for run_id in ids]
    base_run = load_run_scores(base_id, mlflow_client=mlflow_client) if base_id else None
    comparison = compare_runs(
        runs,
        base_run,
        metric_names,
        n_boot=int(n_boot if n_boot is not None else settings["n_boot"]),
        level=float(settings["ci"]),
        seed=int(settings["seed"]),
        baseline_source=source,
    )
    if plots_dir is not None:
        write_plots(comparison, plots_dir)
    _write_outputs(comparison, markdown_path, html_path)
    return comparison


def _write_outputs(
    comparison: Comparison, markdown_path: Path | None, html_path: Path | None
) -> None:
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        text = to_markdown(comparison, image_dir=markdown_path.parent)
        markdown_path.write_text(text, encoding="utf-8")
        logger.info("compare: Markdown -> %s", markdown_path)
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(to_html(comparison), encoding="utf-8")
        logger.info("compare: HTML -> %s", html_path)
