"""``wildml export``: a package that verifies itself, describes itself and is registered."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from test_score_support import REPO, cli_env, trained_project
from wildml.errors import PackageIntegrityError
from wildml.score_manifest import package_digest, sha256_file, verify_package, write_manifest


def make_folder(root: Path) -> Path:
    (root / "artifacts" / "fuse").mkdir(parents=True)
    (root / "artifacts" / "fuse" / "fuse.json").write_text('{"a": 1}', encoding="utf-8")
    (root / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    write_manifest(root, {"mlflow_run_id": "r1"})
    return root


# --------------------------------------------------------------------------------------------
# Manifest (no models needed)
# --------------------------------------------------------------------------------------------


def test_untouched_folder_verifies(tmp_path):
    record = verify_package(make_folder(tmp_path))
    assert set(record["files"]) == {"MLmodel", "artifacts/fuse/fuse.json"}
    assert record["mlflow_run_id"] == "r1"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda root: (root / "MLmodel").write_text("flavors: {x: 1}\n"), "changed file MLmodel"),
        (lambda root: (root / "artifacts/fuse/fuse.json").unlink(), "missing file artifacts"),
        (lambda root: (root / "artifacts/evil.py").write_text("x"), "extra file artifacts/evil"),
        (lambda root: (root / "manifest.json").unlink(), "manifest.json: missing"),
    ],
    ids=["changed", "missing", "extra", "no-manifest"],
)
def test_tampered_folder_is_refused(tmp_path, tamper, message):
    root = make_folder(tmp_path)
    tamper(root)
    with pytest.raises(PackageIntegrityError, match=message):
        verify_package(root)


def test_bytecode_caches_do_not_break_verification(tmp_path):
    import py_compile

    (tmp_path / "code").mkdir()
    source = tmp_path / "code" / "x.py"
    source.write_text("VALUE = 1\n", encoding="utf-8")
    root = make_folder(tmp_path)
    py_compile.compile(str(source))  # what Python writes when it imports the package's code
    verify_package(root)
    (root / "code" / "__pycache__" / "y.cpython-311.pyc").write_bytes(b"\0")
    with pytest.raises(PackageIntegrityError, match=r"y\.cpython-311\.pyc"):
        verify_package(root)


def test_digest_changes_with_content(tmp_path):
    first = package_digest(verify_package(make_folder(tmp_path / "a")))
    root = tmp_path / "b"
    make_folder(root)
    (root / "MLmodel").write_text("flavors: {y: 2}\n")
    write_manifest(root, {})
    assert package_digest(verify_package(root)) != first


# --------------------------------------------------------------------------------------------
# The exported package
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_store) -> Path:
    return trained_project(tmp_path_factory, mlflow_store)


@pytest.fixture(scope="module")
def package(project) -> Path:
    return project / "models" / "scorer"


@pytest.mark.slow
def test_package_holds_safe_formats_only(package):
    manifest = json.loads((package / "manifest.json").read_text())
    files = list(manifest["files"])
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".pt", ".pth"))]
    assert "artifacts/image/model.safetensors" in files
    assert "artifacts/fuse/stacker.skops" in files
    assert any(f.startswith("artifacts/kb/") and f.endswith(".yaml") for f in files)
    assert any(f.startswith("code/wildml/") for f in files)
    assert manifest["wildml_version"] and manifest["mlflow_run_id"]
    assert manifest["packages"]["scikit-learn"]
    assert manifest["reproduction_check"]["max_abs_diff"] <= 1e-6
    mlmodel = (package / "MLmodel").read_text()
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel
    assert not (package / "python_model.pkl").exists()


@pytest.mark.slow
def test_model_card_reports_gaps_and_intervals(package, project):
    card = (package / "MODEL_CARD.md").read_text(encoding="utf-8")
    metrics = json.loads((project / "metrics.json").read_text())
    overall = metrics["overall"]["pr_auc"]
    assert f"{overall['value']:.3f} [{overall['low']:.3f}, {overall['high']:.3f}]" in card
    for lang in metrics["by_lang"]:
        assert f"| {lang} |" in card
    assert "no real pangolin-scale or rhino-horn photos" in card
    assert "Intended use" in card and "Known limitations" in card
    assert "Knowledge-base terms per language" in card and "| pangolin_scale |" in card


@pytest.mark.slow
def test_package_is_registered_with_alias(package, project):
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias("test-scorer", "candidate")
    manifest = json.loads((package / "manifest.json").read_text())
    assert version.run_id == manifest["mlflow_run_id"]
    assert version.tags["wildml.package_digest"] == package_digest(manifest)
    # the figures the package was exported with tie the version to its evaluate run
    assert manifest["evaluated_metrics_sha256"] == sha256_file(project / "metrics.json")
    assert version.tags["wildml.metrics_sha256"] == manifest["evaluated_metrics_sha256"]
    assert version.tags["wildml.export_run_id"] == manifest["mlflow_run_id"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "tamper",
    ["changed", "missing", "extra"],
)
def test_tampered_package_is_refused_by_every_loader(package, tmp_path, tamper):
    import mlflow.pyfunc

    import wildml

    copy = tmp_path / "scorer"
    shutil.copytree(package, copy)
    target = copy / "artifacts" / "fuse" / "calibrator.skops"
    if tamper == "changed":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    elif tamper == "missing":
        target.unlink()
    else:
        (copy / "artifacts" / "text" / "extra.skops").write_bytes(b"x")
    name = "extra.skops" if tamper == "extra" else "calibrator.skops"
    with pytest.raises(PackageIntegrityError, match=f"{tamper} file .*{name}"):
        wildml.load_scorer(copy)
    with pytest.raises(PackageIntegrityError, match=name):
        mlflow.pyfunc.load_model(str(copy))


@pytest.mark.slow
def test_cli_refuses_a_tampered_package_with_exit_code_4(package, tmp_path, monkeypatch):
    from wildml import cli

    copy = tmp_path / "scorer"
    shutil.copytree(package, copy)
    (copy / "MODEL_CARD.md").write_text("edited", encoding="utf-8")
    listings = tmp_path / "l.csv"
    listings.write_text("listing_id,text\na,ivory bangle\n", encoding="utf-8")
    out = tmp_path / "q.csv"
    argv = ["wildml", "score", str(listings), "--package", str(copy), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 4
    assert not out.exists()


@pytest.mark.slow
def test_mlflow_models_predict_with_local_env(package, tmp_path):
    frame = pd.DataFrame(
        {
            "listing_id": ["a", "b"],
            "text": ["genuine ivory bangle, old, message me", "blue phone case"],
            "lang": ["en", "en"],
        }
    )
    payload = tmp_path / "input.json"
    payload.write_text(json.dumps({"dataframe_split": frame.to_dict(orient="split")}))
    out = tmp_path / "pred.json"
    result = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "mlflow"),
            "models",
            "predict",
            "-m",
            str(package),
            "-i",
            str(payload),
            "-t",
            "json",
            "-o",
            str(out),
            "--env-manager",
            "local",
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = json.loads(out.read_text())["predictions"]
    by_id = {row["listing_id"]: row for row in predictions}
    assert by_id["a"]["p_final"] > by_id["b"]["p_final"]
    assert by_id["a"]["status"] == "scored"


@pytest.mark.slow
def test_export_refuses_when_kb_changed_since_fuse(project, tmp_path):
    from wildml.errors import DataError
    from wildml.export import stage_artifacts
    from wildml.kb import default_kb_dir

    fuse_dir = tmp_path / "fuse"
    shutil.copytree(project / "models" / "fuse", fuse_dir)
    kb_dir = tmp_path / "kb"
    shutil.copytree(default_kb_dir(), kb_dir)
    record = json.loads((fuse_dir / "fuse.json").read_text())
    record["kb"] = {"path": str(kb_dir), "fingerprint": "0" * 16}
    (fuse_dir / "fuse.json").write_text(json.dumps(record))
    cfg = {
        "_params_dir": str(project),
        "text_dir": "models/text",
        "image_dir": "models/image",
        "fuse_dir": str(fuse_dir),
        "top_text_features": 5,
        "image_batch_size": 8,
        "photo_positive_classes": ["ivory"],
        "_prepare": {},
    }
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(DataError, match="knowledge base changed"):
        stage_artifacts(cfg, staging)


def test_model_card_names_the_languages_and_products_without_training_offers():
    from wildml.export import training_coverage

    listings = pd.DataFrame(
        {
            "split": ["train", "train", "train", "test"],
            "label": [1, 1, 0, 1],
            "lang": ["en", "en", "th", "zh"],
            "product": ["ivory", "ivory", "", "pangolin_scale"],
        }
    )
    lines = training_coverage(listings)
    assert lines[0].startswith("- Positive (offer) listings")
    assert "en 2" in lines[0] and "ivory 2" in lines[0]
    gaps = lines[1]
    for missing in ("zh", "vi", "th", "pangolin_scale", "rhino_horn"):
        assert missing in gaps
    assert "ivory" not in gaps.split(".")[0].split(": ")[1].split(", ")
