"""Turning ``wildml score`` options and the ``score`` params section into a scoring job."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from wildml.config import load_params, resolve_path
from wildml.errors import ConfigError
from wildml.score_stream import ScoreJob, score_inputs

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 500


def parse_columns(text: str) -> dict[str, str]:
    """``field=column,field=column`` into a mapping; raise ConfigError on a malformed pair."""
    from wildml.contract import LISTING_FIELDS

    known = {*LISTING_FIELDS, "images"}
    mapping: dict[str, str] = {}
    for pair in (part.strip() for part in text.split(",")):
        if not pair:
            continue
        field_name, sep, column = pair.partition("=")
        if not sep or not field_name.strip() or not column.strip():
            raise ConfigError(f"--columns: {pair!r} is not field=column")
        if field_name.strip() not in known:
            raise ConfigError(
                f"--columns: {field_name.strip()!r} is not a listing field; known: "
                f"{', '.join(sorted(known))}"
            )
        mapping[field_name.strip()] = column.strip()
    return mapping


def _score_section(params: Path | None) -> dict[str, Any]:
    """The ``score`` section of a params file, its types checked, its paths made absolute."""
    if params is None:
        return {}
    loaded = load_params(params)
    section = loaded.get("score") or {}
    _expect(section, dict, f"{params}: score")
    cfg = dict(section)
    cfg["_params_dir"] = loaded["base"]["_params_dir"]
    _expect(cfg.get("source") or {}, dict, f"{params}: score.source")
    source = dict(cfg.get("source") or {})
    for key in ("columns", "defaults", "image_table"):
        _expect(source.get(key) or {}, dict, f"{params}: score.source.{key}")
    table = dict(source.get("image_table") or {})
    if table.get("path"):
        # Paths in a params file are relative to that file, like images_root beside it.
        table["path"] = str(resolve_path(cfg, str(table["path"])))
        source["image_table"] = table
    if source.get("delimiter") is not None:
        source["delimiter"] = _one_char(
            str(source["delimiter"]), f"{params}: score.source.delimiter"
        )
    cfg["source"] = source
    _expect(cfg.get("report") or {}, dict, f"{params}: score.report")
    return cfg


def _expect(value: Any, kind: type, where: str) -> None:
    if not isinstance(value, kind):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}: {value!r}")


def _one_char(delimiter: str, where: str) -> str:
    delimiter = "\t" if delimiter in ("\\t", "tab") else delimiter
    if len(delimiter) != 1:
        raise ConfigError(f"{where} must be one character, got {delimiter!r}")
    return delimiter


def _as_int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a whole number, got {value!r}") from None


def build_job(
    *,
    inputs: list[Path],
    package: Path,
    out: Path,
    images_root: Path | None = None,
    params: Path | None = None,
    columns: str | None = None,
    report: Path | None = None,
    chunk_size: int | None = None,
    delimiter: str | None = None,
) -> ScoreJob:
    """A :class:`ScoreJob` from command-line options over the ``score`` params section.

    Raises
    ------
    ConfigError
        On a bad column mapping, chunk size or a missing input.
    """
    cfg = _score_section(params)
    source = dict(cfg.get("source") or {})
    if columns:
        source["columns"] = {**(source.get("columns") or {}), **parse_columns(columns)}
        image_column = source["columns"].pop("images", None)
        if image_column:
            source["image_column"] = image_column
    if delimiter is not None:
        source["delimiter"] = _one_char(delimiter, "--delimiter")
    if images_root is None and cfg.get("images_root"):
        images_root = resolve_path(cfg, cfg["images_root"])
    if images_root is None and inputs:
        # Photo paths are relative to the listing file unless told otherwise.
        images_root = inputs[0].resolve().parent
    size = _as_int(
        chunk_size if chunk_size is not None else cfg.get("chunk_size") or DEFAULT_CHUNK_SIZE,
        "--chunk-size / score.chunk_size",
    )
    if size < 1:
        raise ConfigError(f"--chunk-size / score.chunk_size must be at least 1, got {size}")
    if images_root is not None and not images_root.is_dir():
        raise ConfigError(f"{images_root}: images root is not a folder")
    if report is not None and report.resolve() == out.resolve():
        raise ConfigError(f"--report and --out are the same file ({out}): give two paths")
    for path in inputs:
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give the listing files inside it")
        if not path.is_file():
            raise ConfigError(f"{path}: input file not found")
    for option, target in (("--out", out), ("--report", report)):
        if target is not None:
            check_output_path(option, target, inputs, package)
    report_cfg = dict(cfg.get("report") or {})
    return ScoreJob(
        inputs=[p.resolve() for p in inputs],
        package_dir=package.resolve(),
        out_path=out.resolve(),
        source=source,
        images_root=images_root.resolve() if images_root else None,
        chunk_size=size,
        report_path=report.resolve() if report else None,
        report_max_listings=_as_int(
            report_cfg.get("max_listings", 500), "score.report.max_listings"
        ),
        thumb_px=_as_int(report_cfg.get("thumb_px", 96), "score.report.thumb_px"),
    )


def check_output_path(
    option: str, target: Path, inputs: list[Path], package: Path | None = None
) -> None:
    """Refuse an output that would overwrite an input or the package, or cannot be written.

    The files a run writes beside the output count too: ``<out>.tmp`` (the output while it is
    written) and ``<out>.checkpoint/``.

    Raises
    ------
    ConfigError
        Naming the option and the path.
    """
    resolved = target.resolve()
    written = {resolved, resolved.with_name(resolved.name + ".tmp")}
    checkpoint = resolved.with_name(resolved.name + ".checkpoint")
    for path in inputs:
        source = path.resolve()
        if source in written or checkpoint in (source, *source.parents):
            raise ConfigError(
                f"{option} {target} would overwrite the input {path}: choose another name"
            )
    if package is not None and package.resolve() in (resolved, *resolved.parents):
        raise ConfigError(
            f"{option} {target} is inside the scoring package {package}: a file added there "
            "makes the package fail its manifest check"
        )
    if resolved.is_dir():
        raise ConfigError(f"{option} {target} is a folder; give a file name")
    # The nearest existing folder above the output must be a writable folder.
    parent = resolved.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {target}: cannot write in {parent}")


def run_job(job: ScoreJob) -> int:
    """Run the job, log where the outputs are and the counts; return the exit code."""
    job.out_path.parent.mkdir(parents=True, exist_ok=True)
    if job.report_path is not None:
        job.report_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        stats = score_inputs(job)
    except KeyboardInterrupt:
        done = len(list(job.checkpoint_dir.glob("chunk-*.parquet")))
        logger.warning(
            "interrupted: %d chunks are saved in %s; run the same command to resume",
            done,
            job.checkpoint_dir,
        )
        raise
    counts = ", ".join(f"{status} {n}" for status, n in sorted(stats.by_status.items()))
    logger.info(
        "scored %d rows in %.1f s (%s); %d with unusable photos -> %s",
        stats.rows,
        stats.seconds,
        counts,
        stats.photo_issues,
        job.out_path,
    )
    if job.report_path is not None:
        logger.info("report -> %s", job.report_path)
    if stats.exit_code:
        logger.warning("some rows were rejected or had unusable photos: see status and reason")
    return stats.exit_code
