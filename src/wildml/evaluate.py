"""The ``evaluate`` stage: how good the fused score is on the test split, where, how sure.

Reads ``models/fuse/scores.parquet`` and ``fuse.json`` plus the prepared listings (labels,
language, product, source), keeps the labelled TEST listings only, and writes:

- ``metrics.json`` (DVC metrics): ranking, threshold and calibration metrics with stratified
  bootstrap 95 % intervals, overall and per language, product, source and photo state; a
  fused-vs-single-signal table with paired intervals; error counts;
- ``plots/``: CSV files for DVC plots and PNG renderings (matplotlib Agg, offline);
- an MLflow run with the metrics flattened, the PNGs, the error table and a per-listing
  test scores parquet (the ``compare`` command reads it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildml import metrics
from wildml.config import load_params, resolve_path, section
from wildml.errors import DataError
from wildml.fuse import FUSE_JSON, IMAGE_PREFIX, KB_PREFIX, load_listings

logger = logging.getLogger(__name__)

DEFAULT_PHOTO_CLASSES = ("ivory", "pangolin_scale", "rhino_horn")
SIGNALS = ("fused", "text", "photo", "kb")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def test_frame(listings: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Labelled test listings joined with their fused scores and input features.

    Raises
    ------
    DataError
        When a test listing has no fused score, or a test row was used to fit the fuser.
    """
    test = listings[(listings["split"] == "test") & listings["label"].isin([0, 1])]
    keep = ["listing_id", "label", "lang", "product", "source", "text", "image_paths"]
    test = test[[c for c in keep if c in test.columns]].copy()
    test["listing_id"] = test["listing_id"].astype(str)
    scored = scores[scores["split"] == "test"].drop(columns=["split", "lang"], errors="ignore")
    if "used_for_fit" in scored and scored["used_for_fit"].any():
        raise DataError("fuse scores: test listings were used to fit the fuser; refit it")
    frame = test.merge(scored, on="listing_id", how="left")
    missing = frame["p_final"].isna()
    if missing.any():
        ids = frame.loc[missing, "listing_id"].head(5).tolist()
        raise DataError(f"fuse scores: {int(missing.sum())} test listings unscored, e.g. {ids}")
    if "has_photo" not in frame:
        frame["has_photo"] = frame["image_paths"].map(lambda p: float(len(p) > 0))
    return frame.reset_index(drop=True)


def signal_scores(frame: pd.DataFrame, photo_classes: list[str]) -> dict[str, np.ndarray]:
    """Score vectors of the fused model and of each signal alone (missing -> 0, lowest).

    - ``text``: ``p_text``; ``photo``: the highest ``img_p_<class>`` over ``photo_classes``;
    - ``kb``: the number of confirmed knowledge-base matches (sum of ``kb__*__confirmed``).

    A signal whose inputs were switched off in ``fuse`` is left out.
    """
    out = {"fused": frame["p_final"].to_numpy(np.float64)}
    if "p_text" in frame:
        out["text"] = frame["p_text"].fillna(0.0).to_numpy(np.float64)
    photo_cols = [f"{IMAGE_PREFIX}{c}" for c in photo_classes if f"{IMAGE_PREFIX}{c}" in frame]
    if photo_cols:
        out["photo"] = frame[photo_cols].max(axis=1).fillna(0.0).to_numpy(np.float64)
    kb_cols = [c for c in frame.columns if c.startswith(KB_PREFIX) and c.endswith("__confirmed")]
    if kb_cols:
        out["kb"] = frame[kb_cols].sum(axis=1).to_numpy(np.float64)
    return out


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def panel(
    labels: np.ndarray, probs: np.ndarray, *, threshold: float, ks: list[int], ece_bins: int
) -> dict[str, float | None]:
    """All per-group metrics of one score vector, as one dict (one bootstrap replicate)."""
    at = metrics.precision_recall_f1(labels, probs, threshold)
    out: dict[str, float | None] = {
        "pr_auc": metrics.average_precision(labels, probs),
        "roc_auc": metrics.roc_auc(labels, probs),
        "f1": at["f1"],
        "precision": at["precision"],
        "recall": at["recall"],
        "recall_at_precision_0.9": metrics.recall_at_precision(labels, probs, 0.9),
        "precision_at_recall_0.9": metrics.precision_at_recall(labels, probs, 0.9),
    }
    for k in ks:
        out[f"precision_at_{k}"] = metrics.precision_at_k(labels, probs, k)
    out["ece"] = metrics.expected_calibration_error(labels, probs, ece_bins)
    out["brier"] = metrics.brier_score(labels, probs)
    return out


