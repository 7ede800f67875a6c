"""The prepare stage end to end on small hand-made sources, one rule at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from datasets import load_from_disk

from conftest import write_photo
from wildml.errors import DataError, RejectThresholdError
from wildml.prepare import run

GOOD = [
    ("a1", "Carved ivory bangle for sale, 58 mm, DM me", "en", "1", "ivory", "p/a1.jpg"),
    ("a2", "出售穿山甲片，一公斤起，价格私聊", "zh", "1", "pangolin_scale", ""),
    ("a3", "Sừng tê giác nguyên chiếc, bao test, liên hệ Zalo", "", "1", "rhino_horn", ""),
    ("a4", "Resin bangle in ivory colour, costume jewellery", "en", "0", "", "p/a4.jpg"),
    ("a5", "Bán điện thoại cũ còn mới 95%, giá tốt", "vi", "0", "", ""),
    ("a6", "Gelang plastik warna putih gading, murah", "id", "0", "", ""),
]


def make_source(tmp_path: Path, rows, **entry) -> Path:
    """Write listings.csv, photos and a params.yaml; return the params path."""
    for index, row in enumerate(rows):
        for image in (row[5] or "").split(";"):
            if image and not image.startswith("..") and "missing" not in image:
                write_photo(tmp_path / image, seed=index)
    frame = pd.DataFrame(
        rows, columns=["listing_id", "text", "lang", "label", "product", "images"]
    )
    frame.to_csv(tmp_path / "listings.csv", index=False)
    source = {"name": "t", "path": "listings.csv", "images_root": ".", "image_column": "images"}
    source.update(entry)
    params = {
        "base": {"seed": 1, "experiment": "test-prepare"},
        "prepare": {
            "out_dir": "prepared",
            "sources": [source],
            "split": {"validation": 0.2, "test": 0.2},
            "max_reject_share": 0.5,
        },
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True))
    return path


def rejects_of(tmp_path: Path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "prepared" / "rejects.csv", keep_default_na=False)


def kept_ids(tmp_path: Path) -> set[str]:
    data = load_from_disk(str(tmp_path / "prepared" / "listings"))
    return {i for split in data.values() for i in split["listing_id"]}


def test_good_rows_are_kept_with_contract_columns(tmp_path):
    report = run(make_source(tmp_path, GOOD))
    data = load_from_disk(str(tmp_path / "prepared" / "listings"))
    assert set(data) == {"train", "validation", "test"}
    assert kept_ids(tmp_path) == {r[0] for r in GOOD}
    rows = {r["listing_id"]: r for split in data.values() for r in split}
    assert rows["a3"]["lang"] == "vi" and rows["a3"]["lang_source"] == "detected"
    assert rows["a1"]["image_paths"][0].endswith("p/a1.jpg")
    assert rows["a4"]["product"] == "" and rows["a2"]["product"] == "pangolin_scale"
    assert report["rows_accounted"] == report["input_rows_total"] == len(GOOD)
    photos = load_from_disk(str(tmp_path / "prepared" / "photos"))
    assert sum(len(split) for split in photos.values()) == 2


@pytest.mark.parametrize(
    ("row", "reason", "item"),
    [
        (("b1", "", "en", "0", "", ""), "empty_listing", "listing"),
        (("a1", "other text with the same id", "en", "0", "", ""), "duplicate_id", "listing"),
        (("", "listing without an id", "en", "0", "", ""), "missing_id", "listing"),
        (("b2", "ivory", "en", "1", "Ivory!", ""), "bad_product", "listing"),
        (("b3", "", "en", "0", "", "../outside.jpg"), "outside_root", "photo"),
        (("b4", "text", "en", "0", "", "p/missing.jpg"), "missing", "photo"),
        (("b5", "text here", "en", "0", "", "p/broken.jpg"), "truncated", "photo"),
        (("b6", "", "en", "0", "", "p/broken.jpg"), "no_text_no_usable_photo", "listing"),
    ],
)
def test_bad_rows_go_to_rejects_with_reason(tmp_path, row, reason, item):
    params = make_source(tmp_path, [*GOOD, row])
    broken = write_photo(tmp_path / "p" / "broken.jpg", size=(200, 200))
    broken.write_bytes(broken.read_bytes()[:400])
    report = run(params)
    rejects = rejects_of(tmp_path)
    assert (reason, item) in set(zip(rejects["reason"], rejects["item"], strict=True))
    listing_rejects = int((rejects["item"] == "listing").sum())
    assert report["listings"] + listing_rejects == len(GOOD) + 1


def test_undecodable_bytes_are_rejected(tmp_path):
    params = make_source(tmp_path, GOOD)
    csv_path = tmp_path / "listings.csv"
    csv_path.write_bytes(csv_path.read_bytes() + b"c1,bad \xff bytes,en,0,,\n")
    run(params)
    assert "undecodable_bytes" in set(rejects_of(tmp_path)["reason"])
    assert "c1" not in kept_ids(tmp_path)


def test_unknown_label_is_an_error_naming_file_and_column(tmp_path):
    params = make_source(tmp_path, [*GOOD, ("x", "text", "en", "maybe", "", "")])
    with pytest.raises(DataError, match=r"listings\.csv: column 'label'.*'maybe'"):
        run(params)


def test_missing_required_column_is_an_error(tmp_path):
    params = make_source(tmp_path, GOOD, columns={"listing_id": "post_id"})
    with pytest.raises(DataError, match=r"listings\.csv: column 'post_id'"):
        run(params)


def test_too_many_rejects_fail_the_stage_after_writing_rejects(tmp_path):
    bad = [(f"e{i}", "", "en", "0", "", "") for i in range(10)]
    with pytest.raises(RejectThresholdError, match="max_reject_share"):
        run(make_source(tmp_path, GOOD + bad))
    assert int((rejects_of(tmp_path)["reason"] == "empty_listing").sum()) == 10


def test_duplicates_are_dropped_or_grouped_never_split(tmp_path):
    base = "Old carved ivory netsuke, Edo style, 4 cm, price by message, worldwide shipping"
    rows = [(f"d{i}", base + ("!" * (i % 3)), "en", "1", "ivory", "") for i in range(12)]
    rows += [
        (f"x{i}", f"Used bicycle number {i} in good condition, pick up only", "en", "0", "", "")
        for i in range(30)
    ]
    rows += [("y0", base, "en", "1", "ivory", "")]  # exact duplicate of d0
    report = run(make_source(tmp_path, rows))
    rejects = rejects_of(tmp_path)
    assert "duplicate_text" in set(rejects["reason"])
    data = load_from_disk(str(tmp_path / "prepared" / "listings"))
    splits_of_d = {s for s, part in data.items() for i in part["listing_id"] if i.startswith("d")}
    assert len(splits_of_d) == 1
    assert report["duplicates"]["groups_with_several_listings"] >= 1
    assert report["rows_accounted"] == len(rows)


def test_report_counts_and_mlflow_run(tmp_path):
    import mlflow

    params = make_source(tmp_path, GOOD)
    config = yaml.safe_load(params.read_text())
    config["base"]["experiment"] = "test-prepare-report"
    params.write_text(yaml.safe_dump(config, allow_unicode=True))
    report = run(params)
    on_disk = json.loads((tmp_path / "prepared" / "report.json").read_text())
    assert on_disk["listings"] == report["listings"] == 6
    assert sum(c["count"] for c in on_disk["counts"]) == 6
    runs = mlflow.search_runs(experiment_names=["test-prepare-report"])
    assert len(runs) == 1
    assert runs.iloc[0]["metrics.listings"] == 6
    assert runs.iloc[0]["tags.wildml.stage"] == "prepare"


def test_photo_manifest_source(tmp_path):
    for i, cls in enumerate(["ivory", "bone", "ceramic"]):
        write_photo(tmp_path / "m" / f"{cls}.jpg", seed=10 + i)
    pd.DataFrame(
        {
            "file": ["m/ivory.jpg", "m/bone.jpg", "m/ceramic.jpg", "m/nothing.jpg"],
            "cls": ["ivory", "bone", "ceramic", "bone"],
        }
    ).to_csv(tmp_path / "manifest.csv", index=False)
    params = make_source(tmp_path, GOOD)
    config = yaml.safe_load(params.read_text())
    config["prepare"]["sources"].append(
        {
            "name": "met",
            "kind": "photos",
            "path": "manifest.csv",
            "images_root": ".",
            "columns": {"image": "file", "photo_class": "cls"},
        }
    )
    params.write_text(yaml.safe_dump(config, allow_unicode=True))
    run(params)
    photos = load_from_disk(str(tmp_path / "prepared" / "photos"))
    classes = sorted(c for split in photos.values() for c in split["photo_class"] if c)
    assert classes == ["bone", "ceramic", "ivory"]
    assert "missing" in set(rejects_of(tmp_path)["reason"])


def jsonl_source(tmp_path: Path, records: list[dict]) -> Path:
    """Write listings.jsonl beside the CSV of GOOD and add it as a second source."""
    params = make_source(tmp_path, GOOD)
    (tmp_path / "listings.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    config = yaml.safe_load(params.read_text())
    config["prepare"]["sources"].append({"name": "j", "path": "listings.jsonl"})
    params.write_text(yaml.safe_dump(config, allow_unicode=True))
    return params


def test_list_or_mapping_in_a_text_field_is_rejected_with_the_field(tmp_path):
    records = [
        {"listing_id": "j1", "text": ["ivory", "bangle"], "label": "1", "product": "ivory"},
        {"listing_id": "j2", "text": "Ivory carving, old", "title": {"x": 1}, "label": "0"},
        {"listing_id": "j3", "text": "Plastic bangle, white colour, cheap", "label": "0"},
    ]
    report = run(jsonl_source(tmp_path, records))
    rejects = rejects_of(tmp_path)
    bad = rejects[rejects["reason"] == "bad_field_type"].set_index("listing_id")
    assert bad.loc["j1", "detail"] == "'text' is a list"
    assert bad.loc["j2", "detail"] == "'title' is a mapping"
    assert {"j1", "j2"}.isdisjoint(kept_ids(tmp_path)) and "j3" in kept_ids(tmp_path)
    assert report["rejects"]["listings"]["bad_field_type"] == 2
    assert report["rows_accounted"] == report["input_rows_total"] == len(GOOD) + 3


def test_language_counts_are_of_kept_listings(tmp_path):
    base = "Ngà voi thật nguyên khối, hàng hiếm, liên hệ để biết giá"
    rows = [
        *GOOD,
        ("l1", base, "", "1", "ivory", ""),
        ("l2", base, "", "1", "ivory", ""),  # exact duplicates of l1: dropped
        ("l6", base, "", "1", "ivory", ""),
        ("l3", "Old ivory chopsticks from an estate sale, pair", "xx", "1", "ivory", ""),
        ("l4", "Gelang gading asli, harga nego, hubungi kami", "Klingon", "1", "ivory", ""),
        ("l5", "Mammoth ivory pendant, certificate included", "EN-us", "1", "ivory", ""),
    ]
    report = run(make_source(tmp_path, rows))
    assert {"l2", "l6"}.isdisjoint(kept_ids(tmp_path))
    # a3, l1, l3 and l4 are detected; the dropped l2 and l6 are not counted
    assert report["languages"]["detected"] == 4
    assert report["languages"]["counted_on"] == "kept_listings"
    assert report["languages"]["unknown_given"] == {"klingon": 1, "xx": 1}
    data = load_from_disk(str(tmp_path / "prepared" / "listings"))
    rows_by_id = {r["listing_id"]: r for split in data.values() for r in split}
    assert (rows_by_id["l5"]["lang"], rows_by_id["l5"]["lang_source"]) == ("en", "given")
    assert (rows_by_id["l3"]["lang"], rows_by_id["l4"]["lang"]) == ("en", "id")
