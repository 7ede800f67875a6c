"""The evaluator notebook runs top to bottom on two real evaluate runs and shows their gaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_compare import evaluate_run, fused_scores, synthetic_listings, use_store, write_listings

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_runs.ipynb"

pytestmark = pytest.mark.slow


def _outputs(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        parts.append(data.get("text/plain", "") + data.get("text/html", ""))
        parts.append(output.get("text", ""))
    return "\n".join(parts)


def test_notebook_compares_two_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    listings = synthetic_listings()
    use_store(monkeypatch, tmp_path)
    shared = write_listings(tmp_path, listings)
    baseline = evaluate_run(
        tmp_path, "base", listings, fused_scores(listings), listings_dir=shared
    )
    candidate = evaluate_run(
        tmp_path,
        "cand",
        listings,
        fused_scores(listings, degrade_lang="zh"),
        listings_dir=shared,
    )
    # The kernel inherits this process's environment: store, run ids, a short bootstrap.
    monkeypatch.setenv("WILDML_RUN_A", candidate)
    monkeypatch.setenv("WILDML_RUN_B", baseline)
    monkeypatch.setenv("WILDML_N_BOOT", "50")
    monkeypatch.setenv("MPLBACKEND", "Agg")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    by_tag = {
        tag: cell for cell in notebook.cells for tag in cell.get("metadata", {}).get("tags", [])
    }
    figures = _outputs(by_tag["figures"])
    assert "lang:zh" in figures and "worse" in figures
    changes = _outputs(by_tag["flag_changes"])
    assert "lost" in changes and "lang:zh" in changes
    gaps = _outputs(by_tag["disagreements"])
    assert "rank_gap" in gaps and "te0" in gaps
    images = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(images) == 2
