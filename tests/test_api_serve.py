"""`shelfcast serve` as a real process: API and runtime together, then attached read-only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api_server import free_port

TOKEN = "serve-token-0123456"


def _start(args: list[str], env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "shelfcast.cli", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("shelfcast serve did not answer /health within 30 s")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_serve_runs_api_and_runtime_then_attaches_read_only(tmp_path: Path):
    state = tmp_path / "state"
    env = {**os.environ, "SHELFCAST_API_TOKEN": TOKEN, "SHELFCAST_MQTT_ENABLED": "false"}
    proc, url = _start(["--store-id", "S7", "--state-dir", str(state)], env)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ev = {"event_id": "e1", "store_id": "S7", "sku": "X", "type": "receipt", "qty": 1,
          "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}  # fmt: skip
    try:
        assert httpx.post(url + "/v1/events", json=ev, headers=auth).json()["accepted"] == 1
        alerts = httpx.get(url + "/v1/alerts").json()["items"]  # the rule policy decided on it
        assert alerts and alerts[0]["sku"] == "X"
    finally:
        assert _stop(proc) == 0  # SIGTERM: a clean shutdown, the gateway closed

    proc, url = _start(["--attach", str(state)], {**env, "SHELFCAST_API_TOKEN": ""})
    try:
        assert httpx.get(url + "/v1/stock/X").json()["on_hand"] == 1
        assert httpx.post(url + "/v1/events", json=ev).status_code == 403  # no token: no writes
    finally:
        assert _stop(proc) == 0


def test_serve_reports_bad_configuration_clearly(tmp_path: Path):
    env = {**os.environ, "SHELFCAST_STORE_ID": ""}
    cmd = [sys.executable, "-m", "shelfcast.cli", "serve", "--state-dir", str(tmp_path)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "store_id" in out.stderr
