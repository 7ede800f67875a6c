"""``scripts/mlflow-ui.sh`` starts the MLflow UI on 127.0.0.1 and it answers; then it stops.

The script is copied into a tmp project root (with ``.venv/bin/mlflow`` linked to this venv's)
so the test opens a fresh database there and never the project's own ``mlflow.db``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "mlflow-ui.sh"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    # No proxy: the request must reach the local server, whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return response.status, response.read()


def _stop(process: subprocess.Popen) -> None:
    """Stop the UI's process group (started by this test in its own session)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue


def test_mlflow_ui_script_serves_on_localhost(tmp_path):
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    if not mlflow_bin.exists() or shutil.which("bash") is None:
        pytest.skip("mlflow or bash missing")
    (tmp_path / "scripts").mkdir()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "scripts" / "mlflow-ui.sh")
    (tmp_path / ".venv" / "bin" / "mlflow").symlink_to(mlflow_bin)
    port = _free_port()
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        ["bash", str(tmp_path / "scripts" / "mlflow-ui.sh"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + 180, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(1)
        assert status == 200, (tmp_path / "ui.log").read_text()[-2000:]
        assert body.strip() == b"OK"
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"<html" in page.lower()
        assert (tmp_path / "mlflow.db").is_file()
    finally:
        _stop(process)
        log.close()
    assert process.poll() is not None
