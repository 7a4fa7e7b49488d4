"""kill -9 the ledger mid-replay, again and again, and check nothing is lost or counted twice.

A subprocess (``benchmarks/crash_worker.py``) replays 100,000 real Online Retail II events (the
United Kingdom store at its real invoice times, with returns and adjustments, plus the replayer's
synthetic opening counts and weekly receipts) into a durable ledger in random group sizes,
acknowledging each group after its commit. It is killed with SIGKILL at ``--kills`` random
moments spread over the one replay (a random instant shortly after random points of progress,
a few during start-up) and restarted each time (re-sending from a little before its last
acknowledgement).
After every kill the log is checked against the acknowledgements; at the end the ledger's state
is compared with a reference fold of the events computed here in plain Python from the event
file, and with a re-fold of its own log.

With ``--archive-days N`` the worker also moves events more than N days behind its clock into
the archive's daily files as it goes (``Ledger.archive_events``, what the gateway's retention
runs, with the late-event bound set to N days), so the kills land in archiving too; the checks
then count every event id in the log and in the archive.

    python benchmarks/crash.py --kills 20 --json out.json
    python benchmarks/crash.py --kills 20 --archive-days 7 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKER = Path(__file__).with_name("crash_worker.py")
STORE = "UK"


def build_events(path: Path, n: int) -> dict:
    from twin.replay import online_retail_events, write_jsonl

    events = online_retail_events("United Kingdom", STORE, limit=n, restock=True)
    write_jsonl(events, path)
    return {
        "events": len(events),
        "skus": len({e["sku"] for e in events}),
        "types": dict(Counter(e["type"] for e in events)),
        "first_event_time": events[0]["event_time"],
        "last_event_time": events[-1]["event_time"],
        "source": "Online Retail II, United Kingdom, real invoice times; C invoices as returns; "
        "synthetic opening counts and weekly receipts",
    }


def reference_fold(events_file: Path, upto: int) -> dict:
    """The expected state of every SKU after the first ``upto`` events, folded here from the
    file (parsing times with datetime, not through the ledger's parser or SQLite)."""
    from edge_runtime.store.events import LEDGER_TYPES
    from edge_runtime.store.stock import fold

    by_sku: dict[str, list] = {}
    with open(events_file) as src:
        for i, line in enumerate(src):
            if i >= upto:
                break
            e = json.loads(line)
            if e["type"] not in LEDGER_TYPES:
                continue
            ts = round(datetime.fromisoformat(e["event_time"]).timestamp() * 1_000_000)
            row = (e["type"], e["qty"], ts, e["event_id"], e.get("order_id"))
            by_sku.setdefault(e["sku"], []).append(row)
    return {sku: fold(sku, rows, 0)[0] for sku, rows in by_sku.items()}


def logged_ids(ledger_path: Path) -> Counter:
    """Every stored event id, in the log or archived beside it, with how often it is stored."""
    from edge_runtime.store.event_archive import EventArchive

    conn = sqlite3.connect(ledger_path, timeout=30)
    try:
        ids = Counter(r[0] for r in conn.execute("SELECT event_id FROM events"))
    finally:
        conn.close()
    ids.update(e["event_id"] for e in EventArchive(ledger_path.with_name("archive")).read())
    return ids


def acked_upto(acks: Path) -> int:
    from benchmarks.crash_worker import last_ack

    return last_ack(acks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.05,
        help="kill a random 0..this s after the run passes its random point",
    )
    parser.add_argument("--startup-kills", type=int, default=3,
                        help="how many of the kills land during start-up (loading the log)")  # fmt: skip
    parser.add_argument("--max-batch", type=int, default=300,
                        help="largest group the worker commits (sizes are random 1..this)")  # fmt: skip
    parser.add_argument("--archive-days", type=float, default=0.0,
                        help="the worker archives events this many days behind its clock as it "
                        "goes (retention of the log; the late bound set to match); 0: off")  # fmt: skip
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    cache = ROOT / "var" / "bench" / f"crash_events_{args.events}.jsonl"
    meta_path = cache.with_suffix(".json")
    cache.parent.mkdir(parents=True, exist_ok=True)
    if not (cache.exists() and meta_path.exists()):
        print(f"building {args.events:,} events -> {cache}", flush=True)
        meta_path.write_text(json.dumps(build_events(cache, args.events)))
    stream = json.loads(meta_path.read_text())
    ids = [json.loads(line)["event_id"] for line in cache.read_text().splitlines()]

    tmp = Path(tempfile.mkdtemp(dir=cache.parent))
    ledger_path, acks = tmp / "ledger.sqlite", tmp / "acks.txt"
    cmd = [sys.executable, str(WORKER), str(cache), str(ledger_path), str(acks), "--store", STORE,
           "--max-batch", str(args.max_batch), "--archive-days", str(args.archive_days)]  # fmt: skip
    rng = random.Random(args.seed)
    # The 20 moments are spread over the one replay: each run is killed at a random instant
    # (0..--jitter s) after its acknowledged count passes the next of 20 random points, or
    # at a random instant of its start-up for --startup-kills of them.
    points = sorted(rng.sample(range(1, len(ids)), args.kills))
    startup = set(rng.sample(range(args.kills), min(args.startup_kills, args.kills)))
    kills, starts, finished_early = [], 0, 0
    lost_after_kill = 0
    t0 = time.perf_counter()
    for k, point in enumerate(points):
        proc = subprocess.Popen([*cmd, "--seed", str(starts)], stdout=subprocess.DEVNULL)
        starts += 1
        started = time.perf_counter()
        if k in startup:
            time.sleep(rng.uniform(0.0, 0.3))  # importing, opening, loading the log
        else:
            while acked_upto(acks) < point and proc.poll() is None:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, args.jitter))
        if proc.poll() is not None:
            finished_early += 1
            print(f"run {starts} finished before its kill")
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        delay = time.perf_counter() - started
        upto = acked_upto(acks)
        stored = logged_ids(ledger_path) if ledger_path.exists() else Counter()
        missing = sum(1 for eid in ids[:upto] if eid not in stored)
        lost_after_kill += missing
        kills.append({"after_s": round(delay, 3), "during_startup": k in startup, "acked": upto,
                      "logged": len(stored), "lost": missing,
                      "stored_twice": sum(c - 1 for c in stored.values())})  # fmt: skip
        print(f"kill {len(kills):>2}: after {delay:.2f}s{' (start-up)' if k in startup else ''}, "
              f"acked {upto:,}, in log {len(stored):,}, acked-but-missing {missing}", flush=True)  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"final run failed:\n{done.stderr[-2000:]}")
    elapsed = time.perf_counter() - t0

    upto = acked_upto(acks)
    stored = logged_ids(ledger_path)
    lost = sum(1 for eid in ids[:upto] if eid not in stored) + lost_after_kill
    stored_twice = sum(c - 1 for c in stored.values())
    from edge_runtime.store.event_archive import EventArchive
    from edge_runtime.store.ledger import Ledger
    from edge_runtime.store.plausibility import Plausibility

    late = Plausibility(max_late_days=args.archive_days) if args.archive_days else Plausibility()
    with Ledger(ledger_path, STORE, bounds=late) as ledger:
        states = ledger.states()
        refold_mismatch = ledger.verify()
    reference = reference_fold(cache, upto)
    skus = set(states) | set(reference)
    mismatched = sorted(k for k in skus if states.get(k) != reference.get(k))
    unit_diff = sum(
        abs((states[k].on_hand if k in states else 0) - (reference[k].on_hand if k in reference else 0))
        for k in mismatched
    )  # fmt: skip
    report = {
        "benchmark": "crash",
        "archive_days": args.archive_days or None,
        "archived_events": sum(1 for _ in EventArchive(ledger_path.with_name("archive")).read()),
        "stream": stream,
        "kills": len(kills),
        "starts": starts + 1,
        "runs_finished_before_kill": finished_early,
        "acked_events": upto,
        "logged_events": sum(stored.values()),
        "lost": lost,
        "double_counted": stored_twice + unit_diff,
        "stored_twice": stored_twice,
        "state_mismatch_skus": len(mismatched),
        "on_hand_units_off": unit_diff,
        "rebuild_mismatch_skus": len(refold_mismatch),
        "seconds": elapsed,
        "kill_log": kills,
        "machine": {"nproc": os.cpu_count(), "loadavg": os.getloadavg()},
    }
    print("\n| figure | value |\n| --- | --- |")
    for key in ("kills", "acked_events", "archived_events", "logged_events", "lost", "double_counted",
                "state_mismatch_skus", "rebuild_mismatch_skus"):  # fmt: skip
        print(f"| {key} | {report[key]:,} |")
    print(f"\nstream: {stream['events']:,} events, {stream['skus']:,} SKUs; {stream['source']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if lost == 0 and report["double_counted"] == 0 and not mismatched else 1


if __name__ == "__main__":
    raise SystemExit(main())
