"""The ``prepare`` stage: listings and photos in, a checked, de-duplicated, split dataset out.

Steps: read every source; validate each row against the listing data contract; normalise
text; detect missing languages; check every photo; drop exact duplicate texts and group
near-duplicates (texts and photos); split by group; write Hugging Face datasets, a report and
the rejects. Every input row ends in exactly one of the prepared listings or ``rejects.csv``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wildml.config import load_params, resolve_path, section
from wildml.contract import OPTIONAL_TEXT_FIELDS, PRODUCT_ID, UNLABELLED, SourceSpec, parse_label
from wildml.dedupe import UnionFind, near_duplicate_pairs, near_identical_photos, text_key
from wildml.errors import ConfigError, DataError, RejectThresholdError
from wildml.listing_text import detect_or_keep_language, text_fields
from wildml.normalise import normalise_text
from wildml.photos import PhotoError, PhotoLimits, load_rgb, resolve_inside
from wildml.readers import FIELD_ERROR, ROW, Reject, load_listing_source, load_photo_source
from wildml.split import SPLITS, grouped_split

logger = logging.getLogger(__name__)

# Rejects that are expected in healthy data and do not count towards max_reject_share.
BENIGN_REASONS = {"duplicate_text"}


@dataclass
class PhotoRecord:
    """A photo that passed every check."""

    image_path: str
    width: int
    height: int
    phash: str


@dataclass
class Collected:
    """Rows gathered from every source before de-duplication."""

    listings: list[dict[str, Any]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    input_rows: Counter = field(default_factory=Counter)
    input_photos: int = 0
    truncated: int = 0


class PhotoInspector:
    """Checks photos once each (a photo can be shared by reposts) and remembers the result."""

    def __init__(self, limits: PhotoLimits) -> None:
        self.limits = limits
        self._seen: dict[Path, PhotoRecord | PhotoError] = {}

    def inspect(self, root: Path, relative: str) -> PhotoRecord:
        """Return the record of a usable photo, or raise PhotoError."""
        from wildml.dedupe import phash_hex

        path = resolve_inside(root, relative)
        if path not in self._seen:
            try:
                image = load_rgb(path, self.limits)
                self._seen[path] = PhotoRecord(
                    str(path), image.width, image.height, phash_hex(image)
                )
            except PhotoError as err:
                self._seen[path] = err
        result = self._seen[path]
        if isinstance(result, PhotoError):
            raise result
        return result


def run(params_path: str | Path = "params.yaml") -> dict[str, Any]:
    """Run the stage with the ``prepare`` section of a params file; return the report."""
    params = load_params(params_path)
    cfg = section(params, "prepare")
    from wildml.tracking import log_params_flat, start_run

    with start_run("prepare", cfg) as _run:
        log_params_flat({"prepare": params["prepare"], "base": params.get("base", {})})
        report = prepare(cfg)
        _log_report(report, resolve_path(cfg, cfg.get("out_dir", "data/prepared")))
    _raise_if_too_many_rejects(report, cfg)
    return report


def prepare(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run every step of the stage on a merged config; write outputs; return the report."""
    import datasets

    datasets.disable_progress_bars()
    started = time.perf_counter()
    sources = _source_specs(cfg)
    inspector = PhotoInspector(PhotoLimits.from_config(cfg.get("photos")))
    collected = Collected()
    for spec in sources:
        logger.info("reading source %s (%s, %s)", spec.name, spec.kind, spec.path)
        if spec.kind == "listings":
            _collect_listings(spec, cfg, inspector, collected)
        else:
            _collect_photos(spec, inspector, collected)
    listings = pd.DataFrame(collected.listings)
    photos = pd.DataFrame(collected.photos)
    listings, duplicates = _drop_exact_duplicates(listings, cfg, collected)
    listings, photos = _group_and_split(listings, photos, cfg)
    out_dir = resolve_path(cfg, cfg.get("out_dir", "data/prepared"))
    report = _build_report(listings, photos, collected, duplicates, time.perf_counter() - started)
    _write_outputs(out_dir, listings, photos, collected.rejects, report)
    logger.info(
        "prepared %d listings and %d photos in %.1f s; %d rejects -> %s",
        len(listings),
        len(photos),
        report["wall_time_s"],
        len(collected.rejects),
        out_dir,
    )
    return report


