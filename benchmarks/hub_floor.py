"""The floor of sale-to-online latency on this machine: ``benchmarks/hub.py``'s pipeline with the
store gateway and the hub worker cut to what the contract makes mandatory.

    python benchmarks/hub_floor.py --json out.json [--stores 10] [--rate 1200] [--seconds 8]
        [--ramp 150,300,600] [--ramp-seconds 5] [--warmup-rate 100] [--warmup-seconds 4] [--runs 3]
    python benchmarks/hub_floor.py --summary floor1.json hub1.json ...   # no run: a table

Kept from ``hub.py`` (imported, not copied): Mosquitto on the shipped settings, one nats-server
with JetStream, the real M5 replay (opening counts first, then sales), one ``mosquitto_pub -l``
per store at the total rate split over the stores, every service in a session of its own, the
rate steps (``--rate`` and ``--ramp``, ascending, as ``hub.py`` runs them), the
latency from a sale's hand-over to the moment a watch of the stock bucket (``hub.py``'s
``Watcher``, feeding ``hub.live_view.LiveView`` as the API does) holds it, CPU per process.

Replaced: each store's gateway by ``hub_floor_store.py`` (paho's client as the gateway has it,
QoS 1, persistent session; per 20 ms group a SQLite commit in WAL with ``synchronous=FULL``, one
JetStream publish of the new on hand per SKU with ``Nats-Msg-Id``, its ack awaited, then the
PUBACKs), and the hub's workers and API by ``hub_floor_worker.py`` (one durable consumer on a
fresh stream, each store x SKU's on hand put in the stock bucket, the batch acked). Left out:
decisions, forecasts, alerts, the outbox and its cursor, heartbeats, fleet and cursor buckets,
partitions and membership, gzip, the HTTP API, reconnects and stage traces.

Each step also lists ``max_ms_by_half_second``: the slowest sale of each half second of the
replay (a single stall or a growing queue), and ``stores_user_system_cpu_s``: the store
processes' CPU seconds in user space and in the kernel (their fsyncs, sockets, wake-ups).

So the figures are a bound, not the product's: no gateway and hub built from these parts
(paho, SQLite, nats-py, nats-server, Mosquitto, Python) on this machine should do better than
this, short of dropping a part the contract makes mandatory. ``--summary`` reads this script's and
``hub.py``'s JSON outputs and prints, per rate step, medians of p50/p99, cores busy and CPU
milliseconds per event of each kind of process, floor against product.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import show_figures  # noqa: E402
from benchmarks.hub import (  # noqa: E402
    M5_STORES,
    GatewayProcess,
    Replay,
    Watcher,
    _timed_step,
    _wait_drained,
    latencies,
    sold_on_hand,
    store_stream,
    user_system_seconds,
)
from benchmarks.hub_floor_worker import FLOOR_STREAM, unapplied  # noqa: E402
from hub.network_view import sku_key  # noqa: E402
from hub.streams import STOCK_BUCKET  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.nats_server import NatsServer  # noqa: E402

STORE_SCRIPT = ROOT / "benchmarks" / "hub_floor_store.py"
WORKER_SCRIPT = ROOT / "benchmarks" / "hub_floor_worker.py"


class FloorWorker:
    """``hub_floor_worker.py`` in a session of its own; ``ready`` once its stream exists."""

    def __init__(self, nats_url: str, log: Path):
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), nats_url],
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
            start_new_session=True,
        )
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"floor worker: expected 'ready', got {line!r} (see {log})")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def user_system(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of ``pids``, summed."""
    each = [user_system_seconds(pid) for pid in pids]
    return sum(u for u, _ in each), sum(s for _, s in each)


