"""The HTML review report, rendered in a real headless Chromium: inert text, visible photos."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_score_support import trained_project
from wildml.report import merge_spans, segments
from wildml.score_stream import ScoreJob, score_inputs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install -y chromium, or `make browser`)",
)
PAYLOADS = (
    "<script>document.title='pwned'</script>ivory bangle for sale",
    "<img src=x onerror=\"document.title='pwned2'\">old ivory carving",
)


# --------------------------------------------------------------------------------------------
# Highlighting (no browser needed)
# --------------------------------------------------------------------------------------------


def test_segments_cover_the_text_and_mark_spans():
    text = "old ivory bangle, ivory"
    parts = segments(text, [(4, 9, "mark", "ivory"), (18, 23, "mark", "ivory")])
    assert "".join(p["text"] for p in parts) == text
    assert [p["text"] for p in parts if p["kind"] == "mark"] == ["ivory", "ivory"]


def test_bidirectional_controls_cannot_reorder_the_text():
    text = "ivory\u202e gnalb\u2066x"
    parts = segments(text, [(0, 5, "mark", "ivory")])
    shown = "".join(p["text"] for p in parts)
    assert shown == "ivory\ufffd gnalb\ufffdx"
    assert parts[0] == {"kind": "mark", "text": "ivory", "title": "ivory"}


def test_overlapping_and_out_of_range_spans_are_merged_and_clipped():
    assert merge_spans([(0, 5, "mark", ""), (3, 8, "mark", ""), (50, 60, "mark", "")], 10) == [
        (0, 8, "mark", "")
    ]


def test_long_text_keeps_windows_around_matches():
    text = "a" * 5000 + "ivory" + "b" * 5000
    parts = segments(text, [(5000, 5005, "mark", "")], max_chars=400)
    shown = "".join(p["text"] for p in parts)
    assert len(shown) < 1000 and "ivory" in shown and "…" in shown


# --------------------------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------------------------


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory, mlflow_store) -> Path:
    """A report of listings with script payloads and a pure-red photo."""
    import pandas as pd

    project = trained_project(tmp_path_factory, mlflow_store)
    folder = tmp_path_factory.mktemp("report")
    Image.new("RGB", (200, 200), (255, 0, 0)).save(folder / "red.jpg", quality=95)
    pd.DataFrame(
        {
            "listing_id": ["x1", "x2", "x3"],
            "text": [*PAYLOADS, "genuine ivory bangle, old, with photo"],
            "lang": ["en", "en", "en"],
            "images": ["", "", "red.jpg"],
        }
    ).to_csv(folder / "listings.csv", index=False)
    job = ScoreJob(
        inputs=[folder / "listings.csv"],
        package_dir=project / "models" / "scorer",
        out_path=folder / "queue.csv",
        images_root=folder,
        report_path=folder / "queue.html",
    )
    score_inputs(job)
    return folder / "queue.html"


@pytest.mark.slow
def test_report_is_self_contained(report):
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<script" not in html.replace("&lt;script", "")
    assert "data:image/jpeg;base64," in html
    assert "&lt;script&gt;document.title=" in html


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_script_in_a_listing_renders_as_text(report, tmp_path):
    result = chromium("--dump-dom", report.as_uri(), tmp=tmp_path)
    dom = result.stdout
    assert "<title>wildml review queue</title>" in dom, result.stderr[-2000:]
    assert "pwned" not in re.sub(r"&lt;.*?&gt;", "", dom.split("<main>")[0])
    # The payloads are text nodes inside the listing, never elements.
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "&lt;img src=x onerror=" in dom
    assert '<img src="x"' not in dom and "<script>document" not in dom
    # Matched KB terms are highlighted in the escaped text.
    assert re.search(r"<mark[^>]*>ivory</mark>", dom)


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_screenshot_shows_the_photo_thumbnail(report, tmp_path):
    shot = tmp_path / "shot.png"
    result = chromium(
        f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri(), tmp=tmp_path
    )
    assert shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 220) & (pixels[..., 1] < 40) & (pixels[..., 2] < 40)
    # One 96 x 96 thumbnail of the red photo, minus borders and JPEG edges.
    assert red.sum() >= 80 * 80
    _rows, cols = np.nonzero(red)
    assert cols.min() > pixels.shape[1] // 2  # thumbnails sit at the right of each listing