def _source_specs(cfg: dict[str, Any]) -> list[SourceSpec]:
    entries = cfg.get("sources")
    if not entries or not isinstance(entries, list):
        raise ConfigError("params: prepare.sources must list at least one source")
    specs = [SourceSpec.from_config(cfg, entry, i) for i, entry in enumerate(entries)]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"params: prepare.sources names must be unique, got {names}")
    return specs


def _collect_listings(
    spec: SourceSpec, cfg: dict[str, Any], inspector: PhotoInspector, collected: Collected
) -> None:
    frame, rejects = load_listing_source(spec)
    collected.rejects.extend(rejects)
    collected.input_rows[spec.name] += len(frame) + len(rejects)
    labels = _parse_labels(frame, spec)
    seen_ids = {row["listing_id"]: row["source"] for row in collected.listings}
    for position, row in enumerate(frame.to_dict("records")):
        record, reject = _listing_record(row, labels[position], spec, cfg, seen_ids)
        if reject is None:
            reject = _attach_photos(record, row, spec, inspector, collected)
        if reject is not None:
            collected.rejects.append(reject)
            continue
        collected.truncated += record.pop("truncated")
        seen_ids[record["listing_id"]] = spec.name
        collected.listings.append(record)


def _parse_labels(frame: pd.DataFrame, spec: SourceSpec) -> list[int]:
    """Parse the label column; unknown values stop the run with the file, column and rows."""
    if "label" not in frame.columns:
        return [UNLABELLED] * len(frame)
    labels, unknown = [], []
    for row, value in zip(frame[ROW], frame["label"], strict=True):
        label = parse_label(value, spec.label_map)
        if label is None:
            unknown.append((row, value))
            label = UNLABELLED
        labels.append(label)
    if unknown:
        column = spec.columns.get("label", "label")
        shown = ", ".join(f"row {row}: {value!r}" for row, value in unknown[:5])
        raise DataError(
            f"{spec.path}: column {column!r} has {len(unknown)} unknown label values ({shown}); "
            "use 1/0 (or true/false, yes/no) or set label_map for this source"
        )
    return labels


def _listing_record(
    row: dict[str, Any],
    label: int,
    spec: SourceSpec,
    cfg: dict[str, Any],
    seen_ids: dict[str, str],
) -> tuple[dict[str, Any], Reject | None]:
    listing_id = str(row.get("listing_id", "")).strip()
    number = int(row[ROW])
    field_error = str(row.get(FIELD_ERROR, "") or "")
    if field_error:
        detail = field_error.removeprefix("bad_field_type: ")
        return {}, Reject(spec.name, number, listing_id, "bad_field_type", detail)
    if not listing_id:
        return {}, Reject(spec.name, number, "", "missing_id", "empty listing_id")
    if listing_id in seen_ids:
        detail = f"listing_id already used in source {seen_ids[listing_id]}"
        return {}, Reject(spec.name, number, listing_id, "duplicate_id", detail)
    product = str(row.get("product", "")).strip().lower().replace(" ", "_").replace("-", "_")
    if label == 1 and not product:
        product = spec.product_default or "unspecified"
    if label != 1:
        product = ""
    if product and not PRODUCT_ID.match(product):
        return {}, Reject(spec.name, number, listing_id, "bad_product", f"product {product!r}")
    record = text_fields(row, cfg)
    record.update(
        listing_id=listing_id,
        source=spec.name,
        label=int(label),
        product=product,
        _row=number,
    )
    record.update({name: str(row.get(name, "")).strip() for name in OPTIONAL_TEXT_FIELDS})
    record["seller_profile"] = normalise_text(row.get("seller_profile", ""))
    detect_or_keep_language(record, row, cfg)
    return record, None


