"""Registry names and the provenance that ties a package to the figures it was exported with."""

from __future__ import annotations

import logging

import pytest
import yaml

from conftest import REPO
from wildml import export, promote
from wildml.config import load_params
from wildml.score_manifest import sha256_file

PIPELINES = {"sample": REPO / "params.yaml", "wlt-osn": REPO / "pipelines/wlt-osn/params.yaml"}


def test_each_pipeline_registers_its_own_model():
    names = {name: load_params(path)["export"]["model_name"] for name, path in PIPELINES.items()}
    assert names == {"sample": "wildml-scorer", "wlt-osn": "wildml-scorer-wlt-osn"}


def write_params(tmp_path, **sections) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(sections))
    return str(path)


def test_promote_defaults_to_the_model_export_registers(tmp_path):
    params = write_params(tmp_path, export={"model_name": "m-x"}, promote={"alias": "prod"})
    cfg = promote.gate_config(params)
    assert (cfg["model_name"], cfg["alias"]) == ("m-x", "prod")
    assert promote.gate_config(None)["model_name"] == "wildml-scorer"


@pytest.mark.parametrize(("promoted", "warned"), [("m-x", False), ("m-other", True)])
def test_promote_name_that_differs_from_export_is_warned(tmp_path, caplog, promoted, warned):
    params = write_params(tmp_path, export={"model_name": "m-x"}, promote={"model_name": promoted})
    with caplog.at_level(logging.WARNING, logger="wildml.promote"):
        assert promote.gate_config(params)["model_name"] == promoted
    assert ("differs from export.model_name" in caplog.text) is warned


def test_metrics_digest_and_manifest_provenance(tmp_path):
    cfg = {"metrics": "metrics.json", "_params_dir": str(tmp_path)}
    assert export.metrics_digest(cfg) is None
    (tmp_path / "metrics.json").write_text('{"overall": {}}', encoding="utf-8")
    digest = export.metrics_digest(cfg)
    assert digest == sha256_file(tmp_path / "metrics.json") and len(digest) == 64
    record = export.provenance("run-1", {"n_checked": 0}, digest)
    assert record["evaluated_metrics_sha256"] == digest and record["mlflow_run_id"] == "run-1"
