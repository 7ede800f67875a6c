"""``wildml kb`` commands on the shipped base and on broken copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from wildml.kb import default_kb_dir
from wildml.kb.cli import kb_app

runner = CliRunner()


def test_validate_ok():
    result = runner.invoke(kb_app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "0 error(s)" in result.output


def test_validate_broken_exits_2_with_file_and_line(tmp_path: Path):
    kb_dir = Path(shutil.copytree(default_kb_dir(), tmp_path / "kb"))
    path = kb_dir / "terms" / "musk.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("confidence: 0.95}", "confidence: 2}", 1)
    )
    result = runner.invoke(kb_app, ["validate", str(kb_dir)])
    assert result.exit_code == 2
    assert "terms/musk.yaml:" in result.output and "confidence" in result.output


def test_stats_json_covers_core_languages():
    result = runner.invoke(kb_app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    terms = json.loads(result.output)["terms"]
    for product in ("ivory", "pangolin_scale", "rhino_horn"):
        assert all(n > 0 for n in terms[product].values()), terms[product]


def test_stats_table():
    result = runner.invoke(kb_app, ["stats"])
    assert result.exit_code == 0 and "rhino_horn" in result.output


@pytest.mark.parametrize("as_json", [True, False])
def test_match(as_json: bool):
    text = "出售象牙手镯 faux ivory"
    result = runner.invoke(kb_app, ["match", text] + (["--json"] if as_json else []))
    assert result.exit_code == 0, result.output
    if as_json:
        found = json.loads(result.output)
        assert [(e["matched_text"], e["status"]) for e in found] == [
            ("象牙", "confirmed"),
            ("ivory", "defused"),
        ]
    else:
        assert "confirmed" in result.output and "defused" in result.output


def test_propose_from_csv(tmp_path: Path):
    rows = ["text,label"]
    rows += [f"gajah putih sale {i} bangle ready DM" for i in range(6)]
    rows = [rows[0]] + [f"{r},1" for r in rows[1:]]
    rows += [f"new phone case {i} ready,0" for i in range(10)]
    data = tmp_path / "labelled.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "candidates.yaml"
    result = runner.invoke(kb_app, ["propose", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    snippet = yaml.safe_load(out.read_text(encoding="utf-8"))
    proposed = [t["term"] for block in snippet["languages"].values() for t in block["terms"]]
    assert "gajah putih" in proposed
    assert "ready" not in proposed  # as common among negatives
    assert all(t["source"] == "TODO" for b in snippet["languages"].values() for t in b["terms"])
