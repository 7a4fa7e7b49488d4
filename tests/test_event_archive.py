"""Old events leave the ledger's log for compressed daily files, exactly once, and the ledger's
state, re-folds, duplicates and restarts are as if they had stayed."""

from __future__ import annotations

import json
import random
import sqlite3

from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.events import LEDGER_TYPES
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.ledger_index import load_index
from edge_runtime.store.plausibility import DAY_US, Plausibility
from edge_runtime.store.stock import fold, iso_utc

T0 = 1_767_600_000_000_000  # 2026-01-05T08:00Z
BOUNDS = Plausibility(max_late_days=2.0)
KINDS = ("sale", "sale", "receipt", "reservation", "reservation_release", "cycle_count", "return")


def history(n: int = 600, days: int = 10, seed: int = 1) -> list[dict]:
    """Events of four SKUs over ``days`` days, a few of them arriving late (within a day)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = T0 + i * days * DAY_US // n
        if i % 17 == 0:
            ts -= rng.randint(1, DAY_US // 2)  # late, but within the bound
        kind = rng.choice(KINDS)
        out.append({"event_id": f"e{i}", "store_id": "S1", "sku": f"K{i % 4}", "type": kind,
                    "qty": rng.randint(1, 9), "event_time": iso_utc(ts),
                    "source": "count" if kind == "cycle_count" else "pos", "order_id": "o1"})  # fmt: skip
    return out


def reference(events: list[dict]) -> dict:
    """Every SKU folded from all its events (nothing archived), in plain Python."""
    by_sku: dict[str, list] = {}
    for e in events:
        if e["type"] in LEDGER_TYPES:
            row = (e["type"], e["qty"], _ts(e), e["event_id"], "o1")
            by_sku.setdefault(e["sku"], []).append(row)
    return {sku: fold(sku, rows, 0)[0] for sku, rows in by_sku.items()}


def _ts(e: dict) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(e["event_time"]).timestamp() * 1_000_000)


def logged(path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM events")]


def test_archived_events_leave_the_log_once_and_the_state_stays_the_same(tmp_path):
    path, box = tmp_path / "ledger.sqlite", EventArchive(tmp_path / "archive")
    events = history()
    with Ledger(path, "S1", bounds=BOUNDS) as ledger:
        for i in range(0, 500, 50):
            ledger.ingest_raw(events[i : i + 50])
        before = ledger.states()
        ledger.write_index()
        moved = ledger.archive_events(box, ledger.clock_us - 3 * DAY_US)
        assert moved > 200 and ledger.event_count() == 500 - moved
        assert ledger.states() == before and ledger.verify() == []
        ledger.write_index()  # archived ids are forgotten: the snapshot holds the log's only
        assert len(load_index(ledger.index_path, ledger.ledger_id).hi) == ledger.event_count()
        archived = [e["event_id"] for e in box.read()]
        assert sorted(archived + logged(path)) == sorted(e["event_id"] for e in events[:500])
        assert all(d < iso_utc(ledger.clock_us - 2 * DAY_US)[:10] for d in box.days()[:-1])
        # Late events (re-folded from the base state), the rest, and archived ones again:
        # older than the late bound, refused (dead-lettered) as they would have been anyway.
        again = ledger.ingest_raw(events[0:5] + events[500:])
        assert again.rejected == 5 and again.accepted == 100
        assert ledger.states() == reference(events) and ledger.verify() == []
    with Ledger(path, "S1", bounds=BOUNDS) as ledger:  # a restart: snapshot plus log
        assert ledger.states() == reference(events) and ledger.verify() == []
        assert ledger.archive_events(box, ledger.clock_us) > 0  # nearer than the bound: clamped
        assert ledger.verify() == []


def test_an_append_the_ledger_never_committed_is_cut_from_the_file(tmp_path):
    path, box = tmp_path / "ledger.sqlite", EventArchive(tmp_path / "archive")
    events = history()
    with Ledger(path, "S1", bounds=BOUNDS) as ledger:
        ledger.ingest_raw(events)
        ledger.write_index()
        ledger.archive_events(box, ledger.clock_us - 5 * DAY_US)
        day = box.days()[-1]
        # A crash after the append, before the transaction: the mark names the size before.
        with sqlite3.connect(path) as conn:
            mark = json.dumps({"day": day, "size": box.size(day)})
            conn.execute("INSERT INTO meta VALUES ('archive_mark', ?)", (mark,))
        box.append(day, [{"event_id": "never-committed"}])
        ledger.archive_events(box, ledger.clock_us - 3 * DAY_US)
        archived = [e["event_id"] for e in box.read()]
        assert "never-committed" not in archived and len(archived) == len(set(archived))
        assert sorted(archived + logged(path)) == sorted(e["event_id"] for e in events)
        assert ledger.verify() == []
