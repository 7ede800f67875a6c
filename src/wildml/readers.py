"""Readers for listing sources in CSV, JSON Lines and Parquet, mapped onto the contract.

Every value is read as a string so that nothing is coerced silently (ids keep their leading
zeros, prices their formatting). Rows that cannot be read are returned as rejects with their
row number instead of stopping the read. JSON Lines and Parquet can hold lists and mappings:
they are kept as such while reading, and a contract field holding one is blanked and named in
the ``_field_error`` column of the mapped frame, so that no stage scores ``['a', 'b']`` as text.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wildml.contract import LISTING_FIELDS, PHOTO_FIELDS, ImageTable, SourceSpec
from wildml.errors import DataError
from wildml.normalise import has_undecodable, mark_undecodable

logger = logging.getLogger(__name__)

ROW = "_row"
# Column of a mapped frame naming the contract fields that held a list or mapping ("" if none).
FIELD_ERROR = "_field_error"
# Image tables kept in memory, keyed by file identity; see _cached_image_table.
_IMAGE_TABLE_CACHE_SIZE = 4
_image_tables: OrderedDict[tuple, dict[str, list[str]]] = OrderedDict()


@dataclass
class Reject:
    """One input row or photo that was not kept, and why."""

    source: str
    row: int
    listing_id: str
    reason: str
    detail: str = ""
    item: str = "listing"

    def as_dict(self) -> dict[str, object]:
        """Return the reject as a flat record for ``rejects.csv``."""
        return {
            "source": self.source,
            "row": self.row,
            "listing_id": self.listing_id,
            "item": self.item,
            "reason": self.reason,
            "detail": self.detail[:500],
        }


def read_table(
    path: Path, fmt: str, *, delimiter: str | None = None, source: str = ""
) -> tuple[pd.DataFrame, list[Reject]]:
    """Read a table as strings, adding a 1-based ``_row`` column.

    Returns the frame and the rows that could not be read (bad JSON, undecodable bytes).

    Raises
    ------
    DataError
        When the file is missing, empty or unreadable as a whole.
    """
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: input file is empty")
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    frame, rejects = readers[fmt](path, delimiter=delimiter, source=source or path.name)
    frame.columns = [str(column).strip() for column in frame.columns]
    bad = _undecodable_rows(frame)
    for index in bad:
        rejects.append(
            Reject(
                source or path.name,
                int(frame.at[index, ROW]),
                "",
                "undecodable_bytes",
                f"{path}: bytes that are not valid UTF-8",
            )
        )
    return frame.drop(index=bad).reset_index(drop=True), rejects


def _read_csv(path: Path, *, delimiter: str | None, source: str) -> tuple[pd.DataFrame, list]:
    sep = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    text = mark_undecodable(path.read_bytes()).removeprefix("\ufeff")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quoting=csv.QUOTE_MINIMAL,
            on_bad_lines="error",
        )
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: no header row") from err
    except (pd.errors.ParserError, csv.Error, ValueError) as err:
        raise DataError(f"{path}: not a readable CSV table: {err}") from err
    frame.insert(0, ROW, range(1, len(frame) + 1))
    return frame, []


def _read_jsonl(path: Path, *, delimiter: str | None, source: str) -> tuple[pd.DataFrame, list]:
    records: list[dict] = []
    rejects: list[Reject] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record, reason = _decode_json_line(raw)
            if record is None:
                rejects.append(Reject(source, number, "", reason, f"{path}: line {number}"))
                continue
            record[ROW] = number
            records.append(record)
    if not records and not rejects:
        raise DataError(f"{path}: no JSON records")
    frame = pd.DataFrame.from_records(records).fillna("") if records else pd.DataFrame({ROW: []})
    return frame, rejects


def _decode_json_line(raw: bytes) -> tuple[dict | None, str]:
    """One JSON Lines record with its values as text (see :func:`_as_text`), or a reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "undecodable_bytes"
    try:
        record = json.loads(text)
        if not isinstance(record, dict):
            return None, "bad_json"
        return {key: _as_text(value) for key, value in record.items()}, ""
    except json.JSONDecodeError:
        return None, "bad_json"
    except RecursionError:
        return None, "bad_json: nested too deeply"


