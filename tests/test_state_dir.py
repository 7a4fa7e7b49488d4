"""Every state-directory problem is one line on stderr and a non-zero exit, never a traceback,
for ``shelfcast run`` and ``shelfcast serve``; and one writer per ledger: a second gateway on a
state directory refuses to start, naming the directory and the holder's pid."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from edge_runtime.store.ledger import Ledger, LedgerError
from tests.small_disk import mount_small_disk, unmount

ROOT = Path(__file__).resolve().parent.parent


def shelfcast(*args: str, store: str = "S1") -> subprocess.CompletedProcess:
    env = {**os.environ, "SHELFCAST_STORE_ID": store, "SHELFCAST_MQTT_ENABLED": "false",
           "SHELFCAST_API_TOKEN": "test-token-123456"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "shelfcast.cli", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip


def assert_one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def gateway_config(state: Path, store: str = "S1"):
    env = {"SHELFCAST_STORE_ID": store, "SHELFCAST_STATE_DIR": str(state),
           "SHELFCAST_MQTT_ENABLED": "false"}  # fmt: skip
    return load_config(env=env)


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_second_writer_on_a_state_directory_refuses_to_start(tmp_path, command):
    """Without the lock the second one started and both wrote the same log."""
    state = tmp_path / "state"
    with Gateway(gateway_config(state)):
        with pytest.raises(LedgerError, match=f"pid {os.getpid()}"):
            Gateway(gateway_config(state))
        line = assert_one_line(shelfcast(command, "--state-dir", str(state)), str(state))
        assert f"pid {os.getpid()}" in line and "another writer" in line
    Gateway(gateway_config(state)).close()  # released with its holder


def test_a_state_directory_that_is_a_file(tmp_path):
    state = tmp_path / "not-a-dir"
    state.write_text("x")
    assert_one_line(shelfcast("run", "--state-dir", str(state)), str(state), "not a directory")
    assert_one_line(shelfcast("serve", "--state-dir", str(state)), "not a directory")


def test_an_unwritable_state_directory(tmp_path):
    where = tmp_path / "read-only"
    mount_small_disk(where, "1m", read_only=True)
    try:
        line = assert_one_line(shelfcast("run", "--state-dir", str(where / "state")))
        assert str(where) in line and "Read-only file system" in line
        assert_one_line(shelfcast("serve", "--state-dir", str(where)), "Read-only file system")
    finally:
        unmount(where)


def test_a_ledger_of_another_store(tmp_path):
    Ledger(tmp_path / "state" / "ledger.sqlite", "S2").close()
    proc = shelfcast("run", "--state-dir", str(tmp_path / "state"))
    assert_one_line(proc, "ledger of store 'S2'", "not 'S1'")


def test_a_ledger_of_another_schema_or_not_a_ledger(tmp_path):
    Ledger(tmp_path / "state" / "ledger.sqlite", "S1").close()
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    assert_one_line(shelfcast("run", "--state-dir", str(tmp_path / "state")), "schema '0'")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "ledger.sqlite").write_bytes(b"this is not a database, just text" * 100)
    assert_one_line(shelfcast("run", "--state-dir", str(junk)), "not a database")


def test_a_second_gateway_leaves_the_held_directory_alone(tmp_path):
    """Before, the second gateway installed its configured bundle into the first one's state
    directory before anything refused it."""
    from tests.signed_bundles import make_bundle, public_key_env

    state = tmp_path / "state"
    bundle = make_bundle(tmp_path / "bundles" / "b1")
    with Gateway(gateway_config(state)):
        cfg = load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(state),
                               "SHELFCAST_MQTT_ENABLED": "false", "SHELFCAST_BUNDLE": str(bundle),
                               **public_key_env()})  # fmt: skip
        with pytest.raises(LedgerError, match="another writer"):
            Gateway(cfg)
        assert not (state / "bundle").exists()
    with Gateway(cfg) as gw:  # the holder gone: it starts, with its bundle
        assert gw.bundle is not None and (state / "bundle").exists()