def _attach_photos(
    record: dict[str, Any],
    row: dict[str, Any],
    spec: SourceSpec,
    inspector: PhotoInspector,
    collected: Collected,
) -> Reject | None:
    """Check the listing's photos; broken ones become photo rejects, the listing stays."""
    paths, hashes, photo_rows = [], [], []
    relatives = row.get("images") or []
    collected.input_photos += len(relatives)
    if relatives and spec.images_root is None:
        raise ConfigError(f"params: source {spec.name!r} lists photos but sets no images_root")
    for relative in relatives:
        try:
            photo = inspector.inspect(spec.images_root, relative)
        except PhotoError as err:
            collected.rejects.append(
                Reject(
                    spec.name, record["_row"], record["listing_id"], err.reason, relative, "photo"
                )
            )
            continue
        if photo.image_path in paths:
            continue
        paths.append(photo.image_path)
        hashes.append(photo.phash)
        photo_rows.append(_photo_row(photo, spec.name, record))
    if not record["text"] and not paths:
        reason = "no_text_no_usable_photo" if relatives else "empty_listing"
        detail = (
            f"{len(relatives)} photos listed, none usable" if relatives else "no text, no photo"
        )
        return Reject(spec.name, record["_row"], record["listing_id"], reason, detail)
    record["image_paths"], record["image_hashes"] = paths, hashes
    collected.photos.extend(photo_rows)
    return None


def _photo_row(photo: PhotoRecord, source: str, record: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "image_path": photo.image_path,
        "listing_id": record["listing_id"] if record else "",
        "source": source,
        "photo_class": "",
        "listing_label": record["label"] if record else UNLABELLED,
        "listing_product": record["product"] if record else "",
        "width": photo.width,
        "height": photo.height,
        "phash": photo.phash,
    }


def _collect_photos(spec: SourceSpec, inspector: PhotoInspector, collected: Collected) -> None:
    frame, rejects = load_photo_source(spec)
    collected.rejects.extend(rejects)
    collected.input_photos += len(frame) + len(rejects)
    if spec.images_root is None:
        raise ConfigError(f"params: photo source {spec.name!r} needs images_root")
    for row in frame.to_dict("records"):
        number, relative = int(row[ROW]), str(row.get("image", "")).strip()
        photo_class = str(row.get("photo_class", "")).strip().lower()
        if row.get(FIELD_ERROR):
            detail = str(row[FIELD_ERROR]).removeprefix("bad_field_type: ")
            collected.rejects.append(
                Reject(spec.name, number, "", "bad_field_type", detail, "photo")
            )
            continue
        if not photo_class:
            collected.rejects.append(
                Reject(spec.name, number, "", "missing_class", relative, "photo")
            )
            continue
        try:
            photo = inspector.inspect(spec.images_root, relative)
        except PhotoError as err:
            collected.rejects.append(Reject(spec.name, number, "", err.reason, relative, "photo"))
            continue
        entry = _photo_row(photo, spec.name, None)
        entry.update(photo_class=photo_class, _node=f"photo:{spec.name}:{number}")
        collected.photos.append(entry)


