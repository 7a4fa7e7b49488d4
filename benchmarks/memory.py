"""Resident memory of a gateway that ingested 1M events of 5,000 SKUs, and what holds it.

    python benchmarks/memory.py --json out.json [--events 1000000]

A child process (so nothing of this script's own imports counts) runs the gateway's own object
(``edge_runtime.gateway.Gateway``, rules policy, no broker) from an empty state directory and
ingests the history of ``benchmarks/history.py`` (Online Retail II, every country as one store)
through ``Gateway.ingest`` in 5,000-event batches, reading RSS (``/proc/self/status`` VmRSS) as
it goes; then reports the size of each long-lived holder (deep ``sys.getsizeof``, arrays by their
buffers). A second child restarts on that state directory (from the snapshots) and ingests the
live events after the history: RSS at start and after. A third restarts with the snapshots
deleted (everything rebuilt from the log, as every start did before they existed).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing as mp
import shutil
import sqlite3
import sys
import tempfile
import time
from array import array
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.history import STORE, build, live_events  # noqa: E402

_COLS = ("event_id", "sku", "type", "qty", "event_time", "source", "order_id", "unit_price",
         "reason")  # fmt: skip


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def trimmed_rss_mb() -> float:
    """RSS after glibc returns the free memory it keeps (what is garbage, not held)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb()


def deep_size(obj, seen: set[int] | None = None) -> int:
    """Bytes reachable from ``obj`` (containers, slots, instance dicts; arrays by buffer)."""
    seen = set() if seen is None else seen
    stack, total = [obj], 0
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, type) or (callable(o) and not hasattr(o, "__dict__")):
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            total += o.nbytes + 112
            continue
        total += sys.getsizeof(o)
        if isinstance(o, array | str | bytes | int | float):
            continue
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset) or type(o).__name__ == "deque":
            stack.extend(o)
        if hasattr(o, "__dict__"):
            stack.append(vars(o))
        for slot in getattr(type(o), "__slots__", ()):
            if hasattr(o, slot):
                stack.append(getattr(o, slot))
    return total


def _gateway(state: str):
    from edge_runtime.config import load_config
    from edge_runtime.gateway import Gateway

    env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": state,
           "SHELFCAST_MQTT_ENABLED": "false"}  # fmt: skip
    return Gateway(load_config(env=env)).start()  # the worker hands rows on, as in a store


def holders(gw) -> dict[str, float]:
    led = gw.ledger
    mb = 1024 * 1024
    out = {
        "event_ids": (led._ids.nbytes + deep_size(led._ids._recent)) / mb,
        "sku_log_positions": deep_size(led._seqs) / mb,
        "stock_states": deep_size(led._states) / mb,
        "sales_series": deep_size(gw.sales) / mb,
        "policy": deep_size(gw.policy) / mb,
        "shelf_watch": deep_size(gw.shelf_watch) / mb,
        "count_watch": deep_size(gw.count_watch) / mb,
        "uplink": deep_size(gw.uplink.__dict__ | {"outbox": None}) / mb,
    }
    return {k: round(v, 1) for k, v in out.items()}


def _ingest_main(history_ledger: str, state: str, n: int, conn) -> None:
    gw = _gateway(state)
    report = {"rss_mb_empty_gateway": round(rss_mb(), 1), "rss_mb_by_events": {}}
    src = sqlite3.connect(f"file:{history_ledger}?mode=ro", uri=True)
    cur = src.execute(f"SELECT {', '.join(_COLS)} FROM events ORDER BY seq LIMIT ?", (n,))
    done = 0
    while rows := cur.fetchmany(5000):
        batch = [{k: v for k, v in zip(_COLS, r, strict=True) if v is not None} | {"store_id": STORE}
                 for r in rows]  # fmt: skip
        gw.ingest(batch, "memory-bench")
        done += len(rows)
        if done % 100_000 == 0:
            report["rss_mb_by_events"][done] = round(rss_mb(), 1)
    time.sleep(1.0)  # the worker's last hand-over
    report["rss_mb_after_ingest"] = round(rss_mb(), 1)
    report["rss_mb_after_malloc_trim"] = round(trimmed_rss_mb(), 1)
    report["holders_mb"] = holders(gw)
    report["skus"] = gw.ledger.sku_count()
    gw.close()
    conn.send(report)


def _restart_main(state: str, live: list[dict], conn) -> None:
    report = {}
    gw = _gateway(state)
    report["rss_mb_after_restart"] = round(rss_mb(), 1)
    for i in range(0, len(live), 1000):
        gw.ingest(live[i : i + 1000], "memory-bench")
    time.sleep(1.0)
    report["rss_mb_after_live"] = round(rss_mb(), 1)
    report["live_events"] = len(live)
    report["holders_mb_after_live"] = holders(gw)
    gw.close()
    conn.send(report)


def _in_child(target, *args) -> dict:
    parent, child = mp.Pipe()
    p = mp.Process(target=target, args=(*args, child))
    p.start()
    out = parent.recv()
    p.join()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--events", type=int, default=1_000_000, help="history events ingested")
    args = parser.parse_args(argv)
    cache = build(1_000_000)
    state = tempfile.mkdtemp(prefix="memory-bench-")
    try:
        result = _in_child(_ingest_main, str(cache / "ledger.sqlite"), state, args.events)
        live = live_events(1_000_000, 40_000) if args.events == 1_000_000 else []
        result |= _in_child(_restart_main, state, live)
        # The same restart as before the snapshots existed: everything rebuilt from the log.
        for name in ("derived.pickle", "ledger.sqlite.index.npz"):
            (Path(state) / name).unlink(missing_ok=True)
        again = _in_child(_restart_main, state, [])
        result["rss_mb_after_restart_without_snapshots"] = again["rss_mb_after_restart"]
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)
    raise SystemExit(main())
