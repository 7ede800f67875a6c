"""Readers for CSV, JSON Lines and Parquet, including arbitrary Unicode."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wildml.contract import SourceSpec
from wildml.errors import DataError
from wildml.readers import load_listing_source, read_table

ROWS = [
    {"id": "007", "body": "象牙手镯 出售", "label": "1", "pics": "a.jpg;b.jpg"},
    {"id": "008", "body": "Vòng tay nhựa giả ngà, màu trắng", "label": "0", "pics": ""},
    {"id": "009", "body": 'quote " comma , and\nnewline', "label": "0", "pics": "c.jpg"},
]


def write(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in frame.to_dict("records")),
            encoding="utf-8",
        )
    else:
        frame.to_parquet(path, index=False)
    return path


def spec_for(path: Path, fmt: str) -> SourceSpec:
    cfg = {"_params_dir": str(path.parent)}
    entry = {
        "name": "t",
        "path": str(path),
        "format": fmt,
        "columns": {"listing_id": "id", "text": "body"},
        "image_column": "pics",
        "images_root": str(path.parent),
    }
    return SourceSpec.from_config(cfg, entry, 0)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_three_formats_read_the_same(tmp_path, fmt):
    path = write(pd.DataFrame(ROWS), tmp_path / f"listings.{fmt}", fmt)
    frame, rejects = load_listing_source(spec_for(path, fmt))
    assert rejects == []
    assert list(frame["listing_id"]) == ["007", "008", "009"]  # leading zeros kept
    assert frame.loc[2, "text"] == 'quote " comma , and\nnewline'
    assert list(frame["images"]) == [["a.jpg", "b.jpg"], [], ["c.jpg"]]
    assert list(frame["_row"]) == [1, 2, 3]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(
        st.text(
            # U+10FF80 and above is reserved by the readers to mark bytes that are not UTF-8.
            alphabet=st.characters(
                blacklist_categories=["Cs"], blacklist_characters="\r", max_codepoint=0x10FF7F
            ),
            max_size=40,
        ),
        min_size=1,
        max_size=5,
    ),
    fmt=st.sampled_from(["csv", "jsonl", "parquet"]),
)
def test_arbitrary_unicode_round_trips(tmp_path, texts, fmt):
    frame = pd.DataFrame({"id": [f"x{i}" for i in range(len(texts))], "body": texts, "pics": ""})
    path = write(frame, tmp_path / f"u.{fmt}", fmt)
    read, rejects = load_listing_source(spec_for(path, fmt))
    assert rejects == []
    assert list(read["text"]) == texts


def test_undecodable_row_is_rejected_not_fatal(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,body\n1,good text\n2,bad \xff\xfe bytes\n3,more\n")
    frame, rejects = read_table(path, "csv", source="s")
    assert list(frame["id"]) == ["1", "3"]
    assert [(r.row, r.reason) for r in rejects] == [(2, "undecodable_bytes")]


def test_bad_json_line_is_rejected(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "1", "body": "ok"}\n{broken\n[1, 2]\n{"id": "4", "body": "x"}\n')
    frame, rejects = read_table(path, "jsonl", source="s")
    assert list(frame["id"]) == ["1", "4"]
    assert [(r.row, r.reason) for r in rejects] == [(2, "bad_json"), (3, "bad_json")]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), (b"", "empty"), (b"PAR1garbage", "not a readable Parquet")],
)
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "in.parquet"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_table(path, "parquet")
    assert "in.parquet" in str(err.value)


def test_missing_mapped_column_names_file_and_column(tmp_path):
    path = write(pd.DataFrame(ROWS), tmp_path / "l.csv", "csv")
    spec = spec_for(path, "csv")
    spec.columns["seller_id"] = "vendor"
    with pytest.raises(DataError, match=r"l\.csv: column 'vendor' \(mapped to 'seller_id'\)"):
        load_listing_source(spec)


# ---- lists and mappings in contract fields ----------------------------------------------

BAD_TYPES = [
    {"id": "1", "body": "fine text", "extra": ["a", "b"], "meta": None, "pics": ["p1.jpg"]},
    {"id": "2", "body": "more text", "extra": None, "meta": {"x": 1}, "pics": ["p2.jpg"]},
    {"id": "3", "body": "plain text", "extra": None, "meta": None, "pics": []},
]


def write_records(records: list[dict], path: Path, fmt: str) -> Path:
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_list_or_mapping_in_a_text_field_is_named_not_coerced(tmp_path, fmt):
    path = write_records(BAD_TYPES, tmp_path / f"l.{fmt}", fmt)
    spec = spec_for(path, fmt)
    spec.columns.update(description="extra", title="meta")
    frame, rejects = load_listing_source(spec)
    assert rejects == []
    assert list(frame["_field_error"]) == [
        "bad_field_type: 'description' (column 'extra') is a list",
        "bad_field_type: 'title' (column 'meta') is a mapping",
        "",
    ]
    # The bad cells are blanked, never turned into "['a', 'b']" or '{"x": 1}'.
    assert list(frame["description"]) == ["", "", ""]
    assert list(frame["title"]) == ["", "", ""]
    assert list(frame["text"]) == ["fine text", "more text", "plain text"]
    # A photo column may hold a list.
    assert list(frame["images"]) == [["p1.jpg"], ["p2.jpg"], []]


def test_jsonl_text_list_and_id_mapping_are_both_named(tmp_path):
    records = [
        {"listing_id": {"n": 7}, "text": ["ivory", "bangle"]},
        {"listing_id": "8", "text": "ivory bangle", "price": 12.5, "seller_id": True},
    ]
    path = write_records(records, tmp_path / "l.jsonl", "jsonl")
    spec = SourceSpec.from_config(
        {"_params_dir": str(tmp_path)}, {"name": "t", "path": str(path)}, 0
    )
    frame, _ = load_listing_source(spec)
    assert frame.loc[0, "_field_error"] == (
        "bad_field_type: 'listing_id' is a mapping; 'text' is a list"
    )
    assert frame.loc[1, "_field_error"] == ""
    assert (frame.loc[1, "price"], frame.loc[1, "seller_id"]) == ("12.5", "1")


def test_field_error_column_is_always_present(tmp_path):
    path = write(pd.DataFrame(ROWS), tmp_path / "l.csv", "csv")
    frame, _ = load_listing_source(spec_for(path, "csv"))
    assert list(frame["_field_error"]) == ["", "", ""]


# ---- a separate photo table is read once per file state ---------------------------------


def image_table_spec(tmp_path: Path) -> SourceSpec:
    pd.DataFrame({"id": ["1", "2"], "body": ["a text", "b text"]}).to_csv(
        tmp_path / "l.csv", index=False
    )
    entry = {
        "name": "t",
        "path": "l.csv",
        "columns": {"listing_id": "id", "text": "body"},
        "images_root": ".",
        "image_table": {"path": "photos.csv", "key": "post", "image": "file"},
    }
    return SourceSpec.from_config({"_params_dir": str(tmp_path)}, entry, 0)


def test_photo_table_is_read_once_and_again_when_it_changes(tmp_path, monkeypatch):
    from wildml import readers

    table = tmp_path / "photos.csv"
    table.write_text("post,file\n1,a.jpg\n2,b.jpg\n1,c.jpg\n", encoding="utf-8")
    spec = image_table_spec(tmp_path)
    frame, _ = readers.read_table(spec.path, "csv")
    reads: list[Path] = []
    real_read_table = readers.read_table

    def counting_read_table(path, fmt, **kwargs):
        reads.append(Path(path))
        return real_read_table(path, fmt, **kwargs)

    monkeypatch.setattr(readers, "read_table", counting_read_table)
    first = readers.listing_fields(frame, spec)
    second = readers.listing_fields(frame, spec)
    assert list(first["images"]) == list(second["images"]) == [["a.jpg", "c.jpg"], ["b.jpg"]]
    assert reads == [table]

    table.write_text("post,file\n2,d.jpg\n", encoding="utf-8")
    third = readers.listing_fields(frame, spec)
    assert list(third["images"]) == [[], ["d.jpg"]]
    assert reads == [table, table]

    # Same size, new content: the modification time tells.
    table.write_text("post,file\n2,e.jpg\n", encoding="utf-8")
    stat = table.stat()
    os.utime(table, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert list(readers.listing_fields(frame, spec)["images"]) == [[], ["e.jpg"]]
    assert len(reads) == 3