def _drop_exact_duplicates(
    listings: pd.DataFrame, cfg: dict[str, Any], collected: Collected
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Keep the first of each set of identical texts that agree on the label."""
    info: dict[str, Any] = {"exact_groups": 0, "exact_dropped": 0, "label_conflicts": 0}
    if listings.empty:
        return listings, info
    keys = listings["text"].map(lambda text: text_key(text) if text else "")
    listings = listings.assign(_text_key=keys)
    drop = (cfg.get("dedupe") or {}).get("drop_exact", True)
    keep = pd.Series(True, index=listings.index)
    for members in listings[listings["_text_key"] != ""].groupby("_text_key").groups.values():
        if len(members) < 2:
            continue
        info["exact_groups"] += 1
        group = listings.loc[members]
        if group["label"].nunique() > 1:
            info["label_conflicts"] += 1
            continue
        if not drop:
            continue
        first = group.iloc[0]
        for index in members[1:]:
            keep[index] = False
            row = listings.loc[index]
            collected.rejects.append(
                Reject(
                    row["source"],
                    int(row["_row"]),
                    row["listing_id"],
                    "duplicate_text",
                    f"same text as {first['listing_id']}",
                )
            )
    info["exact_dropped"] = int((~keep).sum())
    kept_ids = set(listings.loc[keep, "listing_id"])
    collected.photos = [
        photo
        for photo in collected.photos
        if not photo["listing_id"] or photo["listing_id"] in kept_ids
    ]
    return listings[keep].reset_index(drop=True), info


def _group_and_split(
    listings: pd.DataFrame, photos: pd.DataFrame, cfg: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join duplicates into groups (text, photo, seller) and split by group."""
    dedupe_cfg = cfg.get("dedupe") or {}
    photos = _photos_after_dedupe(photos, listings)
    nodes = list(listings["listing_id"]) if not listings.empty else []
    manifest_nodes = list(photos["_node"].dropna()) if "_node" in photos else []
    union = UnionFind(nodes + manifest_nodes)
    text_pairs = _text_pairs(listings, dedupe_cfg, int(cfg.get("seed", 0)))
    for first, second in text_pairs:
        union.union(first, second)
    owners = _photo_owners(photos)
    distance = int(dedupe_cfg.get("phash_distance", 4))
    photo_pairs = near_identical_photos(
        list(photos["phash"]) if not photos.empty else [], distance
    )
    for first, second in photo_pairs:
        union.union(owners[first], owners[second])
    for column in (cfg.get("split") or {}).get("group_by", []) or []:
        _union_by_column(union, listings, column)
    groups = union.groups()
    strata = _strata(listings, int((cfg.get("split") or {}).get("min_stratum", 5)))
    photo_strata = (
        [f"photo|{c}" for c in photos.loc[photos["_node"].notna(), "photo_class"]]
        if manifest_nodes
        else []
    )
    split_cfg = cfg.get("split") or {}
    assignment = grouped_split(
        [groups[n] for n in nodes + manifest_nodes],
        strata + photo_strata,
        validation=float(split_cfg.get("validation", 0.15)),
        test=float(split_cfg.get("test", 0.2)),
        seed=int(cfg.get("seed", 0)),
    )
    split_of = dict(zip(nodes + manifest_nodes, assignment, strict=True))
    listings = listings.assign(
        group_id=[groups[n] for n in nodes], split=[split_of[n] for n in nodes]
    )
    photos = photos.assign(
        group_id=[groups[o] for o in owners], split=[split_of[o] for o in owners]
    )
    listings.attrs["near_duplicate_pairs"] = len(text_pairs)
    listings.attrs["photo_duplicate_pairs"] = len(photo_pairs)
    return listings, photos


def _strata(listings: pd.DataFrame, min_size: int) -> list[str]:
    """Stratum per listing: label x product x language, coarsened where a cell is too small.

    A cell with fewer than ``min_size`` listings cannot be spread over three splits, so it
    falls back to label x product, then to the label alone.
    """
    if listings.empty:
        return []
    fine = listings["label"].astype(str) + "|" + listings["product"] + "|" + listings["lang"]
    middle = listings["label"].astype(str) + "|" + listings["product"]
    coarse = listings["label"].astype(str)
    fine_size, middle_size = fine.map(fine.value_counts()), middle.map(middle.value_counts())
    chosen = fine.where(fine_size >= min_size, middle.where(middle_size >= min_size, coarse))
    return list(chosen)


def _photos_after_dedupe(photos: pd.DataFrame, listings: pd.DataFrame) -> pd.DataFrame:
    if photos.empty:
        return pd.DataFrame(columns=["image_path", "listing_id", "phash", "_node", "photo_class"])
    if "_node" not in photos:
        photos = photos.assign(_node=None)
    kept = set(listings["listing_id"]) if not listings.empty else set()
    mask = photos["_node"].notna() | photos["listing_id"].isin(kept)
    return photos[mask].reset_index(drop=True)


def _photo_owners(photos: pd.DataFrame) -> list[str]:
    if photos.empty:
        return []
    return [
        node if isinstance(node, str) else listing_id
        for node, listing_id in zip(photos["_node"], photos["listing_id"], strict=True)
    ]


def _text_pairs(listings: pd.DataFrame, dedupe_cfg: dict[str, Any], seed: int) -> list:
    if listings.empty:
        return []
    pairs = near_duplicate_pairs(
        list(listings["listing_id"]),
        list(listings["text"]),
        shingle=int(dedupe_cfg.get("shingle", 5)),
        num_perm=int(dedupe_cfg.get("num_perm", 128)),
        threshold=float(dedupe_cfg.get("threshold", 0.8)),
        seed=seed or 1,
    )
    # Exact duplicates that were kept (conflicting labels) are near-duplicates too.
    for _key, members in listings[listings["_text_key"] != ""].groupby("_text_key"):
        ids = list(members["listing_id"])
        pairs.extend((ids[0], other) for other in ids[1:])
    return pairs


def _union_by_column(union: UnionFind, listings: pd.DataFrame, column: str) -> None:
    if column not in listings:
        raise ConfigError(f"params: prepare.split.group_by names unknown field {column!r}")
    for (_source, value), members in listings.groupby(["source", column]):
        if str(value).strip():
            ids = list(members["listing_id"])
            for other in ids[1:]:
                union.union(ids[0], other)


def _build_report(
    listings: pd.DataFrame,
    photos: pd.DataFrame,
    collected: Collected,
    duplicates: dict[str, Any],
    wall_time: float,
) -> dict[str, Any]:
    rejects = pd.DataFrame([r.as_dict() for r in collected.rejects])
    listing_rejects = rejects[rejects["item"] == "listing"] if not rejects.empty else rejects
    input_total = sum(collected.input_rows.values())
    bad = (
        0
        if listing_rejects.empty
        else int((~listing_rejects["reason"].isin(BENIGN_REASONS)).sum())
    )
    groups = listings["group_id"].value_counts() if not listings.empty else pd.Series(dtype=int)
    return {
        "input_rows": dict(collected.input_rows),
        "input_rows_total": input_total,
        "input_photos": collected.input_photos,
        "listings": len(listings),
        "photos": len(photos),
        "rows_accounted": int(len(listings) + len(listing_rejects)),
        "rejects": {
            "listings": _counts(listing_rejects, "reason"),
            "photos": _counts(
                rejects[rejects["item"] == "photo"] if not rejects.empty else rejects, "reason"
            ),
            "listing_reject_share": (bad / input_total) if input_total else 0.0,
        },
        "duplicates": {
            **duplicates,
            "near_duplicate_pairs": int(listings.attrs.get("near_duplicate_pairs", 0)),
            "photo_duplicate_pairs": int(listings.attrs.get("photo_duplicate_pairs", 0)),
            "groups_with_several_listings": int((groups > 1).sum()),
            "largest_group": int(groups.max()) if len(groups) else 0,
        },
        "languages": _language_counts(listings),
        "truncated_texts": int(collected.truncated),
        "splits": _split_counts(listings, photos),
        "counts": _cell_counts(listings),
        "wall_time_s": round(wall_time, 2),
    }


def _language_counts(listings: pd.DataFrame) -> dict[str, Any]:
    """Language sources of the kept listings (after duplicates are dropped), so the counts
    describe the prepared data rather than the input rows."""
    if listings.empty:
        return {"counted_on": "kept_listings", "detected": 0, "unknown_given": {}}
    unknown = listings.loc[listings["lang_unknown"] != "", "lang_unknown"]
    return {
        "counted_on": "kept_listings",
        "detected": int((listings["lang_source"] == "detected").sum()),
        "unknown_given": {str(k): int(v) for k, v in unknown.value_counts().sort_index().items()},
    }


def _counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
    if frame.empty:
        return {}
    return {str(k): int(v) for k, v in frame[column].value_counts().sort_index().items()}


def _split_counts(listings: pd.DataFrame, photos: pd.DataFrame) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for split in SPLITS:
        part = listings[listings["split"] == split] if not listings.empty else listings
        photo_part = photos[photos["split"] == split] if not photos.empty else photos
        result[split] = {
            "listings": len(part),
            "positives": int((part["label"] == 1).sum()) if not part.empty else 0,
            "unlabelled": int((part["label"] == UNLABELLED).sum()) if not part.empty else 0,
            "with_photo": int((part["image_paths"].map(len) > 0).sum()) if not part.empty else 0,
            "photos": len(photo_part),
            "photo_classes": _counts(photo_part[photo_part["photo_class"] != ""], "photo_class")
            if not photo_part.empty
            else {},
        }
    return result


def _cell_counts(listings: pd.DataFrame) -> list[dict[str, Any]]:
    """Counts per split x label x language x product, as flat records."""
    if listings.empty:
        return []
    table = (
        listings.groupby(["split", "label", "lang", "product"]).size().reset_index(name="count")
    )
    return [
        {
            "split": r.split,
            "label": int(r.label),
            "lang": r.lang,
            "product": r.product,
            "count": int(r.count),
        }
        for r in table.itertuples()
    ]


LISTING_COLUMNS = (
    "listing_id", "source", "text", "text_original", "seller_profile", "lang", "lang_source",
    "label", "product", "image_paths", "image_hashes", "group_id", "seller_id", "platform",
    "url", "posted_at", "price", "currency", "country", "split",
)  # fmt: skip
PHOTO_COLUMNS = (
    "image_path", "listing_id", "source", "photo_class", "listing_label", "listing_product",
    "width", "height", "phash", "group_id", "split",
)  # fmt: skip


def _features(kind: str):
    from datasets import Features, Sequence, Value

    if kind == "listings":
        spec = {name: Value("string") for name in LISTING_COLUMNS}
        spec["label"] = Value("int64")
        spec["image_paths"] = Sequence(Value("string"))
        spec["image_hashes"] = Sequence(Value("string"))
    else:
        spec = {name: Value("string") for name in PHOTO_COLUMNS}
        for name in ("listing_label", "width", "height"):
            spec[name] = Value("int64")
    return Features(spec)


def _dataset_dict(frame: pd.DataFrame, columns: tuple[str, ...], kind: str):
    from datasets import Dataset, DatasetDict

    features = _features(kind)
    parts = {}
    for split in SPLITS:
        part = frame[frame["split"] == split] if not frame.empty else frame
        data = {name: list(part[name]) if name in part else [] for name in columns}
        parts[split] = Dataset.from_dict(data, features=features)
    return DatasetDict(parts)


def _save(dataset_dict, path: Path) -> None:
    # One shard per split, so that an empty split is still written and loads back.
    dataset_dict.save_to_disk(str(path), num_shards={name: 1 for name in dataset_dict})


def _write_outputs(
    out_dir: Path,
    listings: pd.DataFrame,
    photos: pd.DataFrame,
    rejects: list[Reject],
    report: dict[str, Any],
) -> None:
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _save(_dataset_dict(listings, LISTING_COLUMNS, "listings"), staging / "listings")
    _save(_dataset_dict(photos, PHOTO_COLUMNS, "photos"), staging / "photos")
    reject_frame = pd.DataFrame(
        [r.as_dict() for r in rejects],
        columns=["source", "row", "listing_id", "item", "reason", "detail"],
    )
    reject_frame.to_csv(staging / "rejects.csv", index=False)
    (staging / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)


def _log_report(report: dict[str, Any], out_dir: Path) -> None:
    import mlflow

    metrics = {
        "listings": report["listings"],
        "photos": report["photos"],
        "input_rows": report["input_rows_total"],
        "listing_reject_share": report["rejects"]["listing_reject_share"],
        "duplicate_groups": report["duplicates"]["groups_with_several_listings"],
        "exact_duplicates_dropped": report["duplicates"]["exact_dropped"],
        "wall_time_s": report["wall_time_s"],
    }
    for split, counts in report["splits"].items():
        metrics[f"{split}_listings"] = counts["listings"]
        metrics[f"{split}_positives"] = counts["positives"]
        metrics[f"{split}_photos"] = counts["photos"]
    for reason, count in report["rejects"]["listings"].items():
        metrics[f"rejects_{reason}"] = count
    for reason, count in report["rejects"]["photos"].items():
        metrics[f"photo_rejects_{reason}"] = count
    mlflow.log_metrics(metrics)
    mlflow.log_artifact(str(out_dir / "report.json"))
    mlflow.log_artifact(str(out_dir / "rejects.csv"))


def _raise_if_too_many_rejects(report: dict[str, Any], cfg: dict[str, Any]) -> None:
    share = report["rejects"]["listing_reject_share"]
    limit = float(cfg.get("max_reject_share", 0.2))
    if share > limit:
        raise RejectThresholdError(
            f"prepare rejected {share:.1%} of input listings (limit prepare.max_reject_share = "
            f"{limit:.0%}); reasons: {report['rejects']['listings']}. See rejects.csv in "
            f"{cfg.get('out_dir', 'data/prepared')}"
        )
