"""The command line turns user mistakes into a message and exit code 2, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["kb", "frob"], ["score"], ["prepare", "--nope"]],
)
def test_usage_errors_exit_2_without_traceback(args):
    result = subprocess.run(
        [sys.executable, "-m", "wildml", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error" in result.stderr


def test_missing_params_file_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wildml", "prepare", "--params", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "none.yaml: params file not found" in result.stderr


def test_very_long_text_is_matched_in_bounded_time():
    from wildml.kb import load_kb
    from wildml.kb.matcher import MAX_MATCH_CHARS, Matcher

    text = "ivory bangle for sale " * 50_000
    evidence = Matcher(load_kb()).match(text)
    assert evidence, "the start of the text is still searched"
    assert max(e.end for e in evidence) <= MAX_MATCH_CHARS
