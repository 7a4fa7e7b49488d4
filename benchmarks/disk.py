"""A gateway's disk use after a long replay of real events, with retention on and off.

The events are Online Retail II, every country pooled as one store (real invoice times from
December 2009 on, ``C`` invoices as returns, plus the replayer's synthetic opening counts and
weekly receipts): the first ``--events`` of them by event time, ingested through a real
``Gateway`` (rules policy, MQTT off, so every message it writes stays in the outbox until
retention removes it) in groups of 5,000, as a store's months of trade arrive. With retention on,
``Gateway.run_retention`` (what the worker runs every ``[retention] every_s``) runs after every
``--retain-every`` events with the default bounds but one: the outbox's age bound (7 days of
wall clock) cannot act in a replay that compresses 21 months into minutes, so its row bound is
set to ``--outbox-rows`` (about what 7 days of this store's messages come to); with it off,
retention never runs. Each run then
closes the gateway (the WAL is checkpointed into the file) and measures its state directory:
every file's bytes, the SQLite file's pages in use, the archive's bytes and the rows per table.

    python benchmarks/disk.py --events 1000000 --json out.json
    python benchmarks/disk.py --events 100000 --json out.json   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402

STORE = "OR"
GROUP = 5000


def replay(
    events: list[dict], state: Path, retention: bool, retain_every: int, outbox_rows: int
) -> dict:
    """Ingest ``events`` into a fresh gateway at ``state``; its disk use afterwards."""
    from edge_runtime.config import load_config
    from edge_runtime.gateway import Gateway

    shutil.rmtree(state, ignore_errors=True)
    env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(state),
           "SHELFCAST_MQTT_ENABLED": "false",
           "SHELFCAST_RETENTION_ENABLED": "true" if retention else "false",
           "SHELFCAST_RETENTION_OUTBOX_ROWS": str(outbox_rows)}  # fmt: skip
    cfg = load_config(env=env)
    started = time.perf_counter()
    retained = 0.0
    with Gateway(cfg) as gw:
        for i in range(0, len(events), GROUP):
            gw.ingest(events[i : i + GROUP], "replay")
            if retention and (i + GROUP) % retain_every < GROUP:
                t = time.perf_counter()
                gw.run_retention()
                retained += time.perf_counter() - t
        mismatched = gw.ledger.verify()
        clock = gw.ledger.clock_us
    return {
        "retention": retention,
        "seconds": round(time.perf_counter() - started, 1),
        "retention_seconds": round(retained, 1),
        "refold_mismatch_skus": len(mismatched),
        "last_event_time": _iso(clock),
        **measure(state, cfg.ledger_path),
        "bounds": cfg.retention.model_dump() if retention else None,
    }


def _iso(ts_us: int) -> str:
    from edge_runtime.store.stock import iso_utc

    return iso_utc(ts_us)


def measure(state: Path, ledger: Path) -> dict:
    files = {str(p.relative_to(state)): p.stat().st_size for p in state.rglob("*") if p.is_file()}
    archive = sum(n for name, n in files.items() if name.startswith("archive/"))
    with sqlite3.connect(ledger) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        rows = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("events", "outbox", "dead_letters", "conflicts", "stock", "stock_base")
        }
    mb = 1 / 1e6
    return {
        "state_dir_mb": round(sum(files.values()) * mb, 1),
        "ledger_file_mb": round(files.get(ledger.name, 0) * mb, 1),
        "ledger_in_use_mb": round((pages - free) * page * mb, 1),
        "archive_mb": round(archive * mb, 1),
        "archive_files": sum(name.startswith("archive/") for name in files),
        "other_files_mb": {
            k: round(v * mb, 2)
            for k, v in files.items()
            if k != ledger.name and not k.startswith("archive/")
        },
        "rows": rows,
    }


def markdown(out: dict) -> str:
    lines = ["| figure | retention off | retention on |", "| --- | --- | --- |"]
    off, on = out["off"], out["on"]
    for key in ("state_dir_mb", "ledger_file_mb", "ledger_in_use_mb", "archive_mb", "seconds"):
        lines.append(f"| {key} | {off[key]} | {on[key]} |")
    for table in ("events", "outbox", "dead_letters", "conflicts"):
        lines.append(f"| rows: {table} | {off['rows'][table]:,} | {on['rows'][table]:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--retain-every", type=int, default=20_000,
                        help="events between two retention runs (the worker's hourly timer, "
                        "in a replay that compresses months into minutes)")  # fmt: skip
    parser.add_argument("--outbox-rows", type=int, default=2000,
                        help="delivered outbox rows kept (the replay's stand-in for 7 days)")  # fmt: skip
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    from twin.replay import online_retail_events

    events = online_retail_events(None, STORE, limit=args.events, restock=True)
    if len(events) < args.events:
        print(f"the data holds {len(events):,} events; replaying all of them", file=sys.stderr)
    work = ROOT / "var" / "bench" / "disk"
    out = {
        "benchmark": "disk",
        "events": len(events),
        "first_event_time": events[0]["event_time"],
        "last_event_time": events[-1]["event_time"],
        "retain_every_events": args.retain_every,
        "off": replay(events, work / "off", False, args.retain_every, args.outbox_rows),
        "on": replay(events, work / "on", True, args.retain_every, args.outbox_rows),
        "machine": {**machine(), "loadavg": os.getloadavg()},
    }
    out["reduction"] = round(1 - out["on"]["state_dir_mb"] / out["off"]["state_dir_mb"], 3)
    print(markdown(out))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0 if out["off"]["refold_mismatch_skus"] == out["on"]["refold_mismatch_skus"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
