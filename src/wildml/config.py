"""Reading ``params.yaml``: one section per stage, shared keys in ``base``."""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from wildml.errors import ConfigError

DEFAULT_PARAMS = "params.yaml"


def load_params(params_path: str | os.PathLike = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read a params file and return its mapping.

    Parameters
    ----------
    params_path
        Path to a YAML file; relative paths inside it are resolved against its folder by
        :func:`resolve_path`.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML, or is not a mapping.
    """
    path = Path(params_path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the folder holding it)")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    params.setdefault("base", {})
    params["base"]["_params_dir"] = str(path.resolve().parent)
    return params


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Return a copy of one stage's section merged over ``base`` (stage keys win)."""
    if name not in params:
        raise ConfigError(f"params file has no '{name}' section")
    merged = copy.deepcopy(params.get("base", {}))
    merged.update(copy.deepcopy(params[name] or {}))
    return merged


def require(cfg: dict[str, Any], key: str, where: str) -> Any:
    """Return ``cfg[key]`` or raise a ConfigError naming the section and key."""
    if key not in cfg or cfg[key] is None:
        raise ConfigError(f"params: '{where}.{key}' is required")
    return cfg[key]


def resolve_path(cfg: dict[str, Any], value: str | os.PathLike) -> Path:
    """Resolve a path from params against the folder of the params file."""
    path = Path(os.path.expanduser(str(value)))
    if path.is_absolute():
        return path
    return Path(cfg.get("_params_dir", ".")) / path


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """Return the project's root: the nearest folder above ``start`` holding pyproject.toml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "wildml").is_dir():
            return folder
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return here
