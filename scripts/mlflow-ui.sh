#!/usr/bin/env bash
# The MLflow UI on this project's tracking database, reachable from this machine only.
#
#   scripts/mlflow-ui.sh [PORT]        # default port 5000, or $MLFLOW_UI_PORT
#
# Opens sqlite:///<repo>/mlflow.db (where every `wildml` stage logs unless
# MLFLOW_TRACKING_URI says otherwise) with artifacts under <repo>/mlartifacts/, and listens on
# 127.0.0.1: the UI has no log-in, so it must not be exposed on a shared network. To look
# from another machine, forward the port over SSH (ssh -L 5000:127.0.0.1:5000 host).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${1:-${MLFLOW_UI_PORT:-5000}}"
mlflow_bin="${root}/.venv/bin/mlflow"
[[ -x "${mlflow_bin}" ]] || mlflow_bin="$(command -v mlflow)" || {
  echo "mlflow not found: run 'make test' or 'make sample' first to build .venv" >&2
  exit 2
}
mkdir -p "${root}/mlartifacts"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

echo "MLflow UI on http://127.0.0.1:${port}  (store: ${root}/mlflow.db; Ctrl-C stops it)" >&2
exec "${mlflow_bin}" ui \
  --host 127.0.0.1 \
  --port "${port}" \
  --backend-store-uri "sqlite:///${root}/mlflow.db" \
  --default-artifact-root "${root}/mlartifacts" \
  --workers 1
