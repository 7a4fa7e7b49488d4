"""A store's ledger holding a long history of real events, built once and cached under ``var/``.

The events are Online Retail II, every country pooled as one store (5,082 SKUs at their real
invoice times, ``C`` invoices as returns, plus the replayer's synthetic opening counts and weekly
receipts): the first ``n_history`` events by event time go into the ledger, the rest are kept as
the live stream a benchmark replays on top of it. The ledger is written through
``edge_runtime.store.ledger.Ledger`` (the gateway's own store) in 5,000-event transactions, without a
gateway: history seeded this way leaves no stale alerts in the outbox.

    python benchmarks/history.py --events 1000000      # builds var/bench/history-1000000/

A benchmark copies the ledger into its own state directory (``copy_ledger``) and never writes
to the cached one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # --compare puts the old packages first: keep them there
    sys.path.insert(0, str(ROOT))
if sys.path[0] == str(ROOT / "benchmarks"):  # run as a script with ROOT on PYTHONPATH: its
    sys.path.pop(0)  # siblings (twin.py, api.py, hub.py) would shadow the packages of those names

STORE = "OR"
GROUP = 5000


def cache_dir(n_history: int) -> Path:
    return ROOT / "var" / "bench" / f"history-{n_history}"


def build(n_history: int) -> Path:
    """The cache directory with ``ledger.sqlite``, ``live.jsonl`` and ``info.json`` (built once)."""
    out = cache_dir(n_history)
    if (out / "info.json").exists():
        return out
    from edge_runtime.store.ledger import Ledger
    from twin.replay import online_retail_events, write_jsonl

    started = time.perf_counter()
    events = online_retail_events(None, STORE, restock=True)
    if len(events) <= n_history:
        raise SystemExit(f"history of {n_history} events asked, the data has {len(events)}")
    history, live = events[:n_history], events[n_history:]
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "ledger.sqlite.tmp"
    for leftover in out.glob("ledger.sqlite*"):
        leftover.unlink()
    ledger = Ledger(tmp, STORE)
    for i in range(0, len(history), GROUP):
        result = ledger.ingest_raw(history[i : i + GROUP], "history")
        if result.rejected:
            raise SystemExit(f"history event refused: {result.rejections[0]}")
    ledger.checkpoint()
    skus = ledger.sku_count()
    ledger.close()
    tmp.rename(out / "ledger.sqlite")
    write_jsonl(live, out / "live.jsonl")
    info = {
        "store_id": STORE,
        "history_events": len(history),
        "history_skus": skus,
        "history_last_event_time": history[-1]["event_time"],
        "live_events": len(live),
        "source": "Online Retail II, all countries pooled as one store, real invoice times; "
        "C invoices as returns; synthetic opening counts and weekly receipts",
        "build_s": round(time.perf_counter() - started, 1),
    }
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def copy_ledger(n_history: int, state_dir: Path) -> dict:
    """Copy the cached history ledger into ``state_dir`` (as the gateway's ``ledger.sqlite``)."""
    src = build(n_history)
    state_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "ledger.sqlite", state_dir / "ledger.sqlite")
    return json.loads((src / "info.json").read_text())


def live_events(n_history: int, limit: int | None = None) -> list[dict]:
    """The events after the history, in event-time order (the stream a benchmark replays)."""
    lines = (build(n_history) / "live.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:limit]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="history events")
    args = parser.parse_args(argv)
    print((build(args.events) / "info.json").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