def group_report(
    labels: np.ndarray, probs: np.ndarray, cfg: dict[str, Any], threshold: float
) -> dict[str, Any]:
    """Panel of one group with bootstrap intervals; one-class groups give nulls, not errors."""
    ks = [int(k) for k in cfg.get("k", [10, 50, 100])]
    ece_bins = int(cfg.get("ece_bins", 10))

    def fn(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
        return panel(y, p, threshold=threshold, ks=ks, ece_bins=ece_bins)

    n_pos = int(labels.sum())
    # Known limitation: the bootstrap resamples listings, not sellers or duplicate groups, so
    # intervals are too narrow when a few sellers dominate a group; read them as a lower
    # bound on the uncertainty until a grouped resampling is added.
    ci = metrics.bootstrap_ci(
        fn,
        labels,
        probs,
        n_boot=int(cfg.get("n_boot", 200)),
        level=float(cfg.get("ci", 0.95)),
        seed=int(cfg.get("seed", 0)),
    )
    report: dict[str, Any] = {"n": int(labels.size), "n_pos": n_pos}
    for name, stats in ci.items():
        report[name] = {key: stats[key] for key in ("value", "low", "high")}
    if n_pos in (0, labels.size):
        report["note"] = "one class only: ranking metrics undefined"
    return report


def _groups(frame: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """Row masks per slice. A product slice holds that product's positives and all negatives."""
    negatives = (frame["label"] == 0).to_numpy()
    slices: dict[str, dict[str, np.ndarray]] = {"by_lang": {}, "by_product": {}, "by_source": {}}
    for lang in sorted(frame["lang"].fillna("und").unique()):
        slices["by_lang"][str(lang)] = (frame["lang"] == lang).to_numpy()
    products = frame.loc[frame["label"] == 1, "product"].fillna("").replace("", "unspecified")
    for product in sorted(products.unique()):
        is_product = frame["product"].fillna("").replace("", "unspecified") == product
        slices["by_product"][str(product)] = negatives | (is_product & (frame["label"] == 1))
    for source in sorted(frame["source"].fillna("").unique()):
        slices["by_source"][str(source)] = (frame["source"] == source).to_numpy()
    has_photo = frame["has_photo"].to_numpy(np.float64) > 0
    slices["by_photo"] = {"text_only": ~has_photo, "with_photo": has_photo}
    return slices


def signal_table(
    labels: np.ndarray, signals: dict[str, np.ndarray], cfg: dict[str, Any]
) -> dict[str, Any]:
    """PR-AUC of each signal with its interval, and the paired difference fused - signal."""
    common = {
        "n_boot": int(cfg.get("n_boot", 200)),
        "level": float(cfg.get("ci", 0.95)),
        "seed": int(cfg.get("seed", 0)),
    }
    table: dict[str, Any] = {}
    for name, scores in signals.items():
        stats = metrics.bootstrap_ci(metrics.average_precision, labels, scores, **common)["value"]
        entry: dict[str, Any] = {"pr_auc": {k: stats[k] for k in ("value", "low", "high")}}
        if name != "fused":
            diff = metrics.paired_bootstrap_diff(
                metrics.average_precision, labels, signals["fused"], scores, **common
            )
            entry["fused_minus_signal"] = {k: diff[k] for k in ("diff", "low", "high")}
        table[name] = entry
    return table


# --------------------------------------------------------------------------------------------
# Error analysis
# --------------------------------------------------------------------------------------------


def kb_terms(texts: list[str], kb_path: str | None = None) -> list[str]:
    """Per listing, ``term:status`` of each knowledge-base match (ids only, never the text)."""
    from wildml.kb import Matcher, load_kb

    matcher = Matcher(load_kb(kb_path))
    out = []
    for text in texts:
        found = sorted({f"{ev.term}:{ev.status}" for ev in matcher.match(text or "")})
        out.append(";".join(found))
    return out


def _photo_class(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    cols = [c for c in frame.columns if c.startswith(IMAGE_PREFIX)]
    if not cols:
        empty = pd.Series([""] * len(frame), index=frame.index)
        return empty, pd.Series(np.nan, index=frame.index)
    probs = frame[cols].astype(float)
    has_any = probs.notna().any(axis=1)
    best = probs.fillna(-1.0).idxmax(axis=1).str[len(IMAGE_PREFIX) :].where(has_any, "")
    return best, probs.max(axis=1)


def _reasons(row: pd.Series, threshold: float, photo_classes: list[str]) -> str:
    """Short, rule-based explanations of an error, from the signals the fuser saw."""
    reasons = []
    p_text = row.get("p_text", np.nan)
    if row.get("has_text", 1.0) == 0:
        reasons.append("no text")
    elif isinstance(p_text, float) and math.isfinite(p_text):
        reasons.append("text score high" if p_text >= threshold else "text score low")
    if row["has_photo"] == 0:
        reasons.append("no photo")
    elif not row["photo_class"]:
        reasons.append("photo not scored")
    elif row["photo_class"] in photo_classes:
        reasons.append(f"photo looks like {row['photo_class']}")
    else:
        reasons.append(f"photo class {row['photo_class']} (not a protected product)")
    terms = row["kb_terms"]
    if ":confirmed" in terms:
        reasons.append("KB term confirmed")
    if ":defused" in terms:
        reasons.append("KB term defused")
    if not terms:
        reasons.append("no KB evidence")
    return "; ".join(reasons)


def error_table(
    frame: pd.DataFrame,
    threshold: float,
    photo_classes: list[str],
    n_worst: int,
    kb: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Worst false positives and negatives at the operating threshold, plus error counts.

    ``kb`` is the fuse record's ``kb`` entry; without it (KB input off) terms stay empty.
    """
    flagged = frame["p_final"] >= threshold
    is_fp = flagged & (frame["label"] == 0)
    is_fn = ~flagged & (frame["label"] == 1)
    errors = frame[is_fp | is_fn].copy()
    errors["kind"] = np.where(errors["label"] == 0, "false_positive", "false_negative")
    errors["photo_class"], errors["photo_p"] = _photo_class(errors)
    texts = errors.get("text", pd.Series("", index=errors.index)).tolist()
    errors["kb_terms"] = kb_terms(texts, kb.get("path")) if kb is not None else [""] * len(texts)
    errors["reasons"] = [_reasons(row, threshold, photo_classes) for _, row in errors.iterrows()]
    fps = errors[errors["kind"] == "false_positive"].sort_values("p_final", ascending=False)
    fns = errors[errors["kind"] == "false_negative"].sort_values("p_final", ascending=True)
    columns = [
        "kind",
        "listing_id",
        "lang",
        "product",
        "source",
        "p_final",
        "p_text",
        "has_photo",
        "photo_class",
        "photo_p",
        "kb_terms",
        "reasons",
    ]
    table = pd.concat([fps.head(n_worst), fns.head(n_worst)]).reindex(columns=columns)
    return table, _error_counts(fps, fns, threshold)


def _error_counts(fps: pd.DataFrame, fns: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """Error counts for metrics.json: per kind, language, product, and per reason."""
    reason_counts: dict[str, int] = {}
    for text in pd.concat([fps["reasons"], fns["reasons"]]):
        for reason in text.split("; "):
            reason_counts[reason] = reason_counts.get(reason, 0) + 1
    return {
        "threshold": threshold,
        "false_positives": len(fps),
        "false_negatives": len(fns),
        "fp_by_lang": {str(k): int(v) for k, v in fps["lang"].value_counts().items()},
        "fn_by_lang": {str(k): int(v) for k, v in fns["lang"].value_counts().items()},
        "fn_by_product": {str(k): int(v) for k, v in fns["product"].value_counts().items()},
        "reasons": dict(sorted(reason_counts.items())),
    }


# --------------------------------------------------------------------------------------------
# Report, plots, tracking
# --------------------------------------------------------------------------------------------


def build_report(
    frame: pd.DataFrame, threshold: float, cfg: dict[str, Any], kb: dict[str, Any] | None = None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """metrics.json content and the error table for the labelled test listings in ``frame``."""
    y = frame["label"].to_numpy(np.int64)
    p = frame["p_final"].to_numpy(np.float64)
    photo_classes = list(cfg.get("photo_positive_classes", DEFAULT_PHOTO_CLASSES))
    report: dict[str, Any] = {
        "split": "test",
        "operating_threshold": threshold,
        "bootstrap": {
            "n_boot": int(cfg.get("n_boot", 200)),
            "level": float(cfg.get("ci", 0.95)),
            "seed": int(cfg.get("seed", 0)),
            "stratified": True,
        },
        "ece_bins": int(cfg.get("ece_bins", 10)),
        "overall": group_report(y, p, cfg, threshold),
    }
    for slice_name, masks in _groups(frame).items():
        report[slice_name] = {
            group: group_report(y[mask], p[mask], cfg, threshold) for group, mask in masks.items()
        }
    report["calibration"] = {
        "ece_bins": report["ece_bins"],
        "binning": "equal-width",
        "reliability": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in metrics.reliability_table(y, p, report["ece_bins"])
        ],
    }
    report["signals"] = signal_table(y, signal_scores(frame, photo_classes), cfg)
    n_worst = int(cfg.get("n_errors", 20))
    errors, counts = error_table(frame, threshold, photo_classes, n_worst, kb)
    report["errors"] = counts
    return report, errors


def write_plots(
    frame: pd.DataFrame, report: dict[str, Any], plots_dir: Path, bins: int
) -> list[Path]:
    """CSV data for DVC plots and PNG renderings; returns the PNG paths."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plots_dir.mkdir(parents=True, exist_ok=True)
    y = frame["label"].to_numpy(np.int64)
    p = frame["p_final"].to_numpy(np.float64)
    tables: dict[str, pd.DataFrame] = {}
    if 0 < y.sum() < y.size:
        precision, recall, _ = precision_recall_curve(y, p)
        tables["pr_curve"] = pd.DataFrame({"recall": recall, "precision": precision})
        fpr, tpr, _ = roc_curve(y, p)
        tables["roc_curve"] = pd.DataFrame({"fpr": fpr, "tpr": tpr})
    tables["reliability"] = pd.DataFrame(metrics.reliability_table(y, p, bins))
    tables["pr_auc_by_group"] = _group_rows(report)
    tables["signals"] = _signal_rows(report)
    for name, table in tables.items():
        table.to_csv(plots_dir / f"{name}.csv", index=False)
    return _render_pngs(tables, plots_dir)


def _group_rows(report: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for slice_name in ("by_lang", "by_product", "by_source", "by_photo"):
        for group, entry in report[slice_name].items():
            stats = entry["pr_auc"]
            rows.append(
                {
                    "slice": slice_name,
                    "group": group,
                    "n": entry["n"],
                    "n_pos": entry["n_pos"],
                    "pr_auc": stats["value"],
                    "low": stats["low"],
                    "high": stats["high"],
                }
            )
    return pd.DataFrame(rows)


def _signal_rows(report: dict[str, Any]) -> pd.DataFrame:
    """The single-signal comparison as one table: PR-AUC and fused-minus-signal, with CIs."""
    rows = []
    for name, entry in report["signals"].items():
        diff = entry.get("fused_minus_signal", {})
        rows.append(
            {
                "signal": name,
                "pr_auc": entry["pr_auc"]["value"],
                "low": entry["pr_auc"]["low"],
                "high": entry["pr_auc"]["high"],
                "fused_minus_signal": diff.get("diff"),
                "diff_low": diff.get("low"),
                "diff_high": diff.get("high"),
            }
        )
    return pd.DataFrame(rows)


def _render_pngs(tables: dict[str, pd.DataFrame], plots_dir: Path) -> list[Path]:
    import matplotlib

    # Agg renders to files without a display or a browser, so plots work offline.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pngs = []
    for name, (x, y) in {"pr_curve": ("recall", "precision"), "roc_curve": ("fpr", "tpr")}.items():
        if name in tables:
            fig, ax = plt.subplots(figsize=(5, 4))
            ax.plot(tables[name][x], tables[name][y], drawstyle="steps-post")
            ax.set(xlabel=x, ylabel=y, title=name.replace("_", " "), xlim=(0, 1), ylim=(0, 1.02))
            pngs.append(_save(fig, plots_dir / f"{name}.png"))
    pngs.append(_reliability_png(plt, tables["reliability"], plots_dir / "reliability.png"))
    pngs.append(_groups_png(plt, tables["pr_auc_by_group"], plots_dir / "pr_auc_by_group.png"))
    return pngs


def _reliability_png(plt: Any, table: pd.DataFrame, path: Path) -> Path:
    rel = table.dropna()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.plot(rel["mean_pred"], rel["frac_pos"], marker="o", label="fused score")
    ax.set(
        xlabel="mean predicted p",
        ylabel="share really positive",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"reliability (test, {len(table)} equal-width bins)",
    )
    ax.legend()
    return _save(fig, path)


def _groups_png(plt: Any, table: pd.DataFrame, path: Path) -> Path:
    groups = table.dropna(subset=["pr_auc"]) if len(table) else table
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(groups) + 1.5))
    if len(groups):
        labels = groups["slice"].str[3:] + ":" + groups["group"].astype(str)
        err = [
            # A percentile interval need not contain its point value; matplotlib wants
            # non-negative bar lengths.
            (groups["pr_auc"] - groups["low"].fillna(groups["pr_auc"])).clip(lower=0),
            (groups["high"].fillna(groups["pr_auc"]) - groups["pr_auc"]).clip(lower=0),
        ]
        ax.errorbar(groups["pr_auc"], range(len(groups)), xerr=err, fmt="o")
        ax.set_yticks(range(len(groups)), labels)
    ax.set(xlabel="PR-AUC (bootstrap interval)", xlim=(0, 1.02), title="PR-AUC by group (test)")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def flatten_metrics(node: Any, prefix: str = "") -> dict[str, float]:
    """Nested report -> MLflow metric names (dotted, characters MLflow accepts); nulls dropped."""
    flat: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            name = re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", str(key))
            flat.update(flatten_metrics(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(node, bool) or (isinstance(node, (int, float)) and math.isfinite(node)):
        flat[prefix] = float(node)
    return flat


def _test_scores_frame(frame: pd.DataFrame, photo_classes: list[str]) -> pd.DataFrame:
    """Per-listing test scores for ``compare``: ids, slices and every score; no text."""
    base = ["listing_id", "label", "lang", "product", "source", "has_photo", "p_final", "tier"]
    extra = [c for c in frame.columns if c == "p_text" or c.startswith((IMAGE_PREFIX, KB_PREFIX))]
    out = frame[[c for c in base + extra if c in frame.columns]].copy()
    for name, scores in signal_scores(frame, photo_classes).items():
        if name != "fused":
            out[f"score_{name}_only"] = scores
    return out


def run(params_path: str | os.PathLike) -> dict[str, Any]:
    """Run the evaluate stage from a params file; returns the metrics written."""
    cfg = section(load_params(params_path), "evaluate")
    fuse_dir = resolve_path(cfg, cfg.get("fuse_dir", "models/fuse"))
    listings = load_listings(resolve_path(cfg, cfg.get("listings_dir", "data/prepared/listings")))
    fuse_record = _read_fuse_record(fuse_dir)
    scores = pd.read_parquet(fuse_dir / "scores.parquet")
    frame = test_frame(listings, scores)
    threshold = float(fuse_record["fuser"]["threshold"])
    report, errors = build_report(frame, threshold, cfg, fuse_record.get("kb"))
    metrics_path = resolve_path(cfg, cfg.get("metrics", "metrics.json"))
    plots_dir = resolve_path(cfg, cfg.get("plots_dir", "plots"))
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
    pngs = write_plots(frame, report, plots_dir, int(cfg.get("ece_bins", 10)))
    errors.to_csv(plots_dir / "errors.csv", index=False)
    photo_classes = list(cfg.get("photo_positive_classes", DEFAULT_PHOTO_CLASSES))
    scores_path = resolve_path(cfg, cfg.get("test_scores", "reports/test_scores.parquet"))
    scores_path.parent.mkdir(parents=True, exist_ok=True)
    _test_scores_frame(frame, photo_classes).to_parquet(scores_path, index=False)
    _track(cfg, report, [*pngs, plots_dir / "errors.csv", metrics_path, scores_path])
    overall = report["overall"]["pr_auc"]
    logger.info(
        "evaluate: test PR-AUC %s [%s, %s] on %d listings -> %s",
        overall["value"],
        overall["low"],
        overall["high"],
        len(frame),
        metrics_path,
    )
    return report


def _read_fuse_record(fuse_dir: Path) -> dict[str, Any]:
    path = fuse_dir / FUSE_JSON
    if not path.is_file():
        raise DataError(f"{path}: not found (run `wildml fuse` first)")
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("fit_on", {}).get("chosen") == "test":
        raise DataError(f"{path}: the fuser was fitted on the test split; refit it")
    return record


def _track(cfg: dict[str, Any], report: dict[str, Any], artifacts: list[Path]) -> None:
    if not cfg.get("track", True):
        return
    import mlflow

    from wildml.tracking import log_params_flat, start_run

    with start_run("evaluate", cfg):
        log_params_flat({k: v for k, v in cfg.items() if k not in ("experiment", "pipeline")})
        flat = list(flatten_metrics(report).items())
        for start in range(0, len(flat), 500):
            mlflow.log_metrics(dict(flat[start : start + 500]))
        for path in artifacts:
            if path.is_file():
                mlflow.log_artifact(str(path))
