"""A gateway's CPU per single-sale message, per thread, as the hub benchmark runs one.

    python benchmarks/gateway_cpu.py [--sales 1800] [--rate 120] [--store CA_1] [--idle-seconds 10]
        [--json out.json]

One real ``Gateway`` in this process, set up as ``benchmarks/hub_gateway.py`` sets up each of
the hub benchmark's (SQLite ledger, outbox, rule policy, paho to a real Mosquitto, the JetStream
uplink to a real nats-server with one ``shelfcast hub`` worker consuming, a 20 ms uplink window).
After the store's opening counts, it measures each thread's CPU (``/proc/self/task``) for
``--idle-seconds`` idle, then while ``mosquitto_pub -l`` sends ``--sales`` real M5 sales of ``--store``, one JSON
event per QoS 1 message, at ``--rate`` a second (what each of the ten gateways sees at 1,200
events/s in all), until every sale is committed and forwarded to JetStream.

Figures: ``gateway_cpu_ms_per_sale`` (every thread but this script's own, which only paces the
sales), the same less the idle rate over the replay's length, ``threads_s`` (CPU seconds per
thread over the replay), ``idle_cpu_ms_per_s`` and ``idle_threads_s`` (CPU seconds per thread
over the idle time; an idle gateway's timers: ``--rate 10 --sales 300 --idle-seconds 30`` is
also what each of the ten gateways sees at 100 events/s in all). Thread CPU moves with the machine's load (a
contended gateway batches more); compare trees by running this script from both at the same
time (``git archive`` the other tree into a directory), several times, and take medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import show_figures  # noqa: E402
from benchmarks.hub import store_stream  # noqa: E402
from benchmarks.hub_gateway import start_gateway  # noqa: E402
from tests.hub_process import HubProcess  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.nats_server import NatsServer  # noqa: E402


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process, by thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(stat.parent.name), stat.parent.name)
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before.get(k, 0.0), 3) for k, v in after.items() if v > before.get(k, 0)}


def measure(
    sales_wanted: int,
    rate: float,
    store: str,
    idle_s: float = 10.0,
    on_replay_start: Callable[[], object] = lambda: None,
) -> dict:
    """The figures above; ``on_replay_start()`` is called as the replay's clock starts (after
    the opening counts and the idle time: ``gateway_cpu_parts.py`` counts from there)."""
    work = Path(tempfile.mkdtemp(prefix="gateway-cpu-"))
    counts, sales, _ = store_stream(store, sales_wanted)
    broker = Mosquitto(work / "broker").start()
    nats = NatsServer(work / "nats").start()
    worker = HubProcess(nats.url, api=False, log=work / "worker.log").start()
    try:
        gw = start_gateway(work, store, broker.port, nats.url)
        if not gw.transport.wait_connected(30):
            raise SystemExit("the gateway did not reach Mosquitto")
        for i in range(0, len(counts), 1000):
            gw.ingest(counts[i : i + 1000], "count")
        gw.hub_link.wait_forwarded(120)
        gw.flush(30)
        time.sleep(2)
        a = thread_cpu()
        time.sleep(idle_s)
        idle = spent(a, thread_cpu())
        idle.pop("MainThread", None)
        pub = subprocess.Popen(
            [shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub", "-h", "127.0.0.1",
             "-p", str(broker.port), "-q", "1", "-l", "-t", f"shelfcast/{store}/events/pos"],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)  # connected before the clock starts
        lines = [json.dumps(e).encode() + b"\n" for e in sales]
        on_replay_start()
        before, t0 = thread_cpu(), time.monotonic()
        for i, line in enumerate(lines):
            due = t0 + i / rate
            while (now := time.monotonic()) < due:
                time.sleep(min(0.002, due - now))
            pub.stdin.write(line)
            pub.stdin.flush()
        pub.stdin.close()
        pub.wait(30)
        expected = len(counts) + len(sales)
        while gw.counters["ingested"] < expected and time.monotonic() - t0 < len(sales) / rate + 60:
            time.sleep(0.01)
        gw.flush(30)
        gw.hub_link.wait_forwarded(30)
        elapsed = time.monotonic() - t0
        busy = spent(before, thread_cpu())
        busy.pop("MainThread", None)
        total, idle_rate = sum(busy.values()), sum(idle.values()) / idle_s
        figures = {
            "sales": len(sales),
            "committed": gw.counters["ingested"] - len(counts),
            "rate": rate,
            "gateway_cpu_ms_per_sale": round(total / len(sales) * 1000, 3),
            "gateway_cpu_ms_per_sale_less_idle": round(
                (total - idle_rate * elapsed) / len(sales) * 1000, 3
            ),
            "idle_cpu_ms_per_s": round(idle_rate * 1000, 2),
            "busy_cpu_ms_per_s": round(total / elapsed * 1000, 2),
            "threads_s": busy,
            "idle_seconds": idle_s,
            "idle_threads_s": idle,
            "loadavg_1m": os.getloadavg()[0],
        }
        gw.close()
        return figures
    finally:
        worker.stop()
        nats.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sales", type=int, default=1800)
    ap.add_argument("--rate", type=float, default=120.0, help="sales per second")
    ap.add_argument("--store", default="CA_1", help="an M5 store (m5_store_days)")
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="idle time measured")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    figures = measure(args.sales, args.rate, args.store, args.idle_seconds)
    show_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
