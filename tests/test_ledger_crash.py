"""kill -9 a real ledger process mid-replay: acknowledged events survive, re-sent ones are not
counted twice, and the final state equals a fold of the events (small synthetic stream)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from edge_runtime.store.events import LEDGER_TYPES
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.stock import fold

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "benchmarks" / "crash_worker.py"


def _stream(n: int) -> list[dict]:
    rng = random.Random(7)
    kinds = ["sale"] * 6 + ["receipt", "return", "cycle_count", "reservation", "damage"]
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        e = {
            "event_id": f"e{i}",
            "store_id": "S1",
            "sku": f"K{rng.randrange(50)}",
            "type": kind,
            "qty": rng.randint(0 if kind == "cycle_count" else 1, 5),
            # Mostly in time order, some late by up to 10 minutes: re-folds happen too.
            "event_time": f"2026-01-05T{8 + (i // 600) % 12:02d}:{(i // 10 - rng.randrange(10)) % 60:02d}:00Z",
            "source": "pos",
        }
        if kind == "reservation":
            e["order_id"] = f"o{i}"
        out.append(e)
    return out


def _acked(path: Path) -> int:
    if not path.exists():
        return 0
    lines = path.read_text().split("\n")[:-1]
    return max((int(x) for x in lines if x), default=0)


@pytest.mark.slow
def test_kill_minus_nine_loses_and_double_counts_nothing(tmp_path):
    events = _stream(6000)
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    db, acks = tmp_path / "ledger.sqlite", tmp_path / "acks.txt"
    cmd = [sys.executable, str(WORKER), str(src), str(db), str(acks), "--store", "S1",
           "--max-batch", "50"]  # fmt: skip
    for round_no in range(3):
        proc = subprocess.Popen([*cmd, "--seed", str(round_no)], stdout=subprocess.DEVNULL)
        target = _acked(acks) + 300
        deadline = time.monotonic() + 60
        while _acked(acks) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Ledger(db, "S1") as led:  # every acknowledged event is in the log after the kill
            acked = _acked(acks)
            stored = {r[0] for r in led.connection.execute("SELECT event_id FROM events")}
            assert {e["event_id"] for e in events[:acked]} <= stored
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    with Ledger(db, "S1") as led:
        assert led.event_count() == len(events)
        assert led.verify() == []
        states = led.states()
    by_sku: dict[str, list] = {}
    for e in events:
        if e["type"] in LEDGER_TYPES:
            ts = round(datetime.fromisoformat(e["event_time"]).timestamp() * 1e6)
            by_sku.setdefault(e["sku"], []).append(
                (e["type"], e["qty"], ts, e["event_id"], e.get("order_id"))
            )
    assert states == {k: fold(k, rows, 0)[0] for k, rows in by_sku.items()}
