"""Where a gateway's CPU per single-sale message goes: ``gateway_cpu.py``'s run, with the thread
CPU time (``time.thread_time_ns``) of the named functions below summed over the replay.

    python benchmarks/gateway_cpu_parts.py [--sales 1800] [--rate 120] [--json out.json]

Each part is counted on the thread that ran it and includes what it calls (the parts nest:
``MqttIntake._ingest`` holds ``Ledger._write``, which holds ``DecisionEngine.stage``...);
``BEGIN`` and ``COMMIT`` are the ledger transaction's own statements. Figures per call and per
sale, in microseconds. The wrappers cost a few microseconds a call: compare parts with each
other, and whole runs with ``gateway_cpu.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import benchmarks.gateway_cpu as bench  # noqa: E402
from benchmarks.figures_out import show_figures  # noqa: E402

SPENT: Counter[str] = Counter()
CALLS: Counter[str] = Counter()


def _timed(name: str, f):
    @functools.wraps(f)
    def timed(*args, **kwargs):
        t0 = time.thread_time_ns()
        try:
            return f(*args, **kwargs)
        finally:
            SPENT[name] += time.thread_time_ns() - t0
            CALLS[name] += 1

    return timed


def _wrap(owner, *names: str) -> None:
    label = getattr(owner, "__name__", "").rsplit(".", 1)[-1]
    for name in names:
        setattr(owner, name, _timed(f"{label}.{name}", getattr(owner, name)))


def instrument() -> None:
    import paho.mqtt.client as paho

    import edge_runtime.store.ledger_writes as ledger_writes
    from edge_runtime.decide.engine import DecisionEngine
    from edge_runtime.gateway import Gateway
    from edge_runtime.ingest.mqtt_intake import MqttIntake
    from edge_runtime.messages.envelope import Message
    from edge_runtime.store.ledger import Ledger
    from edge_runtime.store.outbox import Outbox
    from edge_runtime.store.store_failure import write_transaction
    from edge_runtime.transport import uplink
    from edge_runtime.transport.jetstream_uplink import JetStreamUplink
    from edge_runtime.transport.lean_client import LeanClient
    from edge_runtime.transport.mqtt import MqttTransport
    from edge_runtime.transport.outbox_pump import OutboxPump

    _wrap(MqttIntake, "run_once", "_ingest")
    _wrap(Ledger, "parse", "_write", "_fold_new", "_advance")
    _wrap(DecisionEngine, "stage", "_decide_batch", "_decide_steps", "_watch")
    _wrap(uplink.Uplink, "write")
    _wrap(uplink, "window_message")
    _wrap(Outbox, "_insert", "mark_sent")
    _wrap(Message, "to_json", "to_payload")
    _wrap(OutboxPump, "pump")
    _wrap(Gateway, "_handover", "_ack", "_report_health")
    _wrap(MqttTransport, "publish")
    _wrap(JetStreamUplink, "_rows", "_save_cursor")
    _wrap(paho.Client, "_loop", "loop_write", "loop_misc", "_packet_handle")
    _wrap(LeanClient, "loop_read", "_handle_publish")

    @contextlib.contextmanager
    def transaction(conn):  # write_transaction with its BEGIN and COMMIT timed
        execute = conn.execute

        class Timed:
            def __getattr__(self, name):
                return getattr(conn, name)

            def execute(self, sql, *args):
                if sql in ("BEGIN IMMEDIATE", "COMMIT"):
                    return _timed(sql.split()[0], execute)(sql, *args)
                return execute(sql, *args)

        with write_transaction(Timed()):
            yield conn

    ledger_writes.write_transaction = transaction


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sales", type=int, default=1800)
    ap.add_argument("--rate", type=float, default=120.0, help="sales per second")
    ap.add_argument("--store", default="CA_1")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    instrument()

    def from_the_replay() -> None:  # the opening counts and the idle time are not counted
        SPENT.clear()
        CALLS.clear()

    figures = bench.measure(args.sales, args.rate, args.store, 2.0, from_the_replay)
    sales = figures["sales"]
    figures["parts_us"] = {
        name: {
            "calls": CALLS[name],
            "per_call": round(ns / CALLS[name] / 1e3, 1),
            "per_sale": round(ns / sales / 1e3, 1),
        }
        for name, ns in SPENT.most_common()
    }
    show_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
