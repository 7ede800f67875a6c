"""The scoring package's manifest: a sha256 for every file, checked before anything loads.

``manifest.json`` lists every file of the package (relative POSIX path, size, sha256) plus
provenance (wildml and dependency versions, MLflow run id, git commit). A package whose files
differ from its manifest in any way — a changed byte, a missing file, an extra file — is
refused with :class:`wildml.errors.PackageIntegrityError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from wildml.errors import ConfigError, PackageIntegrityError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
# Python writes bytecode caches beside imported sources (the package's ``code/`` folder when
# MLflow imports from it); they are derived from the hashed sources and are not listed.
_IGNORED_DIRS = {"__pycache__"}
_IGNORED_SUFFIXES = (".pyc",)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def package_files(package_dir: Path) -> list[str]:
    """Relative POSIX paths of every file under ``package_dir`` except the manifest."""
    found = []
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for name in sorted(files):
            if name.endswith(_IGNORED_SUFFIXES):
                continue
            rel = (Path(folder) / name).relative_to(package_dir).as_posix()
            if rel != MANIFEST:
                found.append(rel)
    return sorted(found)


def write_manifest(package_dir: str | os.PathLike, provenance: dict[str, Any]) -> Path:
    """Hash every file of the package and write ``manifest.json``; returns its path."""
    package_dir = Path(package_dir)
    files = {
        rel: {
            "sha256": sha256_file(package_dir / rel),
            "bytes": (package_dir / rel).stat().st_size,
        }
        for rel in package_files(package_dir)
    }
    record = {"format": MANIFEST_FORMAT, **provenance, "files": files}
    path = package_dir / MANIFEST
    path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_manifest(package_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json``; a missing or unreadable one is an integrity error."""
    path = Path(package_dir) / MANIFEST
    if not path.is_file():
        raise PackageIntegrityError(
            f"{path}: missing; {package_dir} is not an exported scoring package "
            "(run `wildml export`)"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PackageIntegrityError(f"{path}: not readable JSON: {err}") from err
    if record.get("format") != MANIFEST_FORMAT or not isinstance(record.get("files"), dict):
        raise PackageIntegrityError(f"{path}: not a wildml manifest (format {MANIFEST_FORMAT})")
    return record


def verify_package(package_dir: str | os.PathLike) -> dict[str, Any]:
    """Check every file of the package against its manifest; return the manifest.

    Raises
    ------
    PackageIntegrityError
        Naming the first missing, extra or changed file (and how many problems there are).
    """
    package_dir = Path(package_dir)
    if not package_dir.is_dir():
        raise ConfigError(
            f"{package_dir}: scoring package folder not found (run `wildml export`, or pass "
            "--package)"
        )
    record = read_manifest(package_dir)
    listed = record["files"]
    present = set(package_files(package_dir))
    problems = [f"missing file {rel}" for rel in sorted(set(listed) - present)]
    problems += [f"extra file {rel}" for rel in sorted(present - set(listed))]
    for rel in sorted(set(listed) & present):
        path = package_dir / rel
        expected = listed[rel]
        if path.stat().st_size != expected["bytes"] or sha256_file(path) != expected["sha256"]:
            problems.append(f"changed file {rel}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PackageIntegrityError(
            f"{package_dir}: package does not match its manifest: {problems[0]}{more}; "
            "re-export it or fetch an untouched copy"
        )
    logger.debug("%s: %d files match the manifest", package_dir, len(listed))
    return record


def package_digest(record: dict[str, Any]) -> str:
    """One sha256 over the manifest's file hashes: identifies the package's exact content."""
    digest = hashlib.sha256()
    for rel, entry in sorted(record["files"].items()):
        digest.update(f"{rel}\0{entry['sha256']}\n".encode())
    return digest.hexdigest()
