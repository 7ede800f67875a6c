"""One way for every stage to open an MLflow run: local sqlite store, offline, tagged.

The tracking store is ``sqlite:///<repo>/mlflow.db`` unless ``MLFLOW_TRACKING_URI`` is set.
Each experiment gets an explicit artifact location beside the database, so runs never depend
on the working directory a stage was started from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wildml.config import repo_root

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "wildml-sample"


def tracking_uri(root: Path | None = None) -> str:
    """Return the tracking URI: ``MLFLOW_TRACKING_URI`` or the project's sqlite file."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    root = root or repo_root()
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def artifact_root(root: Path | None = None) -> Path:
    """Folder that holds the artifacts of every experiment of this project."""
    env = os.environ.get("WILDML_ARTIFACT_ROOT")
    if env:
        return Path(env).resolve()
    return ((root or repo_root()) / "mlartifacts").resolve()


def _quiet_environment() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # Imports of optional flavours cost seconds and are never needed here.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def git_commit(root: Path | None = None) -> str | None:
    """Return the current git commit of the project, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root or repo_root(),
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def git_dirty(root: Path | None = None) -> bool | None:
    """True when tracked files differ from the commit, None outside git."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root or repo_root(),
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return bool(out.stdout.strip())


def dvc_experiment_name() -> str | None:
    """Name of the DVC experiment this process runs in, when ``dvc exp run`` started it."""
    return os.environ.get("DVC_EXP_NAME") or None


def ensure_experiment(name: str, root: Path | None = None) -> str:
    """Create the experiment with an explicit artifact location if needed; return its id."""
    import mlflow

    _quiet_environment()
    mlflow.set_tracking_uri(tracking_uri(root))
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = artifact_root(root) / name
    location.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(name, artifact_location=location.as_uri())


@contextlib.contextmanager
def start_run(
    stage: str,
    cfg: dict[str, Any] | None = None,
    *,
    experiment: str | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[Any]:
    """Open an MLflow run for one stage, tagged with git commit and DVC experiment name.

    Parameters
    ----------
    stage
        Stage name (``prepare``, ``train_text`` ...), recorded as the run name and a tag.
    cfg
        The stage's merged params section; ``cfg['experiment']`` names the experiment.
    experiment
        Overrides the experiment named in ``cfg``.
    tags
        Extra tags for the run.

    Yields
    ------
    mlflow.ActiveRun
    """
    import mlflow

    cfg = cfg or {}
    root = repo_root()
    name = experiment or cfg.get("experiment") or DEFAULT_EXPERIMENT
    experiment_id = ensure_experiment(name, root)
    run_tags = {"wildml.stage": stage, "wildml.pipeline": str(cfg.get("pipeline", "sample"))}
    commit = git_commit(root)
    if commit:
        run_tags["mlflow.source.git.commit"] = commit
        run_tags["git_commit"] = commit
    dirty = git_dirty(root)
    if dirty is not None:
        run_tags["git_dirty"] = str(dirty).lower()
    exp_name = dvc_experiment_name()
    if exp_name:
        run_tags["dvc_experiment"] = exp_name
    run_tags.update(tags or {})
    with mlflow.start_run(experiment_id=experiment_id, run_name=stage, tags=run_tags) as run:
        logger.info("MLflow run %s (%s) in experiment %s", run.info.run_id, stage, name)
        yield run


def log_params_flat(params: dict[str, Any], prefix: str = "") -> None:
    """Log a nested params mapping as dotted MLflow params (values cut to MLflow's limit)."""
    import mlflow

    flat: dict[str, str] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for sub_key, value in node.items():
                if str(sub_key).startswith("_"):
                    continue
                walk(value, f"{key}.{sub_key}" if key else str(sub_key))
        else:
            flat[key] = str(node)[:6000]

    walk(params, prefix)
    items = list(flat.items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start : start + 100]))
