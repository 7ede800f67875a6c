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
# MLflow imports from it). They are not listed, since they appear after export; instead each
# must compile from its hashed source (see :func:`bytecode_problems`), because Python runs a
# cache in place of its source.
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
    """Relative POSIX paths of every file under ``package_dir`` except the manifest.

    Bytecode caches (``*.pyc`` directly inside a ``__pycache__`` folder) are left out and
    checked by :func:`bytecode_problems`; anything else in such a folder is listed, and so is
    a link to a folder (walked into by nothing, it would otherwise go unseen).
    """
    found = []
    for folder, dirs, files in os.walk(package_dir):
        here = Path(folder)
        found += [
            (here / d).relative_to(package_dir).as_posix() for d in dirs if (here / d).is_symlink()
        ]
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink())
        in_cache = here.name in _IGNORED_DIRS
        for name in sorted(files):
            if in_cache and name.endswith(_IGNORED_SUFFIXES):
                continue
            rel = (here / name).relative_to(package_dir).as_posix()
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
    files = record.get("files") if isinstance(record, dict) else None
    well_formed = isinstance(files, dict) and all(
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("bytes"), int)
        for entry in files.values()
    )
    if not well_formed or record.get("format") != MANIFEST_FORMAT:
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
    if not problems:
        problems = bytecode_problems(package_dir, listed)
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


def bytecode_problems(package_dir: Path, listed: dict[str, Any]) -> list[str]:
    """Bytecode caches in the package that are not a plain compile of a listed source.

    A cache is loaded instead of its source whenever its header matches, so one written by
    hand could run code the manifest never saw. Each is compared, as a code object, with a
    fresh compile of its (already verified) source; a cache for another Python is refused.
    """
    import importlib.util

    problems = []
    for pyc in sorted(package_dir.rglob("__pycache__/*.pyc")):
        rel = pyc.relative_to(package_dir).as_posix()
        data = pyc.read_bytes()
        if data[:4] != importlib.util.MAGIC_NUMBER:
            # Never loaded by this Python, but nothing export writes either.
            problems.append(f"extra file {rel} (bytecode for another Python)")
            continue
        try:
            source = Path(importlib.util.source_from_cache(str(pyc)))
        except ValueError:
            problems.append(f"extra file {rel}")
            continue
        source_rel = source.relative_to(package_dir).as_posix() if source.is_file() else ""
        if source_rel not in listed or not _compiles_to(source, data[16:], pyc.name):
            problems.append(f"changed bytecode cache {rel}")
    return problems


def _compiles_to(source: Path, body: bytes, cache_name: str) -> bool:
    """True when ``body`` (a cache without its header) equals a fresh compile of ``source``."""
    import marshal

    try:
        cached = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return False
    optimize = 2 if ".opt-2." in cache_name else 1 if ".opt-1." in cache_name else 0
    filename = getattr(cached, "co_filename", str(source))
    fresh = compile(source.read_bytes(), filename, "exec", dont_inherit=True, optimize=optimize)
    return cached == fresh
