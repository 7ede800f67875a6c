"""``wildml score``: stream listings through a scoring package into a ranked review queue.

Steps: check the package against its manifest; hash the inputs and the package into a
checkpoint key; read each input in chunks (CSV, JSON Lines or Parquet, mapped onto the
listing contract like ``prepare`` does); score each chunk and write it, sorted, into the
checkpoint folder beside the output with an atomic rename; merge the sorted chunks into the
output (CSV, Parquet or JSON Lines) and, optionally, the HTML report.

Interrupted at any point and started again with the same command, the run skips the chunks on
disk and produces the same output row for row. Every input row is in the output exactly once:
scored, marked as a duplicate of an earlier listing, or rejected with a reason.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildml.contract import SourceSpec, infer_format
from wildml.errors import ConfigError, DataError
from wildml.normalise import has_undecodable

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_PARTIAL = 1
CHECKPOINT_FORMAT = 3
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Sort keys stored in chunk files and dropped from the output. Listings with the same
# calibrated probability are ordered by the fuser's uncalibrated score, then input order.
SORT_COLUMNS = ("_group", "_tier", "_negp", "_negraw", "_file", "_row")
STATE_COLUMNS = ("_dup_key",)
# Files the merge reads at once; more chunks than this are first merged into longer runs.
MERGE_FANOUT = 32
# Rows per Parquet row group in chunk files. The merge holds one row group of every open chunk
# file (runs are read a line at a time), so its memory is bounded whatever the input size.
MERGE_ROW_GROUP = 64
# JSON Lines has no header: its columns are the keys of this many first records.
JSONL_HEADER_RECORDS = 1000


@dataclass
class ScoreJob:
    """Everything one ``wildml score`` run needs; also what its checkpoint is keyed on."""

    inputs: list[Path]
    package_dir: Path
    out_path: Path
    source: dict[str, Any] = field(default_factory=dict)
    images_root: Path | None = None
    chunk_size: int = 500
    report_path: Path | None = None
    report_max_listings: int = 500
    thumb_px: int = 96
    keep_checkpoint: bool = False

    @property
    def checkpoint_dir(self) -> Path:
        """Folder beside the output holding completed chunks."""
        return self.out_path.with_name(self.out_path.name + ".checkpoint")

    @property
    def out_format(self) -> str:
        """Output format from the output file's suffix."""
        fmt = OUTPUT_FORMATS.get(self.out_path.suffix.lower())
        if fmt is None:
            raise ConfigError(f"{self.out_path}: output must end in .csv, .parquet or .jsonl")
        return fmt


@dataclass
class RunStats:
    """Counts of one run, by status, and how the process should exit."""

    by_status: dict[str, int] = field(default_factory=dict)
    photo_issues: int = 0
    rows: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when every row was scored (or is a duplicate) with its photos; 1 otherwise."""
        from wildml.score import STATUS_REJECTED

        partial = self.by_status.get(STATUS_REJECTED, 0) > 0 or self.photo_issues > 0
        return EXIT_PARTIAL if partial else EXIT_OK


# --------------------------------------------------------------------------------------------
# CSV safety
# --------------------------------------------------------------------------------------------


def neutralise_cell(value: Any) -> Any:
    """Prefix ``'`` to a text cell a spreadsheet would run as a formula; other values as is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


# --------------------------------------------------------------------------------------------
# Reading inputs in chunks
# --------------------------------------------------------------------------------------------


@dataclass
class RawRow:
    """One input record: its 1-based number and values, or why it could not be read."""

    row: int
    values: dict[str, Any] | None
    reason: str = ""
    # What could still be read of a rejected record (its id, for the reject row).
    partial: dict[str, Any] | None = None