def _as_text(value: object) -> object:
    """Turn scalars into strings and None into ''; keep lists and mappings as containers.

    A list is legitimate in a photo column; in a contract text field, a list or mapping is
    reported by :func:`listing_fields` rather than turned into text here.
    """
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return [_as_text(item) for item in value]
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, bytes | bytearray):
        # Binary columns (Parquet ``binary``) hold UTF-8 text; bytes that are not UTF-8 are
        # marked, so the row is rejected as undecodable instead of scored as "b'...'".
        return mark_undecodable(bytes(value))
    if isinstance(value, dict):
        return {str(key): _as_text(item) for key, item in value.items()}
    return str(value)


def _read_parquet(path: Path, *, delimiter: str | None, source: str) -> tuple[pd.DataFrame, list]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file: {err}") from err
    frame = table.to_pandas()
    for column in frame.columns:
        frame[column] = frame[column].map(_parquet_value)
    frame.insert(0, ROW, range(1, len(frame) + 1))
    return frame, []


def _parquet_value(value: object) -> object:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    return _as_text(value)


def _undecodable_rows(frame: pd.DataFrame) -> list[int]:
    bad = []
    for column in frame.columns:
        if column == ROW:
            continue
        for index, value in frame[column].items():
            if isinstance(value, str) and has_undecodable(value):
                bad.append(index)
    return sorted(set(bad))


def map_columns(frame: pd.DataFrame, spec: SourceSpec, fields: tuple[str, ...]) -> pd.DataFrame:
    """Rename source columns to contract fields; apply constant defaults.

    Raises
    ------
    DataError
        When a mapped column is absent from the file, naming both.
    """
    renamed = pd.DataFrame({ROW: frame[ROW]})
    for field_name in fields:
        column = spec.columns.get(field_name, field_name)
        if column in frame.columns:
            renamed[field_name] = frame[column]
        elif field_name in spec.columns:
            raise DataError(
                f"{spec.path}: column {column!r} (mapped to {field_name!r}) is missing; "
                f"the file has {sorted(c for c in frame.columns if c != ROW)}"
            )
    for field_name, value in spec.defaults.items():
        if field_name not in renamed.columns or (renamed[field_name] == "").all():
            renamed[field_name] = "" if value is None else str(value)
        else:
            renamed[field_name] = renamed[field_name].where(renamed[field_name] != "", str(value))
    if spec.image_column:
        if spec.image_column not in frame.columns:
            raise DataError(f"{spec.path}: image column {spec.image_column!r} is missing")
        renamed["images"] = frame[spec.image_column].map(
            lambda cell: _split_paths(cell, spec.image_separator)
        )
    return renamed


def _split_paths(cell: object, separator: str) -> list[str]:
    if isinstance(cell, list):
        return [str(item).strip() for item in cell if str(item).strip()]
    text = str(cell or "").strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return [str(item).strip() for item in parsed if str(item).strip()]
        except json.JSONDecodeError:
            pass
    return [part.strip() for part in text.split(separator) if part.strip()]


def mark_field_types(mapped: pd.DataFrame, fields: tuple[str, ...], spec: SourceSpec) -> None:
    """Blank contract fields holding a list or mapping and name them in ``_field_error``.

    Parameters
    ----------
    mapped
        A frame from :func:`map_columns`; changed in place. ``_field_error`` is always added:
        ``""`` for a sound row, else ``bad_field_type: 'text' is a list`` (every bad field of
        the row, with its source column when it is named differently).
    fields
        The contract fields that must hold one text value each.
    spec
        The source, for the names of the mapped columns.
    """
    problems: list[list[str]] = [[] for _ in range(len(mapped))]
    for field_name in fields:
        if field_name not in mapped.columns:
            continue
        values = list(mapped[field_name])
        bad = [i for i, value in enumerate(values) if isinstance(value, list | dict)]
        if not bad:
            continue
        column = spec.columns.get(field_name, field_name)
        where = (
            f"{field_name!r}" if column == field_name else f"{field_name!r} (column {column!r})"
        )
        for i in bad:
            kind = "a list" if isinstance(values[i], list) else "a mapping"
            problems[i].append(f"{where} is {kind}")
            values[i] = ""
        mapped[field_name] = values
    mapped[FIELD_ERROR] = [
        "bad_field_type: " + "; ".join(found) if found else "" for found in problems
    ]


def read_image_table(table: ImageTable, source: str) -> dict[str, list[str]]:
    """Read a listing→photo table into ``{listing key: [paths]}``, keeping file order."""
    frame, rejects = read_table(table.path, table.format, source=source)
    for column in (table.key, table.image):
        if column not in frame.columns:
            raise DataError(f"{table.path}: column {column!r} is missing")
    if rejects:
        logger.warning("%s: %d unreadable rows in the image table", table.path, len(rejects))
    photos: dict[str, list[str]] = {}
    for key, image in zip(frame[table.key], frame[table.image], strict=True):
        if str(image).strip():
            photos.setdefault(str(key).strip(), []).append(str(image).strip())
    return photos


