"""Operators' logs: every line has a level; JSON lines on request; the API's access log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import httpx
import pytest

from edge_runtime.config import ConfigError
from edge_runtime.log_output import configure_logging
from tests.test_api_serve import _start, _stop


def test_text_lines_carry_the_level(capsys):
    configure_logging("INFO", "text")
    logging.getLogger("shelfcast.test").warning("disk %s", "full")
    assert " WARNING shelfcast.test disk full" in capsys.readouterr().err


def test_a_bad_log_format_in_the_environment_is_one_clear_error():
    with pytest.raises(ConfigError, match="SHELFCAST_LOG_FORMAT: unknown log format 'xml'"):
        configure_logging("INFO", None, env={"SHELFCAST_LOG_FORMAT": "xml"})


def test_serve_writes_json_lines_and_an_access_log(tmp_path):
    env = {
        **os.environ,
        "SHELFCAST_MQTT_ENABLED": "false",
        "SHELFCAST_LOG_FORMAT": "json",
        "SHELFCAST_API_TOKEN": "log-token-0123456",
    }
    proc, url = _start(["--store-id", "S7", "--state-dir", str(tmp_path / "state")], env)
    try:
        assert httpx.get(url + "/v1/stock/NOPE").status_code == 404
    finally:
        assert _stop(proc) == 0
    lines = [json.loads(line) for line in proc.stdout.read().decode().splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"] == "shelfcast.serve" and line["level"] == "INFO" for line in lines)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {"method": "GET", "path": "/v1/stock/NOPE", "status": 404}.items() <= access[-1].items()
    assert all(line["time"].endswith("+00:00") for line in lines)


def test_access_log_off(tmp_path):
    env = {**os.environ, "SHELFCAST_MQTT_ENABLED": "false", "SHELFCAST_API_TOKEN": "t0ken-abcdef"}
    args = ["--store-id", "S7", "--state-dir", str(tmp_path / "s"), "--access-log", "off"]
    proc, url = _start(args, env)
    try:
        httpx.get(url + "/health")
    finally:
        assert _stop(proc) == 0
    text = proc.stdout.read().decode()
    assert "GET /health" not in text and " INFO shelfcast.serve " in text


def test_run_refuses_an_unknown_log_format():
    done = subprocess.run(
        [sys.executable, "-m", "shelfcast.cli", "run", "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "unknown log format 'xml'" in done.stderr