async def floor_writes(url: str) -> dict[str, int]:
    """``hub._kv_writes``'s counts for the floor: stock messages stored, bucket writes."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    out = {
        STOCK_BUCKET: (await js.stream_info(f"KV_{STOCK_BUCKET}")).state.last_seq,
        "uplink messages": (await js.stream_info(FLOOR_STREAM)).state.last_seq,
    }
    await nc.close()
    return out


def floor_run(args: argparse.Namespace, work: Path) -> dict:
    """One run: the pipeline started, warmed up, the ramp replayed step by step, stopped."""
    stores = M5_STORES[: args.stores]
    rates = sorted({args.rate, *args.ramp})
    seconds = {r: args.seconds if r == args.rate else args.ramp_seconds for r in rates}
    wanted = args.warmup_rate * args.warmup_seconds + sum(r * seconds[r] for r in rates)
    streams = {s: store_stream(s, int(wanted / len(stores)) + 1) for s in stores}
    initial = {(s, e["sku"]): e["qty"] for s in stores for e in streams[s][0]}
    broker = Mosquitto(work / "broker", own_session=True).start()
    server = NatsServer(work / "nats", own_session=True).start()
    worker, gws, watcher, steps = None, {}, None, []
    try:
        worker = FloorWorker(server.url, work / "worker.log")
        gws = {s: GatewayProcess(s, work, broker.port, server.url, streams[s][0], True,
                                 script=STORE_SCRIPT) for s in stores}  # fmt: skip
        for gw in gws.values():
            gw.expect("ready")
        watcher = Watcher(server.url).start()
        _wait_drained(server.url, 300, unapplied)  # the opening counts are applied
        watcher.wait_quiet(1.0, 60)
        replay = Replay(broker.port, {s: v[1] for s, v in streams.items()})
        pids = {
            "benchmark (publisher, view watcher)": os.getpid(),
            "hub worker": worker.proc.pid,
            "nats-server": server.proc.pid,
            "mosquitto": broker.proc.pid,
            **{f"gateway {s}": gw.proc.pid for s, gw in gws.items()},
        }
        if args.warmup_seconds > 0:  # every process past its first messages; not reported
            replay.step(args.warmup_rate, args.warmup_seconds)
            for gw in gws.values():
                gw.ask("drain")
            watcher.wait_quiet(1.0, 60)
        store_pids = [gw.proc.pid for gw in gws.values()]
        for rate in rates:
            us0 = user_system(store_pids)
            step = _timed_step(replay, rate, seconds[rate], gws, watcher, initial, pids,
                               server.url, kv_writes=floor_writes)  # fmt: skip
            sent = step.pop("_sent")
            us = [b - a for a, b in zip(us0, user_system(store_pids), strict=True)]
            step["stores_user_system_cpu_s"] = [round(x, 2) for x in us]
            step["max_ms_by_half_second"] = timeline(sent, initial, watcher)
            print(json.dumps(step), file=sys.stderr)
            steps.append(step)
        spot = spot_check(gws, watcher, sent)
    finally:
        if watcher is not None:
            watcher.stop()
        for gw in gws.values():
            gw.quit()
        for gw in gws.values():
            gw.wait()
        if worker is not None:
            worker.stop()
        server.stop()
        broker.stop()
    return {"stores": stores, "view_equals_store_ledger": spot, "rate_steps": steps}


def timeline(sent: list, initial: dict, watcher: Watcher, bin_s: float = 0.5) -> list:
    """The slowest sale of each ``bin_s`` of the step (by hand-over time): one stall or a queue
    that grows shows in its shape."""
    bins: dict[int, list] = defaultdict(list)
    for sale in sent:
        bins[int((sale[0] - sent[0][0]) / bin_s)].append(sale)
    out = []
    for i in range(max(bins, default=-1) + 1):
        lat = latencies(bins.get(i, []), initial, watcher.updates)[0]
        out.append(round(max(lat), 1) if lat else None)
    return out


def spot_check(gws: dict[str, GatewayProcess], watcher: Watcher, sent: list) -> str:
    """Sold SKUs: the watched view's last figure against the store process's own on hand."""
    sampled = sold_on_hand(gws, sent)
    equal = 0
    for store, sku, on_hand in sampled:
        seen = watcher.updates.get(sku_key(store, sku))
        equal += bool(seen) and seen[-1][1] == on_hand
    return f"{equal}/{len(sampled)}"


def figures(args: argparse.Namespace) -> dict:
    runs = []
    for r in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="shelfcast-hub-floor-"))
        try:
            load0 = os.getloadavg()
            run = floor_run(args, work)
            run["load_average_before"] = [round(x, 2) for x in load0]
            runs.append(run)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({f"run {r}": [(s["offered_events_per_s"], s["p50_pos_to_online_ms"],
                                        s["p99_pos_to_online_ms"]) for s in run["rate_steps"]]}),
              file=sys.stderr)  # fmt: skip
    return {
        "floor": True,
        "cpu_count": os.cpu_count(),
        "memory_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "steps_median": step_medians(runs),
        "runs": runs,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


def _kind(process: str) -> str:
    return "hub (worker, API)" if process.startswith("hub ") else process


def step_medians(runs: list[dict]) -> dict[str, dict]:
    """Per offered rate, medians over runs: p50, p99, cores busy, CPU ms per event by kind."""
    by_rate: dict[float, list[dict]] = defaultdict(list)
    for run in runs:
        for s in run["rate_steps"]:
            by_rate[s["offered_events_per_s"]].append(s)
    out = {}
    for rate, steps in sorted(by_rate.items()):
        per_event = defaultdict(list)
        for s in steps:
            events = s["achieved_events_per_s"] * s["replay_seconds"]
            kinds: dict[str, float] = defaultdict(float)
            for k, v in s["cpu_seconds"].items():
                if k != "gateway (max of one)":
                    kinds[_kind(k)] += v
            for k, v in kinds.items():
                per_event[k].append(1000 * v / events)

        def med(key: str, steps=steps) -> float | None:
            xs = [s[key] for s in steps if s.get(key) is not None]
            return round(median(xs), 2) if xs else None

        out[str(int(rate))] = {
            "runs": len(steps),
            "p50_ms": med("p50_pos_to_online_ms"),
            "p99_ms": med("p99_pos_to_online_ms"),
            "p99_ms_each_run": [s["p99_pos_to_online_ms"] for s in steps],
            "achieved_events_per_s": med("achieved_events_per_s"),
            "cpu_cores_busy": med("cpu_cores_busy"),
            "machine_cores_busy": med("machine_cores_busy"),
            "machine_cores_stolen": med("machine_cores_stolen"),
            "others_cores_busy": med("others_cores_busy"),
            "cpu_ms_per_event": {k: round(median(v), 3) for k, v in sorted(per_event.items())},
        }
    return out


def summary(paths: list[str]) -> dict:
    """Floor and product outputs (``hub.py --json``) side by side, medians per rate step."""
    runs: dict[str, list[dict]] = {"floor": [], "product": []}
    for p in paths:
        out = json.loads(Path(p).read_text())
        if out.get("floor"):
            runs["floor"] += out["runs"]
        else:
            runs["product"].append(out)
    return {kind: step_medians(r) for kind, r in runs.items() if r}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--stores", type=int, default=10, choices=range(1, 11))
    parser.add_argument("--rate", type=float, default=1200.0, help="events/s, all stores")
    parser.add_argument("--seconds", type=float, default=8.0, help="the --rate step's length")
    parser.add_argument(
        "--ramp",
        type=lambda t: [float(x) for x in t.split(",") if x],
        default=[150.0, 300.0, 600.0],
        help="further total rates, comma-separated (all steps run in ascending order)",
    )
    parser.add_argument("--ramp-seconds", type=float, default=5.0)
    parser.add_argument("--warmup-rate", type=float, default=100.0)
    parser.add_argument("--warmup-seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=1, help="fresh pipelines; medians reported")
    parser.add_argument("--summary", nargs="+", help="no run: compare these JSON outputs")
    args = parser.parse_args(argv)
    out = summary(args.summary) if args.summary else figures(args)
    show_figures(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
