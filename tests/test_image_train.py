"""The train_image stage on a tiny hand-made prepared photo set."""

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

os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")
from PIL import Image, ImageDraw  # noqa: E402

from wildml.image import ImageModel  # noqa: E402

CLASSES = ["ivory", "pangolin_scale", "rhino_horn", "other"]
# Class -> (background, pattern colour): easy to tell apart with frozen ImageNet features.
LOOKS = {
    "ivory": ((235, 225, 200), (190, 170, 130)),
    "bone": ((60, 60, 70), (200, 200, 210)),
    "ceramic": ((40, 90, 200), (250, 250, 250)),
    "other": ((30, 150, 60), (240, 200, 20)),
}


def _photo(path: Path, look: str, seed: int) -> str:
    rng = np.random.default_rng(seed)
    background, ink = LOOKS[look]
    image = Image.new("RGB", (72, 72), background)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.integers(0, 60, 2)
        if look in ("ivory", "bone"):
            draw.line([(x, 0), (x + 8, 72)], fill=ink, width=3)
        else:
            draw.ellipse([x, y, x + 12, y + 12], fill=ink)
    image.save(path, "JPEG", quality=92)
    return str(path)


def _row(path: str, split: str, **fields) -> dict:
    row = {
        "image_path": path,
        "listing_id": "",
        "source": "test",
        "photo_class": "",
        "listing_label": -1,
        "listing_product": "",
        "width": 72,
        "height": 72,
        "phash": "",
        "group_id": path,
        "split": split,
    }
    row.update(fields)
    return row


