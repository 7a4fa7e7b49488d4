"""The garbage collector during a gateway's start: paused from the command's imports to the
first commit, then one pass and the start-up heap frozen (``edge_runtime/heap.py``)."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import types

import pytest

import shelfcast.cli as cli
from edge_runtime import run_command
from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from tests.test_gateway_model import ev


@pytest.fixture
def collector_restored():
    """Whatever a test does to the collector and the signal handlers, undone after it."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    gc.unfreeze()
    gc.enable()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def test_a_command_is_imported_with_the_collector_paused(monkeypatch, collector_restored):
    seen = {}
    module = types.ModuleType("fake_command")
    module.add_arguments = lambda parser: None
    module.run = lambda args: seen.setdefault("run", gc.isenabled()) and 0
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_command", "a test command"))
    monkeypatch.setitem(sys.modules, "fake_command", module)

    def import_module(name):
        seen["import"] = gc.isenabled()
        return module

    monkeypatch.setattr(cli.importlib, "import_module", import_module)
    assert cli.main(["fake"]) == 0
    assert seen == {"import": False, "run": True}  # paused only while importing


class _FakeGateway:
    """What ``run`` needs of a gateway: its first commit comes ``after_s`` after the start."""

    def __init__(self, cfg, seen: dict, after_s: float = 0.3):
        seen["collecting_at_start"] = gc.isenabled()
        self.model_version, self.first_commit, self._seen = "rules", threading.Event(), seen
        self._after_s = after_s

    def start(self):
        def commit_then_stop():
            self._seen["frozen_before_first_commit"] = gc.get_freeze_count()
            self.first_commit.set()
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()

        threading.Timer(self._after_s, commit_then_stop).start()
        return self

    def close(self):
        self._seen["collecting_at_close"] = gc.isenabled()
        self._seen["frozen_at_close"] = gc.get_freeze_count()


def test_the_gateway_starts_without_collections_and_freezes_after_its_first_commit(
    monkeypatch, tmp_path, collector_restored
):
    gc.unfreeze()
    seen: dict = {}
    monkeypatch.setattr(run_command, "Gateway", lambda cfg: _FakeGateway(cfg, seen))
    # River (needed from the first close on) is imported after the first commit, then frozen.
    monkeypatch.setattr(run_command, "import_river",
                        lambda: seen.setdefault("river_frozen_count", gc.get_freeze_count()))  # fmt: skip
    monkeypatch.setenv("SHELFCAST_STORE_ID", "S1")
    monkeypatch.setenv("SHELFCAST_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("SHELFCAST_MQTT_ENABLED", "false")
    parser = cli.OneLineParser()
    run_command.add_arguments(parser)
    parser.add_argument("--data-dir")
    assert run_command.run(parser.parse_args(["--log-level", "WARNING"])) == 0
    assert seen["collecting_at_start"] is False
    assert seen["frozen_before_first_commit"] == 0
    assert seen["collecting_at_close"] is True and seen["frozen_at_close"] > 0
    assert seen["river_frozen_count"] == 0  # imported before the freeze


def test_a_failed_start_collects_again(monkeypatch, tmp_path, collector_restored):
    monkeypatch.setenv("SHELFCAST_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("SHELFCAST_STORE_ID", raising=False)  # no store id: refused
    parser = cli.OneLineParser()
    run_command.add_arguments(parser)
    parser.add_argument("--data-dir")
    assert run_command.run(parser.parse_args(["--log-level", "WARNING"])) == 2
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_first_commit_is_set_once_the_worker_has_committed(tmp_path):
    cfg = load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path),
                           "SHELFCAST_MQTT_ENABLED": "false"})  # fmt: skip
    with Gateway(cfg).start() as gw:
        assert not gw.first_commit.wait(0.2)
        gw.ingest([ev("r-A", "A", "receipt", 5, 1)], "api")
        assert gw.first_commit.wait(10)
