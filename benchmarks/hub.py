"""The hub's figures: a store's sale to the online availability view, and worker throughput.

    python benchmarks/hub.py --json out.json [--stores 4] [--rate 1200] [--seconds 10]

Everything runs on this machine over loopback, each part the production code: Mosquitto, one
nats-server with JetStream, ``shelfcast hub`` processes (workers and the API), and one real
``Gateway`` per store (SQLite ledger, outbox, rule policy, paho, the JetStream uplink) in this
process with a 20 ms uplink window.

- ``p50/p99_pos_to_online_ms``: real M5 sales (store days from ``m5_store_days``, units spread over
  opening hours by ``twin.replay``, opening counts ingested first) published as one JSON event
  per MQTT message (``mosquitto_pub -l``, QoS 1) at ``--rate`` events/s in total across
  ``--stores`` stores. Latency of a sale: from the moment its line is handed to mosquitto_pub to
  the moment the hub's live view (``hub.live_view.LiveView``, the object the availability API
  answers from, fed by the same key-value watch as the API process) holds that store x SKU's on
  hand with the sale counted. Both are CLOCK_MONOTONIC on this machine. A sample of figures is
  also read through the HTTP API and compared.
- ``hub_events_per_s_1_worker`` / ``_2_workers`` (``hub_events_per_s`` is the first):
  that many ``shelfcast hub --no-api`` processes join a fresh server's queue group, then
  ``--messages`` stock messages (uplink windows of 5 SKU rows, 20 stores, chained per store as
  gateways send them) are published as fast as JetStream acknowledges them; messages applied
  per second, first delivery to the last ack.
  ``scale_out_ratio`` = 2 workers / 1 worker.
- ``cpu_count``, ``load_average`` (before and after) and CPU seconds of each process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_runtime.config import load_config, with_mqtt  # noqa: E402
from edge_runtime.gateway import Gateway  # noqa: E402
from edge_runtime.messages import UplinkDeltas  # noqa: E402
from hub.network_view import sku_key  # noqa: E402
from hub.streams import STOCK_BUCKET, UPLINK_STREAM, WORKERS, ensure  # noqa: E402
from tests.hub_process import HubProcess  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.nats_server import NatsServer  # noqa: E402

M5_STORES = ["CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc; its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_stream(store: str, sales_wanted: int) -> tuple[list[dict], list[dict]]:
    """(opening counts, the first ``sales_wanted`` sales) of one M5 store, in event-time order."""
    from twin.replay import m5_events

    events = m5_events(stores=[store], store_id=store, restock=True)
    counts = [e for e in events if e["type"] == "cycle_count"]
    sales = [e for e in events if e["type"] == "sale"][:sales_wanted]
    return counts, sales


def start_gateway(work: Path, store: str, broker: Mosquitto, nats_url: str) -> Gateway:
    env = {
        "SHELFCAST_STORE_ID": store,
        "SHELFCAST_STATE_DIR": str(work / store),
        "SHELFCAST_UPLINK_INTERVAL_S": "0.02",
        "SHELFCAST_HUB_URL": nats_url,
        "SHELFCAST_HUB_HEARTBEAT_S": "1",
    }
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)
    return Gateway(cfg).start()


class Watcher:
    """The stock bucket watched from a thread, every update stamped with CLOCK_MONOTONIC."""

    def __init__(self, nats_url: str):
        self.nats_url = nats_url
        self.updates: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.ready = threading.Event()
        self._stop = False
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        import nats

        from hub.live_view import LiveView

        nc = await nats.connect(self.nats_url)
        js = nc.jetstream()
        view = LiveView()
        kv = await js.key_value(STOCK_BUCKET)
        watcher = await kv.watchall()
        while not self._stop:
            try:
                entry = await watcher.updates(timeout=0.5)
            except TimeoutError:
                continue
            if entry is None:
                self.ready.set()
                continue
            if entry.value:
                value = json.loads(entry.value)
                if "on_hand" not in value:
                    continue  # an alert's confidence or a conflict on a SKU with no figure yet
                view.put(STOCK_BUCKET, entry.key, value)  # what the API's view does with it
                self.updates[entry.key].append((time.monotonic(), value["on_hand"]))
        await nc.close()

    def start(self) -> Watcher:
        self.thread.start()
        self.ready.wait(30)
        return self

    def wait_quiet(self, quiet_s: float, timeout: float) -> None:
        """Until no update came for ``quiet_s`` (the hub has caught up), at most ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = max((u[-1][0] for u in list(self.updates.values()) if u), default=0.0)
            if time.monotonic() - last >= quiet_s:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop = True
        self.thread.join(5)


