"""``wildml score`` and ``load_scorer``: every row accounted for, resume, CSV safety, scores."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_score_support import REPO, SAMPLE, cli_env, raw_test_rows, trained_project
from wildml.errors import DataError
from wildml.score_stream import (
    FORMULA_PREFIXES,
    ScoreJob,
    _csv_rows,
    neutralise_cell,
    score_inputs,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_store) -> Path:
    return trained_project(tmp_path_factory, mlflow_store)


@pytest.fixture(scope="module")
def package(project) -> Path:
    return project / "models" / "scorer"


def job(package: Path, inputs: list[Path], out: Path, **kw) -> ScoreJob:
    kw.setdefault("images_root", SAMPLE)
    kw.setdefault("chunk_size", 16)
    return ScoreJob(inputs=inputs, package_dir=package, out_path=out, **kw)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


# --------------------------------------------------------------------------------------------
# Spreadsheet safety (no models needed)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_formula_cells_are_neutralised(prefix):
    assert neutralise_cell(prefix + "SUM(A1)") == "'" + prefix + "SUM(A1)"


@pytest.mark.parametrize("value", ["ivory bangle", "象牙", "", "1+1", 0.5, 3])
def test_other_cells_are_left_alone(value):
    assert neutralise_cell(value) == value


# --------------------------------------------------------------------------------------------
# The bundled messy listings: every row accounted for
# --------------------------------------------------------------------------------------------


def count_records(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for row in csv.reader(handle) if row) - 1


@pytest.mark.slow
def test_every_new_listing_is_accounted_for(package, tmp_path):
    out = tmp_path / "queue.csv"
    stats = score_inputs(job(package, [SAMPLE / "new_listings.csv"], out))
    queue = read_csv(out)
    n_input = count_records(SAMPLE / "new_listings.csv")
    assert len(queue) == n_input == stats.rows
    assert sorted(queue["row"].astype(int)) == list(range(1, n_input + 1))
    assert queue["priority"].astype(int).tolist() == list(range(1, n_input + 1))
    assert stats.exit_code == 1  # the sample holds broken photos and rejected rows
    by_status = queue.set_index("row")["status"]
    assert (by_status == "rejected").sum() == 2
    reasons = " ".join(queue["reason"])
    for reason in ("outside_root", "truncated", "missing", "duplicate_id", "empty_listing"):
        assert reason in reasons
    scored = queue[queue["status"].str.startswith("scored")]
    assert scored["p_final"].astype(float).between(0, 1).all()
    assert set(scored["tier"]) <= {"urgent", "review", "low"}
    # Output is sorted by tier, then probability.
    rank = scored["tier"].map({"urgent": 0, "review": 1, "low": 2}).to_numpy()
    assert (np.diff(rank) >= 0).all()
    for tier in ("urgent", "review", "low"):
        p = scored.loc[scored["tier"] == tier, "p_final"].astype(float).to_numpy()
        assert (np.diff(p) <= 0).all()
    reasons_json = [json.loads(r) for r in scored["reasons"]]
    assert all({"kb", "text", "photo"} <= set(r) for r in reasons_json)
    assert all(why for why in scored["why"])


@pytest.mark.slow
def test_reasons_carry_kb_spans_into_the_original_text(package, tmp_path):
    out = tmp_path / "queue.jsonl"
    score_inputs(job(package, [SAMPLE / "new_listings.csv"], out))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    spans = 0
    for row in rows:
        for ev in json.loads(row["reasons"] or "{}").get("kb", []):
            assert row["text"][ev["start"] : ev["end"]] == ev["matched_text"]
            spans += 1
    assert spans >= 10
    guessed = {row["product_guess"] for row in rows} - {""}
    assert guessed >= {"ivory", "pangolin_scale", "rhino_horn"}


def write_mixed_inputs(folder: Path) -> tuple[Path, Path]:
    """A CSV and a JSON Lines file with good rows, broken rows and duplicates."""
    csv_path = folder / "mixed.csv"
    csv_path.write_bytes(
        b"listing_id,title,description,lang,images\r\n"
        b"m1,ivory bangle old,genuine ivory bangle for sale,en,photos/ivory_000.jpg\r\n"
        b"m2,too,many,fields,here,extra\r\n"
        b"m3,plain phone case,blue phone case,en,\r\n"
        b"m4,plain phone case,blue phone case,en,\r\n"
        b",no id here,text,en,\r\n"
        b"m6,,,,\r\n"
        b"m7,bad \xff bytes,desc,en,\r\n"
        b"m1,reused id,another text,en,\r\n"
    )
    jsonl_path = folder / "mixed.jsonl"
    jsonl_path.write_text(
        '{"listing_id": "j1", "text": "v\\u00f2ng ng\\u00e0 voi", "lang": "vi"}\n'
        "{not json\n"
        '{"listing_id": "j3", "text": "plain phone case blue phone case", "lang": "en"}\n'
        '{"listing_id": "j4", "text": "", "images": ["photos/broken_truncated.jpg"]}\n',
        encoding="utf-8",
    )
    return csv_path, jsonl_path


@pytest.mark.slow
def test_broken_rows_and_duplicates_each_get_a_status(package, tmp_path):
    csv_path, jsonl_path = write_mixed_inputs(tmp_path)
    out = tmp_path / "queue.parquet"
    stats = score_inputs(job(package, [csv_path, jsonl_path], out, chunk_size=3))
    queue = pd.read_parquet(out)
    assert len(queue) == 8 + 4 == stats.rows
    status = {(r.source_file, int(r.row)): (r.status, r.reason) for r in queue.itertuples()}
    assert status[("mixed.csv", 1)][0] == "scored"
    assert status[("mixed.csv", 2)] == (
        "rejected",
        "unreadable_row: line 3 has more fields than the header",
    )
    assert status[("mixed.csv", 3)][0] == "scored"
    assert status[("mixed.csv", 4)] == ("duplicate", "exact_duplicate")
    assert status[("mixed.csv", 5)] == ("rejected", "missing_id")
    assert status[("mixed.csv", 6)] == ("rejected", "empty_listing")
    assert status[("mixed.csv", 7)] == ("rejected", "undecodable_bytes")
    assert status[("mixed.csv", 8)] == ("rejected", "duplicate_id")
    assert status[("mixed.jsonl", 2)] == ("rejected", "bad_json")
    assert status[("mixed.jsonl", 3)] == ("duplicate", "exact_duplicate")
    assert status[("mixed.jsonl", 4)][0] == "rejected"
    assert "truncated" in status[("mixed.jsonl", 4)][1]
    dup = queue[(queue["source_file"] == "mixed.jsonl") & (queue["row"] == 3)]
    assert dup["duplicate_of"].item() == "m3"
    assert stats.exit_code == 1


@pytest.mark.slow
def test_formula_and_markup_come_out_harmless_in_csv(package, tmp_path):
    listings = tmp_path / "evil.csv"
    pd.DataFrame(
        {
            "listing_id": ["=1+2", "+cmd", "-x", "@SUM(A1)", "\tx", "ok"],
            "text": [
                '=HYPERLINK("http://example.com","click") ivory',
                "+cmd|' /C calc'!A0 pangolin scales",
                "-2+3 rhino horn",
                "@SUM(1+1) old bangle",
                "\tivory",
                "<script>alert(1)</script> ivory bangle",
            ],
            "seller_id": ["=evil()", "", "", "", "", "\rx"],
        }
    ).to_csv(listings, index=False)
    out = tmp_path / "queue.csv"
    score_inputs(job(package, [listings], out))
    with out.open(encoding="utf-8-sig", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert cells, "empty output"
    assert not [c for c in cells if c.startswith(FORMULA_PREFIXES)]
    assert "'=HYPERLINK(" in " ".join(cells)
    assert "<script>alert(1)</script> ivory bangle" in cells


# --------------------------------------------------------------------------------------------
# Resume after SIGKILL
# --------------------------------------------------------------------------------------------


def bigger_input(folder: Path, copies: int = 3) -> Path:
    """new_listings.csv repeated with distinct ids and texts, so no row is a duplicate."""
    raw = pd.read_csv(SAMPLE / "new_listings.csv", dtype=str, keep_default_na=False)
    parts = []
    for copy in range(copies):
        part = raw.copy()
        part["listing_id"] = [f"{i}-c{copy}" if i else "" for i in part["listing_id"]]
        part["description"] = [f"{d} #{copy}" if d else d for d in part["description"]]
        parts.append(part)
    path = folder / "listings.csv"
    pd.concat(parts).to_csv(path, index=False)
    return path


def score_command(package: Path, listings: Path, out: Path) -> list[str]:
    return [
        str(REPO / ".venv" / "bin" / "wildml"),
        "score",
        str(listings),
        "--package",
        str(package),
        "--out",
        str(out),
        "--images-root",
        str(SAMPLE),
        "--chunk-size",
        "8",
    ]


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_output(package, tmp_path):
    listings = bigger_input(tmp_path)
    reference = tmp_path / "reference.csv"
    score_inputs(job(package, [listings], reference, chunk_size=8))

    out = tmp_path / "queue.csv"
    checkpoint = out.with_name(out.name + ".checkpoint")
    command = score_command(package, listings, out)
    proc = subprocess.Popen(command, env=cli_env(), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(checkpoint.glob("chunk-*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(checkpoint.glob("chunk-*.parquet")))
    assert not out.exists()
    assert 2 <= done < 23  # 183 rows in chunks of 8

    resumed = subprocess.run(command, env=cli_env(), capture_output=True, text=True)
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    assert f"resuming from {checkpoint}" in resumed.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert not checkpoint.exists()


@pytest.mark.slow
def test_changed_input_invalidates_the_checkpoint(package, tmp_path):
    listings = tmp_path / "l.csv"
    pd.DataFrame({"listing_id": ["a", "b"], "text": ["ivory bangle", "phone"]}).to_csv(
        listings, index=False
    )
    out = tmp_path / "q.csv"
    first = job(package, [listings], out, chunk_size=1, keep_checkpoint=True)
    score_inputs(first)
    # Same command after the file changed: the old chunks must not be reused.
    pd.DataFrame({"listing_id": ["a", "b"], "text": ["phone", "ivory bangle"]}).to_csv(
        listings, index=False
    )
    score_inputs(first)
    queue = read_csv(out).set_index("listing_id")
    assert queue.loc["b", "text"] == "ivory bangle"


# --------------------------------------------------------------------------------------------
# The Python API and a fresh process reproduce the evaluated scores
# --------------------------------------------------------------------------------------------


def expected_test_scores(project: Path) -> pd.Series:
    scores = pd.read_parquet(project / "reports" / "test_scores.parquet")
    return scores.set_index("listing_id")["p_final"]


def assert_same_scores(got: pd.Series, expected: pd.Series, has_photo: pd.Series) -> None:
    got, expected = got.loc[expected.index], expected
    text_only = ~has_photo.loc[expected.index].to_numpy(bool)
    # Text-only listings agree to float rounding (BLAS sums depend on the batch); photo
    # listings to CPU convolution rounding, which also depends on the batch.
    np.testing.assert_allclose(
        got.to_numpy()[text_only], expected.to_numpy()[text_only], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_load_scorer_reproduces_evaluate_scores(project, package):
    import wildml

    raw = raw_test_rows(project)
    scored = wildml.load_scorer(package).score(raw, images_root=SAMPLE, mark_duplicates=False)
    expected = expected_test_scores(project)
    assert len(expected) >= 50
    got = scored.set_index("listing_id")["p_final"]
    has_photo = pd.read_parquet(project / "reports" / "test_scores.parquet").set_index(
        "listing_id"
    )["has_photo"]
    assert_same_scores(got, expected, has_photo > 0)


FRESH_SCRIPT = """
import sys, pandas as pd, mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pd.read_csv("listings.csv", dtype=str, keep_default_na=False)
root = sys.argv[2]
frame["images"] = [[f"{root}/{p}" for p in cell.split(";") if p] for cell in frame["images"]]
model.predict(frame)[["listing_id", "p_final"]].to_parquet("scores.parquet")
"""


@pytest.mark.slow
def test_fresh_process_with_only_the_package_gets_evaluate_scores(project, package, tmp_path):
    import shutil

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(package, elsewhere / "scorer")
    raw_test_rows(project).to_csv(elsewhere / "listings.csv", index=False)
    (elsewhere / "fresh.py").write_text(FRESH_SCRIPT, encoding="utf-8")
    env = cli_env()
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "fresh.py", "scorer", str(SAMPLE)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = pd.read_parquet(elsewhere / "scores.parquet").set_index("listing_id")["p_final"]
    has_photo = pd.read_parquet(project / "reports" / "test_scores.parquet").set_index(
        "listing_id"
    )["has_photo"]
    assert_same_scores(got, expected_test_scores(project), has_photo > 0)


@pytest.mark.slow
def test_multi_pass_merge_gives_the_same_queue(package, tmp_path, monkeypatch):
    import wildml.score_stream as stream

    listings = tmp_path / "l.csv"
    pd.DataFrame(
        {
            "listing_id": [f"id{i}" for i in range(7)],
            "text": [
                f"{w} {i}" for i, w in enumerate(["ivory bangle", "phone", "cula badak"] * 3)
            ][:7],
        }
    ).to_csv(listings, index=False)
    single = tmp_path / "single.csv"
    score_inputs(job(package, [listings], single, chunk_size=1))
    monkeypatch.setattr(stream, "MERGE_FANOUT", 2)
    multi = tmp_path / "multi.csv"
    score_inputs(job(package, [listings], multi, chunk_size=1))
    assert multi.read_bytes() == single.read_bytes()
    assert len(read_csv(multi)) == 7


# --------------------------------------------------------------------------------------------
# Input files that are broken as a whole or in their quoting
# --------------------------------------------------------------------------------------------

UNBALANCED = (
    "listing_id,title,description\r\n"
    'q1,"ivory bangle,old piece\r\n'
    "q2,phone case,blue\r\n"
    'q3,"multi\r\nline, with a comma",fine\r\n'
    'q4,lamp,"a ""quoted"" word"\r\n'
    'q5,"never closed,till the end\r\n'
    "q6,chair,wooden\r\n"
)


def test_an_unclosed_quote_costs_only_its_own_line(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text(UNBALANCED, encoding="utf-8", newline="")
    rows = list(_csv_rows(path, None))
    assert [r.row for r in rows] == [1, 2, 3, 4, 5, 6]
    by_id = {(r.values or r.partial)["listing_id"]: r for r in rows}
    assert set(by_id) == {"q1", "q2", "q3", "q4", "q5", "q6"}
    for broken, line in (("q1", 2), ("q5", 7)):
        assert by_id[broken].values is None
        assert by_id[broken].reason.startswith(f"unbalanced_quote: line {line} ")
    assert by_id["q2"].values["title"] == "phone case"
    assert by_id["q3"].values["title"] == "multi\r\nline, with a comma"
    assert by_id["q4"].values["description"] == 'a "quoted" word'
    assert by_id["q6"].values["description"] == "wooden"


@pytest.mark.slow
def test_rejected_rows_keep_their_ids_and_every_row_is_out(package, tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text(UNBALANCED, encoding="utf-8", newline="")
    out = tmp_path / "queue.csv"
    stats = score_inputs(job(package, [path], out))
    queue = read_csv(out)
    assert sorted(queue["listing_id"]) == ["q1", "q2", "q3", "q4", "q5", "q6"]
    rejected = queue[queue["status"] == "rejected"]
    assert sorted(rejected["listing_id"]) == ["q1", "q5"]
    assert rejected["reason"].str.startswith("unbalanced_quote").all()
    assert stats.exit_code == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("listing_id;title\nx1;ivory bangle\n", "is the delimiter ';'"),
        ("id,title\nx1,ivory bangle\n", "no id column 'listing_id'"),
        ("listing_id,price\nx1,5\n", "no text, title, description or photo column"),
    ],
)
def test_a_file_without_the_needed_columns_is_refused_whole(package, tmp_path, content, expected):
    path = tmp_path / "wrong.csv"
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "queue.csv"
    with pytest.raises(DataError, match=expected) as caught:
        score_inputs(job(package, [path], out))
    assert str(path) in str(caught.value)
    assert not out.exists()


@pytest.mark.slow
def test_cli_exits_2_on_a_wrong_delimiter_and_scores_with_the_right_one(package, tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("listing_id;title\nx1;ivory bangle for sale\nx2;blue phone case\n")
    command = score_command(package, path, tmp_path / "queue.csv")
    failed = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert failed.returncode == 2
    assert "is the delimiter ';'" in failed.stderr
    fixed = subprocess.run(
        [*command, "--delimiter", ";"], capture_output=True, text=True, env=cli_env(), timeout=300
    )
    assert fixed.returncode == 0, fixed.stderr
    assert sorted(read_csv(tmp_path / "queue.csv")["listing_id"]) == ["x1", "x2"]


@pytest.mark.slow
def test_photo_counts_include_photos_that_cannot_be_used(package, tmp_path):
    frame = pd.DataFrame(
        {
            "listing_id": ["p1"],
            "text": ["carved bangle, old piece"],
            "images": ["photos/ivory_000.jpg;../outside.jpg;photos/missing.jpg"],
        }
    )
    from wildml import load_scorer

    scored = load_scorer(package).score(frame, images_root=SAMPLE)
    assert scored.loc[0, "n_photos"] == 3
    assert scored.loc[0, "n_photos_usable"] == 1
    assert scored.loc[0, "status"] == "scored"
    assert "outside_root" in scored.loc[0, "reason"]


@pytest.mark.slow
def test_queue_orders_equal_probabilities_by_the_uncalibrated_score(package, tmp_path):
    out = tmp_path / "queue.csv"
    score_inputs(job(package, [SAMPLE / "new_listings.csv"], out, chunk_size=7))
    queue = read_csv(out)
    scored = queue[queue["p_final"] != ""]
    p = scored["p_final"].astype(float).to_numpy()
    raw = scored["p_uncalibrated"].astype(float).to_numpy()
    tier = scored["tier"].map({"urgent": 0, "review": 1, "low": 2}).to_numpy()
    keys = list(zip(tier, -p, -raw, strict=True))
    assert keys == sorted(keys)


@pytest.mark.slow
def test_json_lists_in_text_fields_and_unknown_languages_are_reported(package, tmp_path):
    path = tmp_path / "typed.jsonl"
    path.write_text(
        '{"listing_id": "t1", "text": ["ivory", "bangle"]}\n'
        '{"listing_id": "t2", "title": {"en": "ivory bangle"}}\n'
        '{"listing_id": "t3", "text": "blue phone case, good condition", "lang": "klingon"}\n'
        '{"listing_id": "t4", "text": "blue phone case", "lang": "EN-us",'
        ' "images": ["photos/missing.jpg"]}\n',
        encoding="utf-8",
    )
    out = tmp_path / "queue.jsonl"
    score_inputs(job(package, [path], out))
    rows = {r["listing_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"t1", "t2", "t3", "t4"}
    for bad, field in (("t1", "'text'"), ("t2", "'title'")):
        assert rows[bad]["status"] == "rejected"
        assert rows[bad]["reason"].startswith("bad_field_type")
        assert field in rows[bad]["reason"]
    assert rows["t3"]["status"] == "scored"
    assert rows["t3"]["reason"] == "lang: given 'klingon' unknown; detected"
    assert rows["t3"]["lang"] == "en"
    assert rows["t4"]["lang"] == "en"
    assert rows["t4"]["n_photos"] == 1 and rows["t4"]["n_photos_usable"] == 0


# --------------------------------------------------------------------------------------------
# Inputs that once stopped a whole run
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_odd_records_are_rejected_or_scored_never_fatal(package, tmp_path):
    csv_path = tmp_path / "odd.csv"
    huge = "carved ivory bangle " + "x" * 200_000
    csv_path.write_text(
        "listing_id,text,images\n"
        f"o1,blue phone case,photos/a\x00b.jpg\n"
        f"o2,{huge},\n"
        "o3,red phone case,\n",
        encoding="utf-8",
    )
    jsonl_path = tmp_path / "odd.jsonl"
    jsonl_path.write_bytes(
        b"\xef\xbb\xbf" + b'{"listing_id": "j1", "text": "green phone case"}\n'
        b'{"listing_id": "j2", "text": "ivory \\ud800 bangle"}\n'
    )
    out = tmp_path / "queue.csv"
    score_inputs(job(package, [csv_path, jsonl_path], out))
    queue = read_csv(out).set_index("listing_id")
    assert sorted(queue.index) == ["j1", "j2", "o1", "o2", "o3"]
    assert queue.loc["o1", "status"] == "scored_without_photo"
    assert "bad_path" in queue.loc["o1", "reason"]
    assert queue.loc["o2", "status"] == "scored"
    assert queue.loc["j1", "status"] == "scored"
    assert queue.loc["j2", "status"] == "rejected"
    assert queue.loc["j2", "reason"].startswith("bad_json")


def test_score_options_are_checked(tmp_path):
    from wildml.errors import ConfigError
    from wildml.score_cli import build_job, parse_columns

    listings = tmp_path / "in.csv"
    listings.write_text("listing_id,text\nx,y\n")
    common = {"inputs": [listings], "package": tmp_path, "out": tmp_path / "q.csv"}
    with pytest.raises(ConfigError, match="at least 1"):
        build_job(**common, chunk_size=0)
    with pytest.raises(ConfigError, match="same file"):
        build_job(**common, report=tmp_path / "q.csv")
    with pytest.raises(ConfigError, match="not a folder"):
        build_job(**common, images_root=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="'sellr_profile' is not a listing field"):
        parse_columns("text=body,sellr_profile=bio")
    assert parse_columns("text=body,images=pics") == {"text": "body", "images": "pics"}


@pytest.mark.slow
def test_a_configured_photo_column_may_be_absent(package, tmp_path):
    listings = tmp_path / "nophotos.csv"
    listings.write_text("listing_id,text\nn1,blue phone case\n")
    out = tmp_path / "queue.csv"
    score_inputs(job(package, [listings], out, source={"image_column": "images"}))
    assert read_csv(out).loc[0, "status"] == "scored"


def test_empty_frame_scores_to_an_empty_frame(package):
    from wildml import load_scorer

    scorer = load_scorer(package)
    scored = scorer.score(pd.DataFrame({"listing_id": [], "text": []}))
    assert len(scored) == 0
    one = scorer.score(pd.DataFrame({"listing_id": ["a"], "text": ["ivory bangle"]}))
    assert set(scored.columns) == set(one.columns)  # batches concatenate cleanly
