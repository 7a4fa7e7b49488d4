"""The ledger's idempotency index (``edge_runtime.store.event_ids``) against the set of strings it
replaced: memory per id, and durable ledger ingest with each, in the same process.

1. Memory: ``--ids`` UUID event ids (what POS systems send) held as a Python set of strings vs
   ``EventIds`` (tracemalloc, bytes per id).
2. Lookups: the ledger's per-batch work (which of 100 incoming ids are new, then remember them)
   against an index already holding ``--ids`` ids, 1 % of the incoming ids duplicates.
3. Durable ingest: a real SQLite ledger (``synchronous=FULL``) ingesting ``--events`` sale
   events in batches of 100 on top of a log of ``--ids`` events, with each index; runs
   alternate between the two, median of ``--runs``.

    python benchmarks/event_ids.py --json var/bench/event_ids.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.machine import machine
from edge_runtime.store.event_ids import EventIds
from edge_runtime.store.ledger import Ledger


class SetIds(set):
    """The old index: a set of strings with ``EventIds``' interface."""

    def unknown(self, ids: list[str]) -> list[str]:
        return [i for i in ids if i not in self]

    def load(self, ids) -> None:
        self.update(ids)

    def update(self, ids, unseen: bool = False) -> None:
        super().update(ids)


def memory(n: int) -> dict:
    raw = [uuid.uuid4() for _ in range(n)]
    out = {}
    for name, make in (("set_of_strings", lambda: SetIds(str(u) for u in raw)),
                       ("event_ids", lambda: _loaded(str(u) for u in raw))):  # fmt: skip
        tracemalloc.start()
        held = make()
        out[f"{name}_bytes_per_id"] = round(tracemalloc.get_traced_memory()[0] / n, 1)
        tracemalloc.stop()
        del held
    return out


def _loaded(ids) -> EventIds:
    e = EventIds()
    e.load(ids)
    return e


def lookups(n: int, batches: int = 2000) -> dict:
    base = [str(uuid.uuid4()) for _ in range(n)]
    out = {}
    for name, index in (("set_of_strings", SetIds(base)), ("event_ids", _loaded(base))):
        incoming = [
            [base[(b * 100 + i) % n] if i == 0 else str(uuid.uuid4()) for i in range(100)]
            for b in range(batches)
        ]
        t0 = time.perf_counter()
        for batch in incoming:
            index.update(index.unknown(batch), unseen=True)
        out[f"{name}_us_per_event"] = round((time.perf_counter() - t0) / (batches * 100) * 1e6, 2)
    return out


def _sale(i: int, prefix: str) -> dict:
    return {"event_id": f"{prefix}{uuid.UUID(int=i)}", "store_id": "B", "sku": f"sku{i % 3000}",
            "type": "sale", "qty": 1, "event_time": f"2026-03-01T{8 + i // 3_600_000 % 12:02d}:"
            f"{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}+00:00", "source": "pos"}  # fmt: skip


def ingest(n_log: int, n_events: int, runs: int) -> dict:
    """New events come after the log in event time (late events would measure re-folds)."""
    import edge_runtime.store.ledger as ledger_module

    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.sqlite"
        ledger = Ledger(seed, store_id="B")
        for start in range(0, n_log, 5000):
            ledger.ingest_raw([_sale(i, "old-") for i in range(start, min(start + 5000, n_log))])
        ledger.close()
        times = {"set_of_strings": [], "event_ids": []}
        opened = {"set_of_strings": [], "event_ids": []}
        for r in range(runs):
            for name, cls in (("set_of_strings", SetIds), ("event_ids", EventIds)):
                path = Path(tmp) / f"{name}-{r}.sqlite"
                shutil.copyfile(seed, path)
                ledger_module.EventIds = cls
                t0 = time.perf_counter()
                ledger = Ledger(path, store_id="B")
                opened[name].append(time.perf_counter() - t0)
                events = [_sale(n_log + i, f"new{r}-") for i in range(n_events)]
                t0 = time.perf_counter()
                for b in range(0, n_events, 100):
                    ledger.ingest_raw(events[b : b + 100])
                times[name].append(time.perf_counter() - t0)
                ledger.close()
        ledger_module.EventIds = EventIds
    out = {}
    for name in times:
        out[f"{name}_events_per_s"] = round(n_events / statistics.median(times[name]))
        out[f"{name}_open_s"] = round(statistics.median(opened[name]), 2)
    out["ingest_ratio_event_ids_vs_set"] = round(
        out["event_ids_events_per_s"] / out["set_of_strings_events_per_s"], 3
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--ids", type=int, default=1_000_000, help="ids already held (default 1M)")
    ap.add_argument("--events", type=int, default=20_000, help="events ingested per run")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    result = {
        "machine": machine(),
        "setup": {"ids": args.ids, "events": args.events, "runs": args.runs},
        "memory": memory(args.ids),
        "lookups": lookups(args.ids),
        "ingest": ingest(args.ids, args.events, args.runs),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
