"""Which registered version belongs to an evaluate run, whatever commit export ran at.

Real evaluate runs (``wildml.evaluate.run``) log ``metrics.json``; the real
``export.register_package`` tags each version with the sha256 of the ``metrics.json`` it was
exported with; ``promote`` finds the version by that tag.
"""

from __future__ import annotations

import pytest
import yaml

from test_compare import (
    evaluate_run,
    export_run,
    fused_scores,
    register,
    synthetic_listings,
    use_store,
    write_listings,
)
from test_promote import GATE
from wildml import compare, export, promote
from wildml.errors import DataError

pytestmark = pytest.mark.slow
MODEL = "m-lineage-digest"


@pytest.fixture(scope="module")
def lineage(tmp_path_factory):
    """Evaluate runs a and b, then an export of a's figures at another git commit."""
    root = tmp_path_factory.mktemp("lineage")
    listings = synthetic_listings()
    with pytest.MonkeyPatch.context() as patch:
        uri = use_store(patch, root)
        shared = write_listings(root, listings)
        evaluated = {
            "a": evaluate_run(root, "a", listings, fused_scores(listings), listings_dir=shared),
            "b": evaluate_run(
                root, "b", listings, fused_scores(listings, strength=5.0), listings_dir=shared
            ),
        }
        client = compare.client(uri)
        exported_a = later_export(client, root / "a" / "metrics.json")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"promote": GATE}))
    return {"root": root, "uri": uri, "evaluated": evaluated, "a": exported_a, "params": params}


def later_export(client, metrics_path, model: str = MODEL) -> dict[str, str]:
    """An export run at a later git commit, registered by the real export code."""
    run_id = export_run()
    client.set_tag(run_id, "git_commit", "f" * 40)
    evaluated = export.metrics_digest({"metrics": str(metrics_path)})
    record = export.register_package(
        {"model_name": model, "alias": "candidate"}, run_id, "d" * 64, evaluated
    )
    return {"run_id": run_id, "version": record["model_version"], "metrics": evaluated}


@pytest.fixture
def store(lineage, monkeypatch):
    use_store(monkeypatch, lineage["root"])
    return compare.client(lineage["uri"])


def test_version_is_tagged_with_package_export_run_and_figures(lineage, store):
    version = store.get_model_version(MODEL, lineage["a"]["version"])
    assert version.tags[export.PACKAGE_DIGEST_TAG] == "d" * 64
    assert version.tags[export.EXPORT_RUN_TAG] == lineage["a"]["run_id"]
    assert version.tags[export.METRICS_DIGEST_TAG] == lineage["a"]["metrics"]
    evaluated = lineage["evaluated"]["a"]
    assert promote.evaluated_digest(store, evaluated) == lineage["a"]["metrics"]


def test_export_at_a_later_commit_is_found_from_its_evaluate_run(lineage, store):
    found = promote.version_for_run(store, MODEL, lineage["evaluated"]["a"])
    assert str(found.version) == lineage["a"]["version"]
    # b ran last before the export, but the package holds a's figures: it is not b's
    with pytest.raises(DataError, match=f"no version of '{MODEL}' was exported"):
        promote.version_for_run(store, MODEL, lineage["evaluated"]["b"])


def test_each_evaluate_run_gets_its_own_package(lineage, store):
    model = "m-lineage-both"
    exported = {name: later_export(store, lineage["root"] / name / "metrics.json", model)
                for name in ("b", "a")}  # fmt: skip
    assert exported["a"]["metrics"] != exported["b"]["metrics"]
    for name, record in exported.items():
        found = promote.version_for_run(store, model, lineage["evaluated"][name])
        assert str(found.version) == record["version"]


def test_version_without_figures_tag_still_follows_the_pipeline_run(lineage, store):
    number = register(export_run(), "m-lineage-untagged")
    found = promote.version_for_run(store, "m-lineage-untagged", lineage["evaluated"]["b"])
    assert str(found.version) == number


def test_promote_without_version_promotes_the_later_export(lineage, store):
    record = promote.promote(
        lineage["evaluated"]["a"], model_name=MODEL, params_path=lineage["params"]
    )
    assert record["decision"] == "promoted"
    assert record["model_version"] == lineage["a"]["version"]
    champion = store.get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == lineage["a"]["version"]
