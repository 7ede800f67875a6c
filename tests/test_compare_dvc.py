"""DVC and MLflow agree: ``dvc exp show`` and ``wildml compare`` give the same figures.

A tmp git repo holds a one-stage DVC pipeline whose stage builds small synthetic fused scores
and runs the real ``wildml.evaluate.run`` (which logs through ``wildml.tracking.start_run``,
tagging the run with ``DVC_EXP_NAME``, and writes ``metrics.json``). Two ``dvc exp run -S``
with different score strengths must then show the same PR-AUC in ``dvc exp show --json`` and
in ``wildml compare --exp``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_compare import run_main, use_store
from wildml import compare

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent

STAGE_SCRIPT = '''\
"""Synthetic fused scores from params.yaml `synth`, then the real evaluate stage."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from datasets import Dataset, DatasetDict

from wildml import evaluate

synth = yaml.safe_load(Path("params.yaml").read_text())["synth"]
generator = np.random.default_rng(0)
rows = []
for split, count in {"train": 4, "validation": 4, "test": 120}.items():
    for i in range(count):
        label = int(generator.random() < 0.35)
        rows.append({
            "listing_id": f"{split[:2]}{i:04d}", "source": "market", "text": "",
            "lang": ["en", "zh", "fr"][i % 3], "label": label,
            "product": "ivory" if label else "", "image_paths": [], "group_id": f"g{i}",
            "split": split,
        })
listings = pd.DataFrame(rows)
DatasetDict({
    split: Dataset.from_pandas(frame.drop(columns="split").reset_index(drop=True))
    for split, frame in listings.groupby("split")
}).save_to_disk("work/listings")
y = listings["label"].to_numpy()
noise = np.random.default_rng(int(synth["seed"])).normal(0, 1.2, len(y))
p_final = 1 / (1 + np.exp(-((y - 0.5) * float(synth["strength"]) + noise)))
Path("work/fuse").mkdir(parents=True, exist_ok=True)
pd.DataFrame({"listing_id": listings["listing_id"], "split": listings["split"],
              "p_final": p_final}).to_parquet("work/fuse/scores.parquet")
Path("work/fuse/fuse.json").write_text(json.dumps({"fuser": {"threshold": 0.5}}))
evaluate.run("params.yaml")
'''


def _sh(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _dvc_repo(root: Path, env: dict[str, str]) -> Path:
    repo = root / "repo"
    repo.mkdir()
    params = {
        "base": {"experiment": "dvc-agree", "seed": 0},
        "synth": {"strength": 2.0, "seed": 1},
        "evaluate": {
            "listings_dir": "work/listings",
            "fuse_dir": "work/fuse",
            "metrics": "metrics.json",
            "plots_dir": "work/plots",
            "test_scores": "work/test_scores.parquet",
            # Enough resamples that every interval brackets its point value (evaluate's
            # PR-AUC-by-group plot cannot draw one that does not).
            "n_boot": 100,
            "n_errors": 2,
            "track": True,
        },
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "stage.py").write_text(STAGE_SCRIPT)
    stage = {
        "cmd": "python stage.py",
        "deps": ["stage.py"],
        "params": ["synth", "evaluate"],
        "metrics": [{"metrics.json": {"cache": False}}],
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": stage}}))
    (repo / ".gitignore").write_text("work/\n")
    _sh(["git", "init", "-q"], repo, env)
    _sh(["dvc", "init", "-q"], repo, env)
    _sh(["dvc", "config", "core.analytics", "false"], repo, env)
    _sh(["git", "add", "-A"], repo, env)
    _sh(["git", "commit", "-qm", "pipeline"], repo, env)
    return repo


def _exp_metrics(node: Any, found: dict[str, dict]) -> dict[str, dict]:
    """Walk ``dvc exp show --json`` output: experiment name -> metrics.json content."""
    if isinstance(node, dict):
        name, data = node.get("name"), node.get("data")
        if name and isinstance(data, dict):
            metrics = (data.get("metrics") or {}).get("metrics.json", {}).get("data")
            if metrics:
                found[name] = metrics
        for value in node.values():
            _exp_metrics(value, found)
    elif isinstance(node, list):
        for value in node:
            _exp_metrics(value, found)
    return found


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    if shutil.which("git") is None or not (VENV_BIN / "dvc").exists():
        pytest.skip("git or dvc missing")
    root = tmp_path_factory.mktemp("dvc")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "WILDML_ARTIFACT_ROOT": str(root / "artifacts"),
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "OMP_NUM_THREADS": "1",
        "GIT_AUTHOR_NAME": "wildml test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "wildml test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    env.pop("DVC_EXP_NAME", None)
    repo = _dvc_repo(root, env)
    for name, strength in (("exp-weak", 1.0), ("exp-strong", 4.0)):
        _sh(["dvc", "exp", "run", "-q", "-n", name, "-S", f"synth.strength={strength}"], repo, env)
    shown = json.loads(_sh(["dvc", "exp", "show", "--json"], repo, env))
    return {"root": root, "dvc": _exp_metrics(shown, {})}


def test_dvc_exp_show_and_compare_agree(experiments, monkeypatch, tmp_path):
    use_store(monkeypatch, experiments["root"])
    dvc = experiments["dvc"]
    assert {"exp-weak", "exp-strong"} <= set(dvc)
    names = ["exp-weak", "exp-strong"]
    comparison = compare.run_compare(
        dvc_experiments=names, experiment="dvc-agree", use_champion=False, n_boot=10
    )
    table = comparison.table.set_index(["run", "group", "metric"])
    for run in comparison.runs:
        name = run.tags[compare.DVC_TAG]
        for metric in ("pr_auc", "recall", "f1", "ece"):
            ours = table.loc[(run.name, "overall", metric), "value"]
            assert ours == pytest.approx(dvc[name]["overall"][metric]["value"], abs=1e-12)
        zh = table.loc[(run.name, "lang:zh", "pr_auc"), "value"]
        assert zh == pytest.approx(dvc[name]["by_lang"]["zh"]["pr_auc"]["value"], abs=1e-12)
    weak, strong = (dvc[n]["overall"]["pr_auc"]["value"] for n in names)
    assert strong > weak

    markdown = tmp_path / "cmp.md"
    args = ["compare", "--exp", "exp-weak", "--exp", "exp-strong", "--experiment", "dvc-agree"]
    args += ["--no-champion", "--no-plots", "--markdown", str(markdown), "--n-boot", "10"]
    assert run_main(monkeypatch, args) == 0
    text = markdown.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| overall | PR-AUC |"))
    assert f"| {weak:.3f} |" in row and f"| {strong:.3f} |" in row
