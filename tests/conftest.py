"""Shared fixtures: an isolated MLflow store per test and small hand-made listings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> Path:
    """One sqlite store for the session: creating its tables takes seconds."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture(autouse=True)
def _isolated_mlflow(mlflow_store, monkeypatch):
    """Point MLflow at the test store so tests never touch the project's database."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_store / 'mlflow.db'}")
    monkeypatch.setenv("WILDML_ARTIFACT_ROOT", str(mlflow_store / "artifacts"))
    yield


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so randomised inputs are the same on every run."""
    return np.random.default_rng(1234)


def write_photo(path: Path, size: tuple[int, int] = (64, 64), color=(200, 190, 170), seed=0):
    """Write a small JPEG with some structure, so perceptual hashes differ between seeds."""
    from PIL import Image

    generator = np.random.default_rng(seed)
    pixels = np.clip(
        np.array(color, dtype=float) + generator.normal(0, 40, (size[1], size[0], 3)), 0, 255
    ).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def requires_shared_data(*names: str):
    """Skip a test when the shared real-data folders it needs are absent."""
    missing = [name for name in names if not (SHARED_DATA / name).exists()]
    return pytest.mark.skipif(
        bool(missing), reason=f"real data {missing} not present under {SHARED_DATA}"
    )
