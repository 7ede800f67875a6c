"""The listing data contract: field names, label values and the source specification."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wildml.config import resolve_path
from wildml.errors import ConfigError

LISTING_FIELDS = (
    "listing_id",
    "text",
    "title",
    "description",
    "lang",
    "seller_id",
    "seller_profile",
    "platform",
    "url",
    "posted_at",
    "price",
    "currency",
    "country",
    "label",
    "product",
)
PHOTO_FIELDS = ("image", "photo_class", "listing_id")
OPTIONAL_TEXT_FIELDS = (
    "seller_id",
    "seller_profile",
    "platform",
    "url",
    "posted_at",
    "price",
    "currency",
    "country",
)
UNLABELLED = -1
PRODUCT_ID = re.compile(r"^[a-z][a-z0-9_]*$")
FORMATS = ("csv", "jsonl", "parquet")
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_TRUE = {"1", "1.0", "true", "yes", "y", "positive", "pos"}
_FALSE = {"0", "0.0", "false", "no", "n", "negative", "neg"}


@dataclass
class ImageTable:
    """A separate listing→photo table joined on ``key``."""

    path: Path
    key: str
    image: str
    format: str


@dataclass
class SourceSpec:
    """One input source as configured in ``prepare.sources``."""

    name: str
    kind: str
    path: Path
    format: str
    columns: dict[str, str] = field(default_factory=dict)
    label_map: dict[str, int] | None = None
    product_default: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    id_prefix: str | None = None
    images_root: Path | None = None
    image_column: str | None = None
    image_separator: str = ";"
    image_table: ImageTable | None = None
    delimiter: str | None = None
    limit: int | None = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any], entry: dict[str, Any], index: int) -> SourceSpec:
        """Build a spec from one ``prepare.sources`` entry, checking every key."""
        where = f"prepare.sources[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"params: {where} must be a mapping")
        known = set(cls.__dataclass_fields__) - {"format"} | {"format"}
        unknown = set(entry) - known
        if unknown:
            raise ConfigError(f"params: {where} has unknown keys {sorted(unknown)}")
        for key in ("name", "path"):
            if not entry.get(key):
                raise ConfigError(f"params: {where}.{key} is required")
        kind = entry.get("kind", "listings")
        if kind not in ("listings", "photos"):
            raise ConfigError(f"params: {where}.kind must be 'listings' or 'photos', not {kind!r}")
        path = resolve_path(cfg, entry["path"])
        fmt = entry.get("format") or infer_format(path)
        if fmt not in FORMATS:
            raise ConfigError(f"params: {where}.format must be one of {FORMATS}, not {fmt!r}")
        return cls(
            name=str(entry["name"]),
            kind=kind,
            path=path,
            format=fmt,
            columns={str(k): str(v) for k, v in (entry.get("columns") or {}).items()},
            label_map=_label_map(entry.get("label_map"), where),
            product_default=entry.get("product_default"),
            defaults=dict(entry.get("defaults") or {}),
            id_prefix=entry.get("id_prefix"),
            images_root=_optional_path(cfg, entry.get("images_root")),
            image_column=entry.get("image_column"),
            image_separator=str(entry.get("image_separator", ";")),
            image_table=_image_table(cfg, entry.get("image_table"), where),
            delimiter=entry.get("delimiter"),
            limit=entry.get("limit"),
        )


def infer_format(path: Path) -> str:
    """Guess a table's format from its suffix."""
    fmt = _SUFFIX_FORMAT.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: cannot tell the format from the suffix; set 'format'")
    return fmt


def _optional_path(cfg: dict[str, Any], value: Any) -> Path | None:
    return resolve_path(cfg, value) if value else None


def _label_map(raw: Any, where: str) -> dict[str, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"params: {where}.label_map must map source values to 0 or 1")
    mapped = {}
    for key, value in raw.items():
        if value not in (0, 1, UNLABELLED):
            raise ConfigError(f"params: {where}.label_map[{key!r}] must be 0, 1 or -1")
        mapped[str(key).strip().lower()] = int(value)
    return mapped


def _image_table(cfg: dict[str, Any], raw: Any, where: str) -> ImageTable | None:
    if not raw:
        return None
    for key in ("path", "key", "image"):
        if not raw.get(key):
            raise ConfigError(f"params: {where}.image_table.{key} is required")
    path = resolve_path(cfg, raw["path"])
    return ImageTable(
        path=path,
        key=raw["key"],
        image=raw["image"],
        format=raw.get("format") or infer_format(path),
    )


def parse_label(value: Any, label_map: dict[str, int] | None) -> int | None:
    """Map a source label value to 1, 0 or -1 (unlabelled); None when it is not recognised."""
    text = "" if value is None else str(value).strip().lower()
    if label_map is not None:
        return label_map.get(text, UNLABELLED if text == "" else None)
    if text == "":
        return UNLABELLED
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    return None
