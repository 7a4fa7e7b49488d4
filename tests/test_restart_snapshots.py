"""A restart reads the ledger's lookups and the gateway's derived state from snapshots plus the
log after them, and falls back to the whole log whenever a snapshot does not hold for it."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time

import numpy as np

from edge_runtime.config import load_config
from edge_runtime.forecast.daily_sales import DailySales
from edge_runtime.gateway import Gateway
from edge_runtime.store.ledger import Ledger

DAYS = ("2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08")


def events(day: str, start: int, n: int = 40) -> list[dict]:
    out = []
    for i in range(start, start + n):
        kind, qty = ("receipt", 5) if i % 4 == 0 else ("sale", 1)
        out.append({"event_id": f"e{i}", "store_id": "S1", "sku": f"K{i % 7}", "type": kind,
                    "qty": qty, "event_time": f"{day}T{8 + i % 10:02d}:{i % 60:02d}:00+00:00",
                    "source": "pos", "unit_price": 2.0})  # fmt: skip
    return out


def test_ledger_reads_its_lookups_from_the_index_snapshot(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "S1") as ledger:
        ledger.ingest_raw(events(DAYS[0], 0))
    assert ledger.index_path.exists()  # written at close
    # Rewrite an id already covered by the snapshot: only a start that trusts the snapshot
    # still knows the old one (and does not know the new one).
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET event_id = 'renamed' WHERE seq = 1")
    with Ledger(path, "S1") as ledger:
        result = ledger.ingest_raw(events(DAYS[0], 0, 1) + events(DAYS[0], 40, 3))
        assert (result.duplicates, result.accepted) == (1, 3)
        late = events(DAYS[0], 100, 1)[0] | {"sku": "K1", "event_time": f"{DAYS[0]}T07:00:00Z"}
        assert ledger.ingest_raw(late).accepted == 1  # a late event re-folds from positions
        assert ledger.verify() == []


def test_index_snapshot_ahead_of_the_log_is_ignored(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "S1") as ledger:
        ledger.ingest_raw(events(DAYS[0], 0))
    shutil.copy(path, tmp_path / "older.sqlite")  # the same ledger, 40 events
    with Ledger(path, "S1") as ledger:
        ledger.ingest_raw(events(DAYS[1], 40))
    # The index now names event 80; put it next to the 40-event copy of the same ledger.
    shutil.copy(ledger.index_path, tmp_path / "older.sqlite.index.npz")
    with Ledger(tmp_path / "older.sqlite", "S1") as older:
        result = older.ingest_raw(events(DAYS[1], 40, 5))
        assert result.accepted == 5  # not taken for duplicates by a snapshot that does not hold
        assert older.verify() == []


def test_index_snapshot_of_another_ledger_is_ignored(tmp_path):
    with Ledger(tmp_path / "a.sqlite", "S1") as a:
        a.ingest_raw(events(DAYS[0], 0))
    with Ledger(tmp_path / "b.sqlite", "S1") as b:
        b.ingest_raw(events(DAYS[0], 0, 1))
    shutil.copy(a.index_path, b.index_path)
    with Ledger(tmp_path / "b.sqlite", "S1") as b:
        assert b.ingest_raw(events(DAYS[0], 1, 5)).accepted == 5


def gateway(state) -> Gateway:
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(state),
           "SHELFCAST_MQTT_ENABLED": "false"}  # fmt: skip
    return Gateway(load_config(env=env))


def series(sales: DailySales) -> dict:
    return {
        "closed": {k: list(s.units) for k, s in sales.series.items()},
        "open": dict(sales.open_units),
        "last_closed": sales.last_closed,
        "history": sales.history.matrix(sorted(sales.series)).tolist(),
    }


def test_gateway_restores_sales_from_a_snapshot_and_the_log_after_it(tmp_path, caplog):
    state = tmp_path / "state"
    gw = gateway(state)
    gw.ingest(events(DAYS[0], 0) + events(DAYS[1], 40))
    gw.close()
    saved = tmp_path / "saved"
    saved.mkdir()
    for name in ("derived.pickle", "ledger.sqlite.index.npz"):
        shutil.copy(state / name, saved / name)
    gw = gateway(state)
    gw.ingest(events(DAYS[2], 80))
    gw.ingest(events(DAYS[3], 120))
    expected = series(gw.sales)
    gw.close()
    # As after a kill -9 between two snapshots: the older snapshots, the log beyond them.
    for name in ("derived.pickle", "ledger.sqlite.index.npz"):
        shutil.copy(saved / name, state / name)
    with caplog.at_level(logging.INFO, logger="edge_runtime.forecast.snapshot_schedule"):
        gw = gateway(state)
    assert "sales series from the snapshot" in caplog.text
    restored = series(gw.sales)
    assert np.allclose(restored.pop("history"), expected["history"], equal_nan=True)
    assert restored == {k: v for k, v in expected.items() if k != "history"}
    assert gw.ingest(events(DAYS[3], 120, 3)).duplicates == 3
    gw.close()
    # Without any snapshot the series are rebuilt from the log: the same closed days.
    for name in ("derived.pickle", "ledger.sqlite.index.npz"):
        (state / name).unlink()
    gw = gateway(state)
    rebuilt = series(gw.sales)
    gw.close()
    assert rebuilt["closed"] == expected["closed"]
    assert np.allclose(rebuilt["history"], expected["history"], equal_nan=True)


def test_a_start_that_read_a_long_tail_saves_new_snapshots(tmp_path, monkeypatch):
    import edge_runtime.forecast.snapshot_schedule as schedule_module
    import edge_runtime.store.ledger as ledger_module
    from edge_runtime.forecast.derived_snapshot import load_derived
    from edge_runtime.store.ledger_index import load_index

    monkeypatch.setattr(schedule_module, "SNAPSHOT_TAIL_AT_START", 30)
    monkeypatch.setattr(ledger_module, "INDEX_TAIL_AT_OPEN", 30)
    state = tmp_path / "state"
    gw = gateway(state)
    gw.ingest(events(DAYS[0], 0))
    gw.close()
    saved = {n: (state / n).read_bytes() for n in ("derived.pickle", "ledger.sqlite.index.npz")}
    gw = gateway(state)
    gw.ingest(events(DAYS[1], 40))  # 40 events the old snapshots do not cover
    gw.close()
    for name, data in saved.items():  # as after a kill -9
        (state / name).write_bytes(data)
    gw = gateway(state).start()  # the worker writes snapshots; no close() before the checks
    try:
        gw.ingest(events(DAYS[1], 80, 1))
        ledger_id = gw.ledger.ledger_id

        def saved_at() -> tuple[int, int]:
            derived = load_derived(gw.derived_path, ledger_id)
            index = load_index(gw.ledger.index_path, ledger_id)
            return (derived.upto if derived else 0, index.upto if index else 0)

        deadline = time.monotonic() + 10
        while saved_at() != (81, 81) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert saved_at() == (81, 81)
    finally:
        gw.close()


def test_a_slow_snapshot_write_does_not_hold_up_mqtt_intake(tmp_path, monkeypatch):
    import edge_runtime.forecast.snapshot_schedule as schedule_module

    writing, release = threading.Event(), threading.Event()
    real_write = schedule_module.write_derived

    def slow_disk(path, blob):  # a disk that takes its time over the write and fsync
        writing.set()
        release.wait(30)
        real_write(path, blob)

    monkeypatch.setattr(schedule_module, "write_derived", slow_disk)
    gw = gateway(tmp_path / "state")  # no snapshot yet: one is due after the first commit
    try:
        gw.ingest(events(DAYS[0], 0))
        gw.start()
        assert writing.wait(10), "the worker never started a snapshot"
        # What paho hands the worker: it must be committed while the write is still going on.
        gw._on_mqtt(json.dumps(events(DAYS[0], 40, 5)).encode(), "pos", 1, 0)
        deadline = time.monotonic() + 10
        while gw.counters["ingested"] < 45 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gw.counters["ingested"] == 45 and not (gw.derived_path).exists()
    finally:
        release.set()
        gw.close()
    assert gw.derived_path.exists()


def test_the_worker_looks_at_the_upkeep_schedules_at_most_every_look_s(tmp_path, monkeypatch):
    # A trickle of single sales gives the worker a turn per sale; each look at the schedules
    # takes the ingest lock, so turns closer together than LOOK_EVERY_S skip it. An idle
    # worker sleeps until the next look.
    from edge_runtime.forecast import upkeep as upkeep_module
    from edge_runtime.forecast.upkeep import Upkeep

    looks = []

    class Schedule:
        def save(self, take, force=False):
            looks.append(time.monotonic())

    class Never:
        def run_when_due(self, run):
            pass

    up = Upkeep(None, Never(), Schedule(), threading.Lock(), lambda: None, lambda: False)
    monkeypatch.setattr(upkeep_module, "LOOK_EVERY_S", 0.05)
    assert up.wait_s() == 0.0
    for _ in range(50):
        up.tick()
    assert len(looks) == 1 and 0.0 < up.wait_s() <= 0.05
    time.sleep(upkeep_module.LOOK_EVERY_S)
    assert up.wait_s() == 0.0
    up.tick()
    assert len(looks) == 2