def publish_paced(port: int, per_store: dict[str, list[dict]], rate: float, seconds: float):
    """Sales at ``rate`` events/s in total, one mosquitto_pub -l per store; returns
    ``[(t_sent, store, sku, nth sale of that sku in the run)]``."""
    pub = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    procs = {
        s: subprocess.Popen(
            [
                pub,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-q",
                "1",
                "-l",
                "-t",
                f"shelfcast/{s}/events/pos",
            ],
            stdin=subprocess.PIPE,
        )
        for s in per_store
    }
    time.sleep(1.0)  # each mosquitto_pub connects before the clock starts
    sent, nth = [], defaultdict(int)
    stores = list(per_store)
    total = min(int(rate * seconds), sum(len(v) for v in per_store.values()))
    t0 = time.monotonic()
    for i in range(total):
        store = stores[i % len(stores)]
        e = per_store[store][i // len(stores)]
        due = t0 + i / rate
        while (now := time.monotonic()) < due:
            time.sleep(min(0.002, due - now))
        procs[store].stdin.write(json.dumps(e).encode() + b"\n")
        procs[store].stdin.flush()
        nth[(store, e["sku"])] += 1
        sent.append((time.monotonic(), store, e["sku"], nth[(store, e["sku"])]))
    elapsed = time.monotonic() - t0
    for p in procs.values():
        p.stdin.close()
        p.wait(30)
    return sent, total / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_phase(args: argparse.Namespace, work: Path) -> dict:
    stores = M5_STORES[: args.stores]
    per_sales = int(args.rate * args.seconds / len(stores)) + 1
    streams = {s: store_stream(s, per_sales) for s in stores}
    broker = Mosquitto(work / "broker").start()
    nats_server = NatsServer(work / "nats").start()
    hub = HubProcess(nats_server.url, log=work / "hub.log").start()
    gws = {s: start_gateway(work, s, broker, nats_server.url) for s in stores}
    initial: dict[tuple[str, str], float] = {}
    try:
        for s, gw in gws.items():
            assert gw.transport.wait_connected(20)
            counts = streams[s][0]
            for i in range(0, len(counts), 1000):
                gw.ingest(counts[i : i + 1000], "count")
            initial.update({(s, e["sku"]): e["qty"] for e in counts})
        for gw in gws.values():
            gw.hub_link.wait_forwarded(120)
        watcher = Watcher(nats_server.url).start()
        time.sleep(2)  # the worker applies the opening counts
        cpu0 = {p: cpu_seconds(pid) for p, pid in _pids(hub, nats_server, broker).items()}
        load0 = os.getloadavg()
        sent, achieved = publish_paced(
            broker.port, {s: v[1] for s, v in streams.items()}, args.rate, args.seconds
        )
        for gw in gws.values():
            gw.flush(30)
            gw.hub_link.wait_forwarded(60)
        watcher.wait_quiet(2.0, 60)
        cpu = {
            p: round(cpu_seconds(pid) - cpu0[p], 2)
            for p, pid in _pids(hub, nats_server, broker).items()
        }
        load1 = os.getloadavg()
        http_checked = _http_spot_check(hub, gws, sent)
        watcher.stop()
    finally:
        for gw in gws.values():
            gw.close()
        hub.stop()
        nats_server.stop()
        broker.stop()
    lat, unseen = [], 0
    for t_sent, store, sku, k in sent:
        target = initial.get((store, sku), 0) - k
        if target < 0:
            continue  # sold beyond the book: the figure stays at zero, nothing to time
        seen = [
            t
            for t, on_hand in watcher.updates.get(sku_key(store, sku), [])
            if t >= t_sent and on_hand <= target
        ]
        if seen:
            lat.append((seen[0] - t_sent) * 1000)
        else:
            unseen += 1
    return {
        "stores": stores,
        "offered_events_per_s": args.rate,
        "achieved_events_per_s": round(achieved, 1),
        "sales_timed": len(lat),
        "sales_never_seen_online": unseen,
        "p50_pos_to_online_ms": round(percentile(lat, 0.50), 2) if lat else None,
        "p99_pos_to_online_ms": round(percentile(lat, 0.99), 2) if lat else None,
        "max_pos_to_online_ms": round(max(lat), 2) if lat else None,
        "http_spot_check_equal": http_checked,
        "cpu_seconds_during_replay": cpu,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in load1],
    }


