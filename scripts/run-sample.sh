#!/usr/bin/env bash
# The main job on the bundled sample: every DVC stage of the root pipeline, end to end.
# Called by `make sample`, which has put ./.venv/bin first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
export DVC_NO_ANALYTICS=1 MLFLOW_DISABLE_TELEMETRY=true

dvc repro

# Score the new listings with the exported package, as a reviewer would. Exit code 1 means
# some rows were rejected or had unusable photos, which the sample has on purpose.
mkdir -p out
status=0
wildml score data/sample/new_listings.csv --package models/scorer --params params.yaml \
  --images-root data/sample --out out/queue.csv --report out/queue.html || status=$?
if [ "$status" -gt 1 ]; then
  echo "wildml score failed (exit code $status)" >&2
  exit "$status"
fi
echo
echo "prepared data:   data/prepared/ (report.json, rejects.csv)"
echo "MLflow runs:     sqlite:///$(pwd)/mlflow.db  (browse with scripts/mlflow-ui.sh)"
echo "scoring package: models/scorer/ (MODEL_CARD.md, manifest.json)"
echo "review queue:    out/queue.csv and out/queue.html (open in a browser; works offline)"
