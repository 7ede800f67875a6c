#!/usr/bin/env bash
# The main job on the bundled sample: every DVC stage of the root pipeline, end to end.
# Called by `make sample`, which has put ./.venv/bin first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
export DVC_NO_ANALYTICS=1 MLFLOW_DISABLE_TELEMETRY=true

dvc repro
echo
echo "prepared data:   data/prepared/ (report.json, rejects.csv)"
echo "MLflow runs:     sqlite:///$(pwd)/mlflow.db  (see README: MLflow UI)"
