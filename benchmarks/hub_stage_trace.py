"""Stage clocks for ``benchmarks/hub.py --stages``: where a sale's time to the hub goes.

Each process of the pipeline stamps the stages it sees with CLOCK_MONOTONIC (one clock for every
process on a machine) into a list, written as JSON lines to ``$HUB_BENCH_STAGE_TRACE/<role>-<pid>
.jsonl`` when it exits; ``benchmarks/hub.py`` joins them per sale. The production code is not
changed: the stamps wrap its methods in the benchmark's processes only.

- gateway (``hub_gateway.py``): ``mqtt`` (a payload delivered by paho, by event id),
  ``commit`` (the ledger transaction holding the event committed), ``window`` (an uplink window
  committed to the outbox: its seq and SKUs), ``acked`` (JetStream acknowledged the outbox rows
  in ``(after, upto]``).
- hub worker: ``recv`` (a stock message pushed to the worker: store, seq), ``kv`` (JetStream
  acknowledged a SKU's figure to the worker: key, the figure's seq), ``done`` (the chain's SKUs
  written, the worker's part of the sale's way over: store, the chain's seqs; the cursor
  follows later, off that way).
- hub API: ``view`` (the API's watch put a stock figure in its live view: key, seq).

Run as a script, it is ``shelfcast`` with the hub's stamps installed:

    HUB_BENCH_STAGE_TRACE=/tmp/t python benchmarks/hub_stage_trace.py hub --nats ... --no-api

>>> log = StageLog(None)
>>> log.stamp("commit", "e1"); log.rows[0][0], log.rows[0][2]
('commit', 'e1')
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TRACE_ENV = "HUB_BENCH_STAGE_TRACE"  # not SHELFCAST_*: the config refuses unknown ones


class StageLog:
    """Stamps kept in memory (a list append: no I/O on the timed path), written at exit."""

    def __init__(self, path: Path | None):
        self.path = path
        self.rows: list[tuple] = []
        if path is not None:
            atexit.register(self.dump)

    def stamp(self, stage: str, *key: Any) -> None:
        self.rows.append((stage, time.monotonic(), *key))

    def dump(self) -> None:
        if self.path is None or not self.rows:
            return
        with self.path.open("w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.rows)
        self.rows = []


def stage_log(role: str) -> StageLog | None:
    """This process's log when ``$HUB_BENCH_STAGE_TRACE`` names a directory, else None."""
    where = os.environ.get(TRACE_ENV)
    if not where:
        return None
    return StageLog(Path(where) / f"{role}-{os.getpid()}.jsonl")


def trace_gateway(gw: Any, log: StageLog) -> None:
    """Stamp a started ``Gateway``'s stages (instance attributes shadow its methods)."""
    put, engine_committed = gw.intake.put, gw.engine.committed

    def traced_put(payload: bytes, source: str, mid: int, qos: int) -> None:
        if payload[:1] == b"{":
            log.stamp("mqtt", json.loads(payload).get("event_id"))
        put(payload, source, mid, qos)

    def traced_engine_committed(result):
        t = time.monotonic()  # right after the ledger's COMMIT
        log.rows.extend(("commit", t, e.event_id) for e in result.events)
        engine_committed(result)

    gw.intake.put, gw.engine.committed = traced_put, traced_engine_committed
    window_committed = gw.uplink.committed

    def traced_window(window):
        rows = window_committed(window)
        for r in rows:
            log.stamp("window", r.seq, sorted({s.sku for s in window.states}))
        return rows

    gw.uplink.committed = traced_window
    link = gw.hub_link
    forward = link._forward_once

    async def traced_forward(js):
        after = link.cursor
        sent = await forward(js)
        if sent:
            log.stamp("acked", after, link.cursor)
        return sent

    link._forward_once = traced_forward


def trace_hub(log: StageLog) -> None:
    """Stamp the hub worker's and the API's stages (class methods wrapped before any runs)."""
    from hub.kv_patch import Patcher
    from hub.live_view import LiveView
    from hub.network_view import STOCK, NetworkView
    from hub.streams import STOCK_BUCKET
    from hub.worker import HubWorker

    on_msg, apply_chain, put = HubWorker._on_msg, NetworkView._apply_chain, LiveView.put
    stock_subject, patch_many = f"$KV.{STOCK_BUCKET}.", getattr(Patcher, "patch_many", None)

    @functools.wraps(on_msg)
    async def traced_on_msg(self, msg):
        _, store, kind, _p = msg.subject.rsplit(".", 3)
        if kind == STOCK:
            log.stamp("recv", store, int(msg.headers["Shelfcast-Seq"]))
        await on_msg(self, msg)

    @functools.wraps(patch_many)
    async def traced_patch_many(self, changes, *args, **kw):
        written = await patch_many(self, changes, *args, **kw)
        if self.subject == stock_subject:
            t = time.monotonic()
            log.rows.extend(("kv", t, k, v["seq"]) for k, v in written.items() if "seq" in v)
        return written

    @functools.wraps(apply_chain)
    async def traced_apply_chain(self, store, chain, **kw):
        await apply_chain(self, store, chain, **kw)
        log.stamp("done", store, [seq for seq, _ in chain])

    @functools.wraps(put)
    def traced_put(self, bucket, key, value):
        put(self, bucket, key, value)
        if bucket == STOCK_BUCKET and value is not None and "seq" in value:
            log.stamp("view", key, value["seq"])

    HubWorker._on_msg = traced_on_msg
    NetworkView._apply_chain = traced_apply_chain
    if patch_many is not None:  # older workers wrote key by key: no ``kv`` stamp
        Patcher.patch_many = traced_patch_many
    LiveView.put = traced_put


def main() -> int:
    sys.path.insert(0, str(ROOT))
    log = stage_log("hub")
    if log is not None:
        trace_hub(log)
    from shelfcast.cli import main as shelfcast

    return shelfcast(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
