"""Shared set-up for the scoring tests: tiny models trained once per session on the sample.

Holds no tests itself. The pipeline runs in-process on the bundled sample with short
settings (TF-IDF text family, frozen photo features at 64 px, few bootstrap resamples), then
``export`` builds the package every scoring test uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
_CACHE: dict[str, Path] = {}


def project_params(root: Path) -> dict:
    """A params file for a scratch project in ``root`` reading the bundled sample."""
    return {
        "base": {"seed": 13, "experiment": "test-scoring", "pipeline": "sample"},
        "prepare": {
            "out_dir": "data/prepared",
            "sources": [
                {
                    "name": "sample",
                    "kind": "listings",
                    "path": str(SAMPLE / "listings.csv"),
                    "images_root": str(SAMPLE),
                    "image_column": "images",
                },
                {
                    "name": "sample-photos",
                    "kind": "photos",
                    "path": str(SAMPLE / "photo_manifest.csv"),
                    "images_root": str(SAMPLE),
                    "columns": {"image": "image", "photo_class": "label"},
                },
            ],
            "lang_detect": {"min_chars": 12, "fallback": "und"},
            "split": {"validation": 0.2, "test": 0.25},
            "max_reject_share": 0.2,
        },
        "train_text": {
            "family": "tfidf",
            "cv_folds": 3,
            "mlflow": False,
            "baseline": False,
            "tfidf": {"c_grid": [4.0]},
        },
        "train_image": {
            "prepared_dir": "data/prepared",
            "out_dir": "models/image",
            "classes": ["ivory", "pangolin_scale", "rhino_horn", "other"],
            "class_map": {"bone": "other", "resin": "other", "horn": "other"},
            "weak_labels": True,
            "mode": "frozen",
            "image_size": 64,
            "epochs": 5,
            "batch_size": 64,
            "augment_views": 0,
            "min_photos_per_class": 3,
            "cv_folds": 2,
            "num_workers": 0,
            "num_threads": 1,
            "baseline": {"enabled": False},
        },
        "fuse": {"n_folds": 3, "track": False},
        "evaluate": {"n_boot": 20, "track": False},
        "export": {"out_dir": "models/scorer", "model_name": "test-scorer", "alias": "candidate"},
        "score": {"chunk_size": 16, "source": {"image_column": "images"}},
    }


def build_project(root: Path, mlflow_dir: Path) -> Path:
    """Run prepare → train_text → train_image → fuse → evaluate → export in ``root``."""
    from wildml import evaluate, export, fuse, prepare
    from wildml.image import train as image_train
    from wildml.text import train as text_train

    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(project_params(root)), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_dir / 'mlflow.db'}")
        patch.setenv("WILDML_ARTIFACT_ROOT", str(mlflow_dir / "artifacts"))
        patch.setenv("OMP_NUM_THREADS", "1")
        for stage in (prepare, text_train, image_train, fuse, evaluate, export):
            stage.run(params_path)
    return root


def trained_project(tmp_path_factory: pytest.TempPathFactory, mlflow_dir: Path) -> Path:
    """The scratch project, built on first use and shared by every scoring test module."""
    if "root" not in _CACHE:
        # WILDML_TEST_PROJECT reuses a project built by an earlier session (faster iteration).
        reuse = os.environ.get("WILDML_TEST_PROJECT")
        if reuse and (Path(reuse) / "models" / "scorer" / "manifest.json").is_file():
            _CACHE["root"] = Path(reuse)
        else:
            _CACHE["root"] = build_project(tmp_path_factory.mktemp("project"), mlflow_dir)
    return _CACHE["root"]


def raw_test_rows(root: Path) -> pd.DataFrame:
    """Raw rows of ``listings.csv`` that prepare put in the test split, as written."""
    from wildml.fuse import load_listings

    listings = load_listings(root / "data" / "prepared" / "listings")
    test_ids = set(listings.loc[listings["split"] == "test", "listing_id"])
    raw = pd.read_csv(SAMPLE / "listings.csv", dtype=str, keep_default_na=False)
    return raw[raw["listing_id"].isin(test_ids)].drop(columns=["label", "product"])


def cli_env() -> dict[str, str]:
    """Environment for a ``wildml`` subprocess: the venv first on PATH, one thread."""
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env