def build_prepared(root: Path, *, n_per_class: int = 6) -> Path:
    """Manifest photos (ivory/bone/ceramic) and listing photos (positive and negative)."""
    photos_dir = root / "photos_src"
    photos_dir.mkdir(parents=True)
    rows, listings = [], []
    counter = 0
    for split, n in (("train", n_per_class), ("validation", 2), ("test", 2)):
        for look in ("ivory", "bone", "ceramic"):
            for _ in range(n):
                counter += 1
                path = _photo(photos_dir / f"m{counter}.jpg", look, counter)
                rows.append(_row(path, split, photo_class=look, source="manifest"))
        for k in range(n // 2 + 1):
            for label, look in ((1, "ivory"), (0, "other")):
                listing_id = f"{split}-{label}-{k}"
                listings.append({"listing_id": listing_id, "split": split})
                for _ in range(2):
                    counter += 1
                    path = _photo(photos_dir / f"l{counter}.jpg", look, counter)
                    rows.append(
                        _row(
                            path,
                            split,
                            listing_id=listing_id,
                            listing_label=label,
                            listing_product="ivory" if label else "",
                            group_id=listing_id,
                        )
                    )
        listings.append({"listing_id": f"{split}-nophoto", "split": split})
    frame = pd.DataFrame(rows)
    out = root / "data" / "prepared"
    datasets.DatasetDict(
        {
            split: datasets.Dataset.from_pandas(part.reset_index(drop=True))
            for split, part in frame.groupby("split")
        }
    ).save_to_disk(str(out / "photos"))
    lframe = pd.DataFrame(listings)
    datasets.DatasetDict(
        {
            split: datasets.Dataset.from_pandas(part.reset_index(drop=True))
            for split, part in lframe.groupby("split")
        }
    ).save_to_disk(str(out / "listings"))
    return out


def write_params(root: Path, **overrides) -> Path:
    section = {
        "prepared_dir": "data/prepared",
        "out_dir": "models/image",
        "classes": CLASSES,
        "class_map": {"bone": "other", "ceramic": "other"},
        "weak_labels": True,
        "mode": "frozen",
        "image_size": 64,
        "epochs": 25,
        "batch_size": 8,
        "lr": 0.01,
        "augment_views": 0,
        "min_photos_per_class": 3,
        "cv_folds": 2,
        "num_workers": 0,
        "num_threads": 1,
        "baseline": {"enabled": True, "epochs": 1, "image_size": 32, "max_steps": 2},
    }
    section.update(overrides)
    params = {"base": {"seed": 3, "experiment": "test-image"}, "train_image": section}
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


@pytest.fixture()
def mlflow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("WILDML_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the real CLI command once; the tests below read what it wrote."""
    from typer.testing import CliRunner

    from wildml.cli import app

    root = tmp_path_factory.mktemp("image")
    build_prepared(root)
    params = write_params(root)
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "WILDML_ARTIFACT_ROOT": str(root / "mlartifacts"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = CliRunner().invoke(app, ["train-image", "--params", str(params)])
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root / "models" / "image"


@pytest.mark.slow
def test_head_loss_falls_and_metrics_are_written(trained: Path) -> None:
    config = json.loads((trained / "config.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())

    losses = config["train_loss"]["head_loss"]
    assert losses[-1] < 0.5 * losses[0]
    for split in ("validation", "test"):
        assert metrics[split]["balanced_accuracy"] >= 0.6
        assert set(metrics[split]["recall"]) == set(CLASSES)
        assert metrics[split]["bone_as_ivory_rate"] is not None
        assert "ivory_recall" in metrics[split]
        assert "balanced_accuracy" in metrics["baseline"][split]
    assert (trained / "confusion_matrix.png").stat().st_size > 1000


@pytest.mark.slow
def test_classes_without_photos_are_reported_and_kept(trained: Path) -> None:
    config = json.loads((trained / "config.json").read_text())
    photo_scores = pd.read_parquet(trained / "photo_scores.parquet")

    assert config["missing_classes"] == ["pangolin_scale", "rhino_horn"]
    assert config["class_counts"]["pangolin_scale"] == 0
    assert config["class_counts"]["other"] > 0
    assert [f"p_{c}" for c in CLASSES] == [c for c in photo_scores if c.startswith("p_")]
    assert (photo_scores["p_rhino_horn"] == 0).all()


@pytest.mark.slow
def test_scores_cover_every_photo_and_listing(trained: Path) -> None:
    photos = pd.read_parquet(trained / "photo_scores.parquet")
    listings = pd.read_parquet(trained / "listing_scores.parquet")

    assert photos["oof"].sum() > 0
    assert not photos.loc[photos["split"] == "train", "p_ivory"].isna().any()
    nophoto = listings[listings["listing_id"].str.endswith("nophoto")]
    assert len(nophoto) == 3 and nophoto["img_p_ivory"].isna().all()
    positive = listings[listings["listing_id"] == "test-1-0"].iloc[0]
    expected = photos.loc[photos["listing_id"] == "test-1-0", "p_ivory"].max()
    assert positive["n_photos"] == 2 and positive["img_p_ivory"] == pytest.approx(expected)


@pytest.mark.slow
def test_saved_model_reloads_in_fresh_process_with_identical_outputs(
    trained: Path, tmp_path: Path
) -> None:
    photos = pd.read_parquet(trained / "photo_scores.parquet")
    test_rows = photos[photos["split"] == "test"]
    paths_file = tmp_path / "paths.json"
    paths_file.write_text(json.dumps(test_rows["image_path"].tolist()))
    out = tmp_path / "probs.npy"
    code = (
        "import json, sys, numpy as np; from wildml.image import ImageModel;"
        f"m = ImageModel.load({str(trained)!r});"
        f"r = m.predict(json.load(open({str(paths_file)!r})), batch_size=3);"
        f"np.save({str(out)!r}, np.hstack([r.probs, r.embeddings]))"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )

    fresh = np.load(out)
    here = ImageModel.load(trained).predict(test_rows["image_path"].tolist(), batch_size=3)
    assert np.array_equal(fresh, np.hstack([here.probs, here.embeddings]))
    stored = test_rows[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(here.probs, stored, atol=1e-6)


@pytest.mark.slow
def test_finetune_mode_runs_one_step_on_cpu(tmp_path: Path, mlflow_env: None) -> None:
    from wildml.image.train import run

    build_prepared(tmp_path, n_per_class=3)
    params = write_params(
        tmp_path,
        mode="finetune",
        epochs=1,
        max_steps=1,
        finetune_blocks=1,
        baseline={"enabled": False},
        min_photos_per_class=2,
    )

    metrics = run(params)

    config = json.loads((tmp_path / "models/image/config.json").read_text())
    assert len(config["train_loss"]["finetune_loss"]) == 1
    assert config["mode"] == "finetune" and config["finetune_blocks"] == 1
    assert "baseline" not in metrics
    model = ImageModel.load(tmp_path / "models/image")
    photo = sorted((tmp_path / "photos_src").iterdir())[0]
    assert model.predict([photo]).status == ["ok"]


@pytest.mark.slow
def test_weak_labels_off_trains_on_manifest_photos_only(tmp_path: Path, mlflow_env: None) -> None:
    from wildml.image.train import run

    build_prepared(tmp_path, n_per_class=3)
    params = write_params(
        tmp_path, weak_labels=False, epochs=2, min_photos_per_class=2, baseline={"enabled": False}
    )

    run(params)

    photos = pd.read_parquet(tmp_path / "models/image/photo_scores.parquet")
    assert set(photos.loc[photos["listing_id"] != "", "label"]) == {""}
    assert set(photos.loc[photos["listing_id"] == "", "label_source"]) == {"manifest"}