def _cached_image_table(table: ImageTable, source: str) -> dict[str, list[str]]:
    """:func:`read_image_table`, read once per file identity (path, size, mtime) and columns.

    ``wildml score`` maps each chunk of a large input separately; without the cache the whole
    photo table would be read again for every chunk. The result is shared: do not change it.
    """
    path = Path(table.path).resolve()
    try:
        stat = path.stat()
    except OSError:
        return read_image_table(table, source)  # let the reader report the missing file
    key = (str(path), stat.st_size, stat.st_mtime_ns, table.key, table.image, table.format)
    if key in _image_tables:
        _image_tables.move_to_end(key)
        return _image_tables[key]
    photos = read_image_table(table, source)
    _image_tables[key] = photos
    while len(_image_tables) > _IMAGE_TABLE_CACHE_SIZE:
        _image_tables.popitem(last=False)
    return photos


def load_listing_source(spec: SourceSpec) -> tuple[pd.DataFrame, list[Reject]]:
    """Read one listings source into contract fields plus ``images`` and ``_row``."""
    frame, rejects = read_table(spec.path, spec.format, delimiter=spec.delimiter, source=spec.name)
    if spec.limit:
        frame = frame.head(int(spec.limit))
    _check_required(frame, spec)
    return listing_fields(frame, spec), rejects


def listing_fields(frame: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """Map a read table onto contract fields, ids (generated with ``id_prefix``) and photos.

    Parameters
    ----------
    frame
        A table from :func:`read_table` (or rows read the same way), with ``_row``.
    spec
        The source: column mapping, defaults, id prefix, image column or table.

    Returns
    -------
    pandas.DataFrame
        One row per input row: ``_row``, the contract fields the source has (each one text
        value), ``images`` (a list of paths) and ``_field_error`` (see
        :func:`mark_field_types`; a row with a non-empty one must not be used as it is).
    """
    mapped = map_columns(frame, spec, LISTING_FIELDS)
    if spec.id_prefix:
        mapped["listing_id"] = [f"{spec.id_prefix}:{row}" for row in mapped[ROW]]
    mark_field_types(mapped, LISTING_FIELDS, spec)
    if "images" not in mapped.columns:
        mapped["images"] = [[] for _ in range(len(mapped))]
    if spec.image_table is not None:
        table = _cached_image_table(spec.image_table, spec.name)
        mapped["images"] = [
            list(images) + table.get(str(listing_id).strip(), [])
            for images, listing_id in zip(mapped["images"], mapped["listing_id"], strict=True)
        ]
    return mapped


def _check_required(frame: pd.DataFrame, spec: SourceSpec) -> None:
    def has(field_name: str) -> bool:
        return spec.columns.get(field_name, field_name) in frame.columns or (
            field_name in spec.defaults
        )

    if not spec.id_prefix and not has("listing_id"):
        column = spec.columns.get("listing_id", "listing_id")
        raise DataError(
            f"{spec.path}: column {column!r} (listing_id) is missing; map the id column in "
            f"prepare.sources.columns or set id_prefix to number the rows"
        )
    has_photos = bool(spec.image_column or spec.image_table)
    if not (has("text") or has("title") or has("description") or has_photos):
        raise DataError(
            f"{spec.path}: no text column: map 'text' (or 'title'/'description') in "
            f"prepare.sources.columns"
        )


def load_photo_source(spec: SourceSpec) -> tuple[pd.DataFrame, list[Reject]]:
    """Read a photo manifest (image path + class) into ``image``, ``photo_class``, ``_row``."""
    frame, rejects = read_table(spec.path, spec.format, delimiter=spec.delimiter, source=spec.name)
    if spec.limit:
        frame = frame.head(int(spec.limit))
    for field_name in ("image", "photo_class"):
        column = spec.columns.get(field_name, field_name)
        if column not in frame.columns and field_name not in spec.defaults:
            raise DataError(
                f"{spec.path}: required column {column!r} ({field_name}) is missing; map it in "
                f"prepare.sources.columns"
            )
    mapped = map_columns(frame, spec, PHOTO_FIELDS)
    mark_field_types(mapped, PHOTO_FIELDS, spec)
    return mapped, rejects
