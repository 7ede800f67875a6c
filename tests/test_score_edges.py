"""Edge cases of scoring: outputs that would destroy inputs, link loops, binary text columns,
duplicates through the Python API, MLflow parameters and forged bytecode caches."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import shutil
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from test_score_support import SAMPLE, trained_project
from wildml.errors import ConfigError, PackageIntegrityError
from wildml.photos import PhotoError, resolve_inside
from wildml.score_cli import check_output_path
from wildml.score_manifest import verify_package
from wildml.score_stream import ScoreJob, score_inputs


@pytest.fixture(scope="module")
def package(tmp_path_factory, mlflow_store) -> Path:
    return trained_project(tmp_path_factory, mlflow_store) / "models" / "scorer"


def run_cli(monkeypatch, *args: str) -> int:
    from wildml import cli

    monkeypatch.setattr(sys, "argv", ["wildml", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code


# --------------------------------------------------------------------------------------------
# Output paths (no models needed)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--out", "--report"])
def test_an_output_that_is_an_input_is_refused(tmp_path, option):
    listings = tmp_path / "in.csv"
    listings.write_text("listing_id,text\na,ivory\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{option} .* would overwrite the input"):
        check_output_path(option, tmp_path / "." / "in.csv", [listings])
    assert listings.read_text(encoding="utf-8") == "listing_id,text\na,ivory\n"


def test_an_output_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "in.csv"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_path("--out", blocker / "deeper" / "queue.csv", [])
    with pytest.raises(ConfigError, match="is a folder"):
        check_output_path("--out", tmp_path, [])
    check_output_path("--out", tmp_path / "new" / "dir" / "queue.csv", [])  # created later


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_an_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot write"):
            check_output_path("--out", locked / "queue.csv", [])
    finally:
        locked.chmod(0o700)


def test_cli_refuses_to_overwrite_its_input_with_exit_2(tmp_path, monkeypatch):
    listings = tmp_path / "in.csv"
    listings.write_text("listing_id,text\na,ivory bangle\n", encoding="utf-8")
    code = run_cli(monkeypatch, "score", str(listings), "--out", str(listings))
    assert code == 2
    assert listings.read_text(encoding="utf-8") == "listing_id,text\na,ivory bangle\n"


def test_link_loop_is_a_bad_path_not_a_crash(tmp_path):
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    with pytest.raises(PhotoError) as caught:
        resolve_inside(tmp_path, "loop.jpg")
    assert caught.value.reason == "bad_path"


# --------------------------------------------------------------------------------------------
# With the tiny scoring package
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_link_loop_costs_only_its_photo(package, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    listings = tmp_path / "in.csv"
    listings.write_text(
        "listing_id,text,images\na,carved ivory bangle for sale,loop.jpg\nb,blue phone case,\n",
        encoding="utf-8",
    )
    out = tmp_path / "q.csv"
    stats = score_inputs(ScoreJob([listings], package, out, images_root=root, chunk_size=16))
    queue = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    row = queue.set_index("listing_id").loc["a"]
    assert row["status"] == "scored_without_photo"
    assert "bad_path" in row["reason"]
    assert stats.exit_code == 1
    assert len(queue) == 2


@pytest.mark.slow
def test_a_rejected_file_leaves_no_checkpoint(package, tmp_path, monkeypatch):
    listings = tmp_path / "in.csv"
    listings.write_text("id,price\nx,5\n", encoding="utf-8")
    out = tmp_path / "q.csv"
    code = run_cli(
        monkeypatch, "score", str(listings), "--package", str(package), "--out", str(out)
    )
    assert code == 2
    assert not out.exists()
    assert not out.with_name("q.csv.checkpoint").exists()


@pytest.mark.slow
def test_binary_parquet_text_is_decoded_or_rejected(package, tmp_path):
    table = pa.table(
        {
            "listing_id": ["good", "bad"],
            "text": pa.array([b"carved ivory bangle", b"\xff\xfe bangle"], pa.binary()),
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    out = tmp_path / "q.csv"
    score_inputs(ScoreJob([path], package, out, images_root=tmp_path, chunk_size=16))
    queue = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    by_id = queue.set_index("listing_id")
    assert by_id.loc["good", "text"] == "carved ivory bangle"
    assert by_id.loc["good", "status"] == "scored"
    assert by_id.loc["bad", "status"] == "rejected"
    assert by_id.loc["bad", "reason"].startswith("undecodable_bytes")


@pytest.mark.slow
def test_python_api_marks_reused_ids_and_repeated_listings(package):
    from wildml import load_scorer

    frame = pd.DataFrame(
        {
            "listing_id": ["a1", "a1", "a2", "a3"],
            "text": [
                "carved ivory bangle for sale",
                "different text",
                "carved ivory bangle for sale",
                "blue phone case",
            ],
        }
    )
    scorer = load_scorer(package)
    scored = scorer.score(frame)
    assert scored["status"].tolist() == ["scored", "rejected", "duplicate", "scored"]
    assert scored.loc[1, "reason"] == "duplicate_id"
    assert scored.loc[2, "duplicate_of"] == "a1"
    assert scored["p_final"].notna().tolist() == [True, False, False, True]
    each = scorer.score(frame, mark_duplicates=False)
    assert (each["status"] == "scored").all()
    assert each.loc[0, "p_final"] == each.loc[2, "p_final"]


@pytest.mark.slow
def test_mlflow_params_reach_the_scorer(package):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(package))
    frame = pd.DataFrame(
        {
            "listing_id": ["p1", "p2"],
            "text": ["old carving, see photo", "old carving, see photo"],
            "images": ["photos/ivory_000.jpg", "photos/ivory_001.jpg"],
        }
    )
    rooted = model.predict(frame, params={"images_root": str(SAMPLE), "mark_duplicates": False})
    assert rooted["n_photos_usable"].tolist() == [1, 1]
    assert (rooted["status"] == "scored").all()
    unrooted = model.predict(frame)
    assert unrooted["n_photos_usable"].tolist() == [0, 0]
    assert unrooted.loc[1, "status"] == "duplicate"


@pytest.mark.slow
def test_a_forged_bytecode_cache_is_refused_and_honest_ones_pass(package, tmp_path):
    import compileall

    copy = tmp_path / "scorer"
    shutil.copytree(package, copy)
    assert compileall.compile_dir(copy / "code", quiet=1)
    verify_package(copy)  # caches Python writes itself are fine

    source = copy / "code" / "wildml" / "score_manifest.py"
    forged = tmp_path / "forged.py"
    forged.write_text(source.read_text(encoding="utf-8") + "\nSKIP = True\n", encoding="utf-8")
    py_compile.compile(
        str(forged),
        cfile=importlib.util.cache_from_source(str(source)),
        dfile=str(source),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    with pytest.raises(PackageIntegrityError, match=r"bytecode cache .*score_manifest"):
        verify_package(copy)


def test_why_line_shows_each_text_feature_once():
    from wildml.score import why_text

    reasons = {
        "kb": [],
        "text": [
            {"feature": "word__ld", "weight": 0.9},
            {"feature": "char__ld", "weight": 0.8},
            {"feature": "word__bangle", "weight": 0.5},
            {"feature": "word__phone", "weight": -0.7},
        ],
        "photo": None,
    }
    assert why_text(reasons) == "text: 'ld', 'bangle'"


def test_output_names_a_run_writes_beside_it_are_checked(tmp_path):
    listings = tmp_path / "q.csv.tmp"
    listings.write_text("listing_id,text\na,ivory\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="would overwrite the input"):
        check_output_path("--out", tmp_path / "q.csv", [listings])
    package = tmp_path / "scorer"
    package.mkdir()
    with pytest.raises(ConfigError, match="inside the scoring package"):
        check_output_path("--out", package / "queue.csv", [], package)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"chunk_size": "abc"}, "chunk_size must be a whole number"),
        ({"report": {"max_listings": "many"}}, "max_listings must be a whole number"),
        ({"source": "oops"}, "score.source must be a mapping"),
        ({"source": {"columns": ["a", "b"]}}, "score.source.columns must be a mapping"),
        ({"source": {"delimiter": ";;"}}, "delimiter must be one character"),
    ],
)
def test_bad_score_params_are_config_errors(tmp_path, section, message):
    import yaml

    from wildml.score_cli import build_job

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"score": section}), encoding="utf-8")
    listings = tmp_path / "in.csv"
    listings.write_text("listing_id,text\na,ivory\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        build_job(
            inputs=[listings], package=tmp_path / "pkg", out=tmp_path / "q.csv", params=params
        )


def test_image_table_path_is_relative_to_the_params_file(tmp_path, monkeypatch):
    import yaml

    from wildml.score_cli import build_job

    (tmp_path / "conf").mkdir()
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "photos.csv").write_text("listing_id,image\n", encoding="utf-8")
    params = tmp_path / "conf" / "params.yaml"
    section = {"source": {"image_table": {"path": "../tables/photos.csv", "key": "listing_id"}}}
    params.write_text(yaml.safe_dump({"score": section}), encoding="utf-8")
    listings = tmp_path / "in.csv"
    listings.write_text("listing_id,text\na,ivory\n", encoding="utf-8")
    monkeypatch.chdir("/")
    job = build_job(
        inputs=[listings], package=tmp_path / "pkg", out=tmp_path / "q.csv", params=params
    )
    assert Path(job.source["image_table"]["path"]).resolve() == tmp_path / "tables" / "photos.csv"


def test_deeply_nested_json_costs_only_its_line(tmp_path):
    from wildml.score_stream import _jsonl_rows

    path = tmp_path / "in.jsonl"
    deep = '{"listing_id": "j1", "text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_text(deep + '\n{"listing_id": "j2", "text": "ivory"}\n', encoding="utf-8")
    rows = list(_jsonl_rows(path, None))
    assert rows[0].values is None and rows[0].reason.startswith("bad_json")
    assert rows[1].values == {"listing_id": "j2", "text": "ivory"}


def test_report_thumbnails_skip_names_the_system_refuses(tmp_path):
    from wildml.report import _thumbs

    row = {"photos": "good\x00.jpg;" + "x" * 300 + ".jpg"}
    assert _thumbs(row, tmp_path, 64) == []
    assert _thumbs(row, None, 64) == []


@pytest.mark.parametrize("content", ["[]", '{"format": 1, "files": {"a": "sha"}}'])
def test_a_malformed_manifest_is_an_integrity_error(tmp_path, content):
    (tmp_path / "manifest.json").write_text(content, encoding="utf-8")
    with pytest.raises(PackageIntegrityError, match="not a wildml manifest"):
        verify_package(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("extra", ["hook_in_cache", "linked_folder", "foreign_bytecode"])
def test_content_hidden_beside_caches_or_behind_links_is_refused(package, tmp_path, extra):
    copy = tmp_path / "scorer"
    shutil.copytree(package, copy)
    cache = copy / "code" / "__pycache__"
    cache.mkdir(exist_ok=True)
    if extra == "hook_in_cache":
        (cache / "hook.py").write_text("import os\n", encoding="utf-8")
    elif extra == "linked_folder":
        (cache / "hook").mkdir()
        (copy / "code" / "ahocorasick").symlink_to(cache / "hook")
    else:
        (cache / "mod.cpython-399.pyc").write_bytes(b"\x00\x00\r\n" + bytes(12))
    with pytest.raises(PackageIntegrityError, match="extra file"):
        verify_package(copy)


@pytest.mark.slow
def test_python_api_keeps_a_repeated_index_and_refuses_lists_as_text(package):
    from wildml import load_scorer

    part = pd.DataFrame({"listing_id": ["a", "b"], "text": ["ivory bangle", "phone case"]})
    other = pd.DataFrame({"listing_id": ["c", "d"], "text": [["a", "list"], "old carving"]})
    frame = pd.concat([part, other])  # index 0, 1, 0, 1
    scored = load_scorer(package).score(frame)
    assert scored.index.tolist() == [0, 1, 0, 1]
    assert scored["listing_id"].tolist() == ["a", "b", "c", "d"]
    assert scored["status"].tolist() == ["scored", "scored", "rejected", "scored"]
    assert scored["reason"].iloc[2].startswith("bad_field_type: 'text'")


def test_params_that_are_not_utf8_are_a_config_error(tmp_path):
    from wildml.config import load_params

    params = tmp_path / "params.yaml"
    params.write_bytes(b"\xff\xfe score: 1\n")
    with pytest.raises(ConfigError, match=str(params)):
        load_params(params)


@pytest.mark.slow
def test_a_damaged_checkpoint_chunk_is_scored_again(package, tmp_path):
    listings = tmp_path / "in.csv"
    rows = "".join(f"l{i},carved bangle number {i}\n" for i in range(40))
    listings.write_text("listing_id,text\n" + rows, encoding="utf-8")
    out = tmp_path / "q.csv"
    first = ScoreJob([listings], package, out, images_root=tmp_path, chunk_size=16)
    first.keep_checkpoint = True
    score_inputs(first)
    expected = out.read_bytes()
    chunk = sorted(first.checkpoint_dir.glob("chunk-*.parquet"))[0]
    chunk.write_bytes(chunk.read_bytes()[:50])
    out.unlink()
    score_inputs(ScoreJob([listings], package, out, images_root=tmp_path, chunk_size=16))
    assert out.read_bytes() == expected