class _LineSource:
    """The lines of a text file, with push-back, remembering the lines of the current record."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._pushed: list[tuple[int, str]] = []
        self._next_line = 1
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._pushed:
            item = self._pushed.pop()
        else:
            line = self._handle.readline()
            if not line:
                raise StopIteration
            item = (self._next_line, line)
            self._next_line += 1
        self.taken.append(item)
        return item[1]

    def push_back(self, items: list[tuple[int, str]]) -> None:
        """Give lines back so that the next reads return them first, in order."""
        self._pushed.extend(reversed(items))


# Python's csv module refuses fields over 128 KiB; listings pasted from reports can be
# longer (the text is cut to prepare's max_text_chars later).
CSV_FIELD_LIMIT = 64 * 1024 * 1024


def _csv_rows(path: Path, delimiter: str | None) -> Iterator[RawRow]:
    """Records of a CSV file; a quote that is never closed costs only its own line.

    A strict reader finds where a quoted field runs on past the end of its line into the
    following rows (it then ends in a parse error, or with a field count unlike the header's).
    That record's first line is rejected as ``unbalanced_quote`` and the lines it swallowed
    are read again as rows of their own, so no listing is lost.
    """
    sep = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        source = _LineSource(handle)
        header = _csv_header(path, source, sep)
        number = 0
        for cells, lines, error in _csv_records(source, sep):
            if not lines:
                continue
            if cells is not None and (not cells or (len(cells) == 1 and not cells[0].strip())):
                continue
            number += 1
            first_line = lines[0][0]
            if len(lines) > 1 and (error or len(cells or ()) != len(header)):
                source.push_back(lines[1:])
                reason = (
                    f"unbalanced_quote: line {first_line} opens a quoted field that is not "
                    "closed before the next row"
                )
                yield RawRow(number, None, reason, _partial(header, lines[0][1], sep))
                continue
            if error:
                cells = _lenient_cells(lines[0][1], sep)
                if cells is None:
                    yield RawRow(number, None, f"unreadable_row: line {first_line}: {error}")
                    continue
            if len(cells) > len(header):
                reason = f"unreadable_row: line {first_line} has more fields than the header"
                yield RawRow(number, None, reason, dict(zip(header, cells, strict=False)))
                continue
            cells = cells + [""] * (len(header) - len(cells))
            yield RawRow(number, dict(zip(header, cells, strict=True)))


def _csv_header(path: Path, source: _LineSource, sep: str) -> list[str]:
    reader = csv.reader(source, delimiter=sep)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as err:
        raise DataError(f"{path}: no header row") from err
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV table: {err}") from err
    source.taken.clear()
    if header:
        header[0] = header[0].removeprefix("\ufeff")
    return header


def _csv_records(
    source: _LineSource, sep: str
) -> Iterator[tuple[list[str] | None, list[tuple[int, str]], str]]:
    """(cells, the (line number, line) pairs read for them, parse error or "")."""
    reader = csv.reader(source, delimiter=sep, strict=True)
    while True:
        try:
            cells = next(reader)
            error = ""
        except StopIteration:
            return
        except csv.Error as err:
            cells, error = None, str(err)
            # A reader is not reused after an error: start a fresh one on the same lines.
            reader = csv.reader(source, delimiter=sep, strict=True)
        lines, source.taken = source.taken, []
        yield cells, lines, error


def _partial(header: list[str], line: str, sep: str) -> dict[str, Any] | None:
    cells = _lenient_cells(line, sep)
    return dict(zip(header, cells, strict=False)) if cells else None


def _lenient_cells(line: str, sep: str) -> list[str] | None:
    """One line read without strict quoting (``a "b" c``, ``"ab"cd``), or None."""
    try:
        rows = list(csv.reader([line], delimiter=sep))
    except csv.Error:
        return None
    return rows[0] if rows else []


def _jsonl_rows(path: Path, delimiter: str | None) -> Iterator[RawRow]:
    from wildml.readers import _decode_json_line

    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            values, reason = _decode_json_line(raw)
            if values is None:
                yield RawRow(number, None, reason)
                continue
            if any(isinstance(v, str) and _LONE_SURROGATE.search(v) for v in values.values()):
                # A JSON escape such as \ud800 that is no character: refuse, never guess.
                yield RawRow(number, None, "bad_json: a \\u escape that is no character", values)
                continue
            yield RawRow(number, values)


def _parquet_rows(path: Path, delimiter: str | None) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    from wildml.readers import _parquet_value

    try:
        handle = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file: {err}") from err
    number = 0
    for batch in handle.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            number += 1
            yield RawRow(number, {k: _parquet_value(v) for k, v in record.items()})


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ROW_READERS = {"csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}


def count_rows(path: Path, fmt: str, delimiter: str | None = None) -> int:
    """Number of input records (cheap pre-pass, for the progress bar's ETA)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return sum(1 for _ in _ROW_READERS[fmt](path, delimiter))


def iter_chunks(path: Path, fmt: str, size: int, delimiter: str | None) -> Iterator[list[RawRow]]:
    """Input records of one file in lists of ``size`` (the last may be shorter)."""
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: input file is empty")
    chunk: list[RawRow] = []
    for raw in _ROW_READERS[fmt](path, delimiter):
        chunk.append(raw)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def input_columns(path: Path, fmt: str, delimiter: str | None) -> list[str]:
    """Column names of an input: the CSV header, the Parquet schema, or for JSON Lines the
    keys of its first readable records."""
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: input file is empty")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as err:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file: {err}") from err
    if fmt == "csv":
        sep = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
        with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            return _csv_header(path, _LineSource(handle), sep)
    keys: dict[str, None] = {}
    for seen, raw in enumerate(_jsonl_rows(path, delimiter)):
        if raw.values is not None:
            keys.update(dict.fromkeys(raw.values))
        if seen >= JSONL_HEADER_RECORDS:
            break
    return list(keys)


def check_columns(path: Path, spec: SourceSpec) -> None:
    """Refuse an input whose columns cannot give listings, before anything is scored.

    Raises
    ------
    DataError
        When the id column (unless ids are generated) or every text and photo column is
        absent, naming the columns found and, for a one-column CSV header, the likely
        delimiter.
    """
    columns = input_columns(path, spec.format, spec.delimiter)

    def has(name: str) -> bool:
        return spec.columns.get(name, name) in columns or name in spec.defaults

    problems = []
    if not spec.id_prefix and not has("listing_id"):
        column = spec.columns.get("listing_id", "listing_id")
        problems.append(f"no id column {column!r} (map it with --columns listing_id=NAME)")
    photo_column = spec.image_column or "images"
    if not (
        any(has(n) for n in ("text", "title", "description"))
        or photo_column in columns
        or spec.image_table is not None
    ):
        problems.append("no text, title, description or photo column")
    if not problems:
        return
    hint = ""
    if spec.format == "csv" and len(columns) == 1:
        found = [d for d in (";", "\t", "|", ",") if d in columns[0]]
        if found:
            hint = f"; the header is one column: is the delimiter {found[0]!r}? (--delimiter)"
    raise DataError(f"{path}: {'; '.join(problems)}; the file has columns {columns}{hint}")


def source_spec(job: ScoreJob, path: Path) -> SourceSpec:
    """The column mapping of the job's source entry, applied to one input file."""
    entry = {k: v for k, v in job.source.items() if k not in ("path", "kind", "images_root")}
    entry.update(name=entry.get("name") or path.name, path=str(path.resolve()), kind="listings")
    if not entry.get("format"):
        try:
            entry["format"] = infer_format(path)
        except ConfigError as err:
            raise ConfigError(
                f"{path}: cannot tell the format from the suffix; rename it to .csv, .tsv, "
                ".jsonl or .parquet, or set score.source.format in the --params file"
            ) from err
    spec = SourceSpec.from_config({}, entry, 0)
    return spec


def contract_frame(rows: list[RawRow], spec: SourceSpec) -> pd.DataFrame:
    """Readable rows of a chunk mapped onto the listing contract, with ``_row`` and images."""
    from wildml.readers import ROW, listing_fields
    from wildml.score import is_missing

    records = [dict(r.values, **{ROW: r.row}) for r in rows]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({ROW: []})
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        if column != ROW:
            # A key absent from some JSON records is NaN in the frame: treat it as empty.
            frame[column] = frame[column].map(lambda v: "" if is_missing(v) else v)
    image_column = spec.image_column or ("images" if "images" in frame.columns else None)
    if image_column and image_column not in frame.columns:
        # Photos are optional: a file without the configured photo column has none.
        if len(frame):
            logger.warning(
                "%s: no photo column %r; scoring without photos", spec.path, image_column
            )
        image_column = None
    if image_column != spec.image_column:
        spec = SourceSpec(**{**spec.__dict__, "image_column": image_column})
    mapped = listing_fields(frame, spec)
    return mapped


# --------------------------------------------------------------------------------------------
# Checkpoint
# --------------------------------------------------------------------------------------------


def job_key(job: ScoreJob, package_digest: str) -> str:
    """sha256 over the inputs' bytes, the package and every setting that changes the output."""
    from wildml import __version__
    from wildml.score_manifest import sha256_file

    record = {
        "format": CHECKPOINT_FORMAT,
        "wildml": __version__,
        "package": package_digest,
        "inputs": [[p.name, sha256_file(p)] for p in job.inputs],
        "image_table": _image_table_digest(job.source),
        "source": job.source,
        "images_root": str(job.images_root.resolve()) if job.images_root else None,
        "chunk_size": job.chunk_size,
    }
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _image_table_digest(source: dict[str, Any]) -> str | None:
    """sha256 of the separate listing-to-photo table, when the source has one."""
    from wildml.score_manifest import sha256_file

    path = (source.get("image_table") or {}).get("path")
    return sha256_file(path) if path and Path(path).is_file() else None


def open_checkpoint(job: ScoreJob, key: str) -> Path:
    """Create or reuse the checkpoint folder; a folder for other inputs is started over."""
    folder = job.checkpoint_dir
    state_path = folder / "state.json"
    if folder.exists():
        if not state_path.is_file():
            raise ConfigError(
                f"{folder}: exists but is not a wildml checkpoint; move it away or choose "
                "another --out"
            )
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("key") == key:
            done = len(list(folder.glob("chunk-*.parquet")))
            logger.info("resuming from %s: %d chunks already scored", folder, done)
            return folder
        logger.warning("%s: inputs, package or settings changed; starting over", folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    _atomic_write_text(state_path, json.dumps({"key": key}, indent=2))
    return folder


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False, row_group_size=MERGE_ROW_GROUP)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# One chunk
# --------------------------------------------------------------------------------------------


@dataclass
class SeenState:
    """Ids and exact-duplicate keys of every listing earlier in the run."""

    ids: set[str] = field(default_factory=set)
    dup_keys: dict[str, str] = field(default_factory=dict)

    def absorb(self, frame: pd.DataFrame) -> None:
        """Remember the ids and keys of a completed chunk (read back from disk on resume)."""
        from wildml.score import STATUS_REJECTED

        for listing_id, status, key in zip(
            frame["listing_id"], frame["status"], frame["_dup_key"], strict=True
        ):
            if status != STATUS_REJECTED and listing_id:
                self.ids.add(listing_id)
            if key and key not in self.dup_keys:
                self.dup_keys[key] = listing_id


def duplicate_key(text_norm: str, photos: list[str]) -> str:
    """Key of an exact duplicate: same folded text, or same photos when there is no text."""
    from wildml.dedupe import text_key

    if text_norm:
        return "t:" + text_key(text_norm)
    if photos:
        return "p:" + hashlib.sha1("\n".join(sorted(photos)).encode()).hexdigest()
    return ""


def mark_duplicates(prepared: pd.DataFrame, seen: SeenState) -> None:
    """Reject reused ids and mark exact duplicates of earlier listings, in input order."""
    from wildml.score import STATUS_DUPLICATE, STATUS_REJECTED

    keys, dup_of = [], []
    ids = prepared["listing_id"].tolist()
    status, reason = prepared["status"].tolist(), prepared["reason"].tolist()
    for row, (listing_id, text, photos) in enumerate(
        zip(ids, prepared["text_norm"], prepared["photo_paths"], strict=True)
    ):
        key = duplicate_key(text, photos)
        original = ""
        if status[row] == STATUS_REJECTED:
            key = ""
        elif listing_id in seen.ids:
            status[row], reason[row] = STATUS_REJECTED, "duplicate_id"
            key = ""
        elif key and key in seen.dup_keys:
            original = seen.dup_keys[key]
            status[row], reason[row] = STATUS_DUPLICATE, "exact_duplicate"
        if status[row] != STATUS_REJECTED:
            seen.ids.add(listing_id)
        if key and key not in seen.dup_keys:
            seen.dup_keys[key] = listing_id
        keys.append(key)
        dup_of.append(original)
    prepared["status"], prepared["reason"] = status, reason
    prepared["_dup_key"] = keys
    prepared["duplicate_of"] = dup_of


def score_chunk(
    rows: list[RawRow], spec: SourceSpec, scorer: Any, job: ScoreJob, seen: SeenState, file_no: int
) -> pd.DataFrame:
    """Score one chunk; every input record comes out as one row with its sort keys."""
    from wildml.score import STATUS_REJECTED, prepare_listings

    readable = [r for r in rows if r.values is not None and not _undecodable(r.values)]
    frame = contract_frame(readable, spec)
    prepared = prepare_listings(frame, scorer.settings, job.images_root)
    prepared["_row"] = frame["_row"].to_numpy() if len(frame) else []
    mark_duplicates(prepared, seen)
    scored = scorer.score_prepared(prepared) if len(prepared) else prepared
    bad = [r for r in rows if r.values is None or _undecodable(r.values)]
    if bad:
        rejects = pd.DataFrame(
            {
                "_row": [r.row for r in bad],
                "listing_id": [_raw_id(r, spec) for r in bad],
                "status": STATUS_REJECTED,
                "reason": [r.reason or "undecodable_bytes" for r in bad],
                "_dup_key": "",
                "duplicate_of": "",
            }
        )
        scored = pd.concat([scored, rejects], ignore_index=True)
    return _finish_chunk(scored, job, file_no)


def _undecodable(values: dict[str, Any]) -> bool:
    return any(isinstance(v, str) and has_undecodable(v) for v in values.values())


def _raw_id(raw: RawRow, spec: SourceSpec) -> str:
    """The id of a rejected record where it can be read (never undecodable bytes)."""
    values = raw.values if raw.values is not None else raw.partial
    if values is None:
        return ""
    value = values.get(spec.columns.get("listing_id", "listing_id"), "")
    if not isinstance(value, str) or has_undecodable(value) or _LONE_SURROGATE.search(value):
        return ""
    return value.strip()


def _finish_chunk(scored: pd.DataFrame, job: ScoreJob, file_no: int) -> pd.DataFrame:
    from wildml.score import OUTPUT_COLUMNS, PASSTHROUGH, STATUS_DUPLICATE, TIER_RANK

    out = pd.DataFrame(index=scored.index)
    for column in (*OUTPUT_COLUMNS, *PASSTHROUGH):
        out[column] = scored[column] if column in scored.columns else None
    for column in ("p_final", "p_uncalibrated", "p_text", "photo_p"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in ("n_photos", "n_photos_usable"):
        out[column] = pd.to_numeric(out[column], errors="coerce").fillna(0).astype("int64")
    numeric = {"p_final", "p_uncalibrated", "p_text", "photo_p", "n_photos", "n_photos_usable"}
    for column in [c for c in out.columns if c not in numeric]:
        out[column] = [_text_cell(v) for v in out[column]]
    out["source_file"] = job.inputs[file_no].name
    out["row"] = scored["_row"].astype("int64")
    out["_dup_key"] = scored["_dup_key"].fillna("").astype(str)
    status = out["status"]
    out["_group"] = np.where(
        out["p_final"].notna(), 0, np.where(status == STATUS_DUPLICATE, 1, 2)
    ).astype("int64")
    out["_tier"] = out["tier"].map(TIER_RANK).fillna(9).astype("int64")
    out["_negp"] = (-out["p_final"]).fillna(0.0)
    out["_negraw"] = (-out["p_uncalibrated"]).fillna(0.0)
    out["_file"] = file_no
    out["_row"] = out["row"]
    return out.sort_values(list(SORT_COLUMNS), kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Merging sorted chunks, writing outputs
# --------------------------------------------------------------------------------------------


def _text_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _sort_key(row: dict[str, Any]) -> tuple:
    return tuple(row[c] for c in SORT_COLUMNS)


def _iter_file(path: Path, batch_size: int = MERGE_ROW_GROUP) -> Iterator[dict[str, Any]]:
    """Rows of a sorted chunk (Parquet) or merge run (JSON Lines) file, one at a time."""
    if path.suffix == ".jsonl":
        with path.open("r", encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)
        return

    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    for batch in handle.iter_batches(batch_size=batch_size):
        yield from batch.to_pylist()


def merged_rows(files: list[Path], work_dir: Path) -> Iterator[dict[str, Any]]:
    """Rows of every sorted chunk file in global order (an external k-way merge)."""
    while len(files) > MERGE_FANOUT:
        # Too many chunks to keep open at once: merge them in groups into longer runs first.
        runs = []
        for start in range(0, len(files), MERGE_FANOUT):
            group = files[start : start + MERGE_FANOUT]
            run_path = work_dir / f"run-{len(runs):05d}-{time.time_ns()}.jsonl"
            _write_run(heapq.merge(*map(_iter_file, group), key=_sort_key), run_path)
            runs.append(run_path)
        files = runs
    yield from heapq.merge(*map(_iter_file, files), key=_sort_key)


def _write_run(rows: Iterator[dict[str, Any]], path: Path) -> None:
    """Write merged rows as JSON Lines: read back one line at a time, with no per-file index
    that grows with the run (a Parquet footer lists every row group), and floats survive
    exactly (``repr`` round trip)."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _schema(pa: Any) -> Any:
    from wildml.score import OUTPUT_COLUMNS, PASSTHROUGH

    floats = {"p_final", "p_uncalibrated", "p_text", "photo_p", "_negp", "_negraw"}
    ints = {"priority", "n_photos", "n_photos_usable", "row", "_group", "_tier", "_file", "_row"}
    names = ["priority", *OUTPUT_COLUMNS, *PASSTHROUGH, "source_file", "row"]
    names += [*STATE_COLUMNS, *SORT_COLUMNS]

    def kind(name: str) -> Any:
        return pa.float64() if name in floats else pa.int64() if name in ints else pa.string()

    return pa.schema([(name, kind(name)) for name in names])


def public_columns() -> list[str]:
    """Columns of the review queue, in order."""
    from wildml.score import OUTPUT_COLUMNS, PASSTHROUGH

    return ["priority", *OUTPUT_COLUMNS, *PASSTHROUGH, "source_file", "row"]


class QueueWriter:
    """Writes queue rows to CSV (spreadsheet-safe), JSON Lines or Parquet, then renames."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.tmp = path.with_name(path.name + ".tmp")
        self.columns = public_columns()
        self._rows: list[dict[str, Any]] = []
        self._parquet: Any = None
        if fmt == "csv":
            # utf-8-sig: spreadsheets then read Thai, Chinese and Vietnamese text correctly.
            self._handle = self.tmp.open("w", encoding="utf-8-sig", newline="")
            self._csv = csv.writer(self._handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
            self._csv.writerow(self.columns)
        elif fmt == "jsonl":
            self._handle = self.tmp.open("w", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (keys: :func:`public_columns`)."""
        if self.fmt == "csv":
            self._csv.writerow([neutralise_cell(_csv_value(row.get(c))) for c in self.columns])
        elif self.fmt == "jsonl":
            record = {c: _json_value(row.get(c)) for c in self.columns}
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self._rows.append({c: row.get(c) for c in self.columns})
            if len(self._rows) >= 2048:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schema(pa)
        schema = pa.schema([schema.field(c) for c in self.columns])
        table = pa.Table.from_pylist(self._rows, schema=schema)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.tmp, schema)
        self._parquet.write_table(table)
        self._rows = []

    def close(self) -> None:
        """Finish the file and move it into place atomically."""
        if self.fmt == "parquet":
            if self._rows or self._parquet is None:
                self._flush_parquet()
            self._parquet.close()
        else:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        os.replace(self.tmp, self.path)


def _csv_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------


class Progress:
    """A rich progress bar on a terminal, plain log lines with rate and ETA otherwise."""

    def __init__(self, total: int, done: int = 0) -> None:
        self.total, self.done, self.start = total, done, time.monotonic()
        self._start_done = done
        self._bar: Any = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("scoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} listings/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("score", total=total, completed=done, rate="-")

    def advance(self, n: int) -> None:
        """Record ``n`` more rows done."""
        self.done += n
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = (self.done - self._start_done) / elapsed
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{rate:.0f}")
            return
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        logger.info(
            "scored %d/%d listings (%.0f/s, about %.0f s left)", self.done, self.total, rate, left
        )

    def close(self) -> None:
        """Stop the bar."""
        if self._bar is not None:
            self._bar.stop()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def _chunk_path(folder: Path, file_no: int, chunk_no: int) -> Path:
    return folder / f"chunk-{file_no:03d}-{chunk_no:07d}.parquet"


def score_inputs(job: ScoreJob) -> RunStats:
    """Run a scoring job end to end; returns the counts (exit code in ``.exit_code``).

    Raises
    ------
    PackageIntegrityError
        When the package does not match its manifest.
    DataError, ConfigError
        For unreadable inputs or a bad column mapping.
    """
    from wildml.score import load_scorer

    started = time.monotonic()
    fmt = job.out_format
    scorer = load_scorer(job.package_dir)
    specs = [source_spec(job, path) for path in job.inputs]
    for path, spec in zip(job.inputs, specs, strict=True):
        check_columns(path, spec)
    folder = open_checkpoint(job, job_key(job, scorer.digest))
    total = sum(
        count_rows(p, s.format, s.delimiter) for p, s in zip(job.inputs, specs, strict=True)
    )
    chunk_files = _score_all(job, scorer, specs, folder, total)
    stats = _write_outputs(job, chunk_files, folder, fmt)
    stats.seconds = time.monotonic() - started
    if not job.keep_checkpoint:
        # Rename first (atomic), so a kill while deleting never leaves a half checkpoint.
        done = folder.with_name(f"{folder.name}.done-{time.time_ns()}")
        os.replace(folder, done)
        shutil.rmtree(done, ignore_errors=True)
    return stats


def _score_all(
    job: ScoreJob, scorer: Any, specs: list[SourceSpec], folder: Path, total: int
) -> list[Path]:
    seen = SeenState()
    files: list[Path] = []
    progress = Progress(total)
    try:
        for file_no, (path, spec) in enumerate(zip(job.inputs, specs, strict=True)):
            chunks = iter_chunks(path, spec.format, job.chunk_size, spec.delimiter)
            for chunk_no, rows in enumerate(chunks):
                target = _chunk_path(folder, file_no, chunk_no)
                saved = _read_saved_chunk(target) if target.is_file() else None
                if saved is not None:
                    seen.absorb(saved)
                else:
                    frame = score_chunk(rows, spec, scorer, job, seen, file_no)
                    _atomic_parquet(frame, target)
                files.append(target)
                progress.advance(len(rows))
    finally:
        progress.close()
    return files


def _read_saved_chunk(path: Path) -> pd.DataFrame | None:
    """The ids and keys of a finished chunk, or None when the file is damaged (then re-scored).

    Chunks are renamed into place only when complete, so a damaged one means something else
    changed the folder; scoring the chunk again is always safe.
    """
    try:
        return pd.read_parquet(path, columns=["listing_id", "status", *STATE_COLUMNS])
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        logger.warning("%s: damaged checkpoint chunk (%s); scoring it again", path, err)
        path.unlink()
        return None


def _write_outputs(job: ScoreJob, files: list[Path], folder: Path, fmt: str) -> RunStats:
    from wildml.score import STATUS_REJECTED

    stats = RunStats()
    writer = QueueWriter(job.out_path, fmt)
    report_rows: list[dict[str, Any]] = []
    for priority, row in enumerate(merged_rows(files, folder), start=1):
        row["priority"] = priority
        writer.write(row)
        stats.rows += 1
        stats.by_status[row["status"]] = stats.by_status.get(row["status"], 0) + 1
        stats.photo_issues += "photos:" in (row.get("reason") or "")
        if job.report_path is not None and (
            row["status"] != STATUS_REJECTED and len(report_rows) < job.report_max_listings
        ):
            report_rows.append(row)
    writer.close()
    if job.report_path is not None:
        from wildml.report import write_report

        write_report(report_rows, job, stats)
    return stats