def _pids(hub: HubProcess, nats_server: NatsServer, broker: Mosquitto) -> dict[str, int]:
    return {
        "gateways_and_bench (this process)": os.getpid(),
        "hub (1 worker + API)": hub.proc.pid,
        "nats-server": nats_server.proc.pid,
        "mosquitto": broker.proc.pid,
    }


def _http_spot_check(hub: HubProcess, gws: dict[str, Gateway], sent: list) -> str:
    """Sold SKUs read through the HTTP API: equal to the stores' ledgers?"""
    checked = equal = 0
    for _t, store, sku, _k in sent[:: max(1, len(sent) // 20)]:
        fig = {x["store_id"]: x for x in hub.get(f"/v1/availability/{sku}")["stores"]}[store]
        checked += 1
        equal += fig["on_hand"] == gws[store].stock(sku).on_hand
    return f"{equal}/{checked}"


def _stock_messages(n: int, stores: int = 20, rows: int = 5) -> list[tuple[str, dict, bytes]]:
    """``n`` chained stock messages as gateways send them (gzip UplinkDeltas, seq headers)."""
    out, prev = [], defaultdict(int)
    now = datetime.now(UTC)
    for i in range(n):
        store = f"B{i % stores}"
        seq = i // stores + 1
        deltas = [(f"FOODS_3_{(seq * rows + r) % 500:03d}", -1, 0, 10, 10, 1) for r in range(rows)]
        msg = UplinkDeltas(
            store_id=store,
            model_version="rules-1",
            window_start=now,
            window_end=now,
            events=rows,
            deltas=deltas,
        )
        headers = {
            "Nats-Msg-Id": msg.message_id,
            "Shelfcast-Seq": str(seq),
            "Shelfcast-Prev-Seq": str(prev[store]),
        }
        prev[store] = seq
        out.append((f"shelfcast.{store}.stock", headers, msg.to_payload()))
    return out


async def _fill(url: str, messages) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure(js)
    for i in range(0, len(messages), 500):
        acks = [await js.publish_async(s, p, headers=h) for s, h, p in messages[i : i + 500]]
        await asyncio.gather(*acks)
    await nc.close()


async def _consumer_state(url: str) -> tuple[int, int, int]:
    import nats

    nc = await nats.connect(url)
    info = await nc.jetstream().consumer_info(UPLINK_STREAM, WORKERS)
    await nc.close()
    return info.num_pending, info.num_ack_pending, info.delivered.stream_seq


def throughput_phase(workers: int, messages: int, work: Path) -> dict:
    server = NatsServer(work / f"nats-tp{workers}").start()
    procs: list[HubProcess] = []
    batch = _stock_messages(messages)
    try:
        procs = [
            HubProcess(server.url, api=False, log=work / f"tp{workers}-{i}.log").start()
            for i in range(workers)
        ]
        time.sleep(4)  # every worker has joined the queue group before the first message
        filler = threading.Thread(target=asyncio.run, args=(_fill(server.url, batch),))
        filler.start()
        t0 = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            pending, ack_pending, delivered = asyncio.run(_consumer_state(server.url))
            now = time.monotonic()
            if t0 is None and delivered > 0:
                t0 = now
            if t0 is not None and pending == 0 and ack_pending == 0:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        filler.join()
        cpu = [round(cpu_seconds(p.proc.pid), 2) for p in procs]
    finally:
        for p in procs:
            p.stop()
        server.stop()
    return {
        "messages": messages,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(messages / elapsed, 1),
        "sku_rows_per_s": round(5 * messages / elapsed, 1),
        "worker_cpu_seconds": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--stores", type=int, default=4, choices=range(1, 11))
    parser.add_argument("--rate", type=float, default=1200.0, help="events/s, all stores")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--messages", type=int, default=4000, help="for the throughput phase")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="shelfcast-hub-bench-"))
    out: dict = {"cpu_count": os.cpu_count()}
    if not args.skip_latency:
        out.update(latency_phase(args, work))
    if args.skip_throughput:
        print(json.dumps(out, indent=2))
        return 0
    one = throughput_phase(1, args.messages, work)
    two = throughput_phase(2, args.messages, work)
    out.update(
        {
            "hub_events_per_s": one["messages_per_s"],
            "hub_events_per_s_1_worker": one["messages_per_s"],
            "hub_events_per_s_2_workers": two["messages_per_s"],
            "scale_out_ratio": round(two["messages_per_s"] / one["messages_per_s"], 2),
            "throughput_runs": {"1_worker": one, "2_workers": two},
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        }
    )
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
