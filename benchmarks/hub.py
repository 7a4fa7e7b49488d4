"""The hub's figures: a store's sale to the online availability view, and worker throughput.

    python benchmarks/hub.py --json out.json [--stores 10] [--rate 1200] [--seconds 10]
        [--ramp 1800,2400,3000] [--messages 20000] [--pin] [--rounds 3] [--stages]

Everything runs on this machine over loopback, each part the production code: Mosquitto, one
nats-server with JetStream, ``shelfcast hub`` processes (workers and the API), and one real
``Gateway`` per store, each in a process of its own as in a store (``benchmarks/hub_gateway.py``:
SQLite ledger, outbox, rule policy, paho, the JetStream uplink, a 20 ms uplink window).

- ``p50/p99_pos_to_online_ms``: real M5 sales (store days from ``m5_store_days``, units spread over
  opening hours by ``twin.replay``, opening counts ingested and applied first) published as
  one JSON event per MQTT message (``mosquitto_pub -l``, QoS 1) at ``--rate`` events/s in total
  across ``--stores`` stores. Latency of a sale: from the moment its line is handed to
  mosquitto_pub to the moment the hub's live view (``hub.live_view.LiveView``, the object the
  availability API answers from, fed by the same key-value watch as the API process) holds that
  store x SKU's on hand with the sale counted. Both are CLOCK_MONOTONIC on this machine. A
  sample of figures is also read through the HTTP API and compared with the ledgers.
- ``max_total_events_per_s_at_50ms``: the same replay continued at each ``--ramp`` rate
  (ascending, ``--ramp-seconds`` each) until p99 exceeds 50 ms or the rate is not achieved; the
  highest achieved rate whose p99 stayed within 50 ms. Each step lists CPU seconds per process
  (``rate_steps``), ``cpu_cores_busy`` and ``runqueue_wait_seconds`` (per process, the time
  its threads were ready to run but waited for a CPU) and ``gateway_cpu_s_per_1000_events``
  (the gateways' CPU seconds, summed, per 1,000 sales replayed; with ``--stores 1 --rate 120``
  one store's gateway at the trickle it sees in the network figure).
- ``hub_events_per_s_1_worker`` / ``_2_workers`` (``hub_events_per_s`` is the first): the
  uplink stream is filled with ``--messages`` stock messages (uplink windows of 5 SKU rows,
  ``--tp-stores`` stores, chained per store as gateways send them) with the partitions'
  consumers paused, then that many ``shelfcast hub --no-api`` processes start (``--pin``:
  worker i on CPU i) and share the partitions; stock messages applied per second from the
  consumers' resume to the last ack (no publisher runs meanwhile; every message counts;
  ``deliveries_again`` says how many were delivered more than once, ``reported_in_progress``
  how often a worker told JetStream it still held one; ``resumed_late`` the partitions whose
  consumers started later than the others, and by how much: their pause missed its time; a
  drain that acknowledges nothing for ``DRAIN_STALL_S`` stops with an error). ``--rounds``
  rounds of both, alternating which goes first; medians reported. ``scale_out_ratio`` = 2 workers / 1
  worker; ``messages_per_cpu_s`` says what each worker did with the CPU it got, and
  ``scale_out_ratio_cpu_normalised`` is the ratio with a core per worker, from those.
- ``--stages``: every process stamps each stage of a sale's way (``hub_stage_trace.py``);
  ``rate_steps[].stages`` gives per-stage p50/p99 (ms since the sale and since the stage
  before) and ``api_read`` the HTTP availability read's own time.
- ``cpu_count``, load averages (before and after each step) and CPU seconds of each process;
  per step, over its wall clock (replay and drain), ``machine_cores_busy`` (every process and
  the kernel), ``others_cores_busy`` (that less the pipeline's processes: other work on the
  machine and the kernel's own) and ``machine_cores_stolen`` (what the hypervisor took).
- ``nats_server_gomaxprocs``: the Go scheduler threads nats-server ran with
  (``SHELFCAST_NATS_GOMAXPROCS``, e.g. ``1``; ``auto``, the default, is Go's own choice:
  one per CPU; ``shelfcast.nats_go_runtime``).
- ``gateway_variant``: ``BENCH_GATEWAY_VARIANT`` as the gateways read it
  (``benchmarks/gateway_variant.py``: their MQTT settings switched for an experiment, and
  with ``broker-nagle`` Mosquitto's ``set_tcp_nodelay`` off; empty: as shipped).
- ``own_sessions``: every process of the pipeline (Mosquitto, nats-server, each gateway, each
  hub process) runs in a session of its own, as each is a service (or a host) of its own in
  production. With the kernel's autogroup scheduler (``autogroup_scheduler``) the CPU is shared
  between sessions, not processes: left in the benchmark's session, all of them (two workers
  as one) would split the one share of a busy box. ``--one-session`` keeps them in it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import show_figures  # noqa: E402
from benchmarks.gateway_variant import VARIANT_ENV, broker_overrides  # noqa: E402
from benchmarks.hub_stage_trace import TRACE_ENV  # noqa: E402
from edge_runtime.messages import UplinkDeltas  # noqa: E402
from hub.network_view import sku_key  # noqa: E402
from hub.streams import (  # noqa: E402
    CURSOR_BUCKET,
    FLEET_BUCKET,
    PARTITIONS,
    STOCK_BUCKET,
    UPLINK_STREAM,
    ensure,
    partition_consumer,
    unacknowledged,
)
from shelfcast.nats_go_runtime import nats_gomaxprocs  # noqa: E402
from tests.hub_process import HubProcess, owned_partitions  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.nats_server import NatsServer  # noqa: E402

M5_STORES = ["CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3"]


def user_system_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (from /proc; its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc; its children not included)."""
    return sum(user_system_seconds(pid))


def machine_cpu_seconds() -> tuple[float, float]:
    """(CPU seconds every process and the kernel ran, over all CPUs; seconds the hypervisor
    gave this machine's CPUs to someone else) since boot, from ``/proc/stat``'s first line."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def runqueue_seconds(pid: int) -> float:
    """Seconds a process's threads (those alive now) spent runnable, waiting for a CPU
    (``/proc/<pid>/task/*/schedstat``, second field): the scheduler's part of its latency."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError):
            total += int(stat.read_text().split()[1])
    return total / 1e9


def store_stream(store: str, sales_wanted: int) -> tuple[list[dict], list[dict], dict]:
    """(opening counts, the first ``sales_wanted`` sales, the store's sales per day and in its
    busiest hour) of one M5 store, in event-time order."""
    from twin.replay import m5_events

    events = m5_events(stores=[store], store_id=store, restock=True)
    counts = [e for e in events if e["type"] == "cycle_count"]
    sales = [e for e in events if e["type"] == "sale"]
    days = len({e["event_time"][:10] for e in sales}) or 1
    rates = {"per_day": len(sales) / days, "peak_per_s": peak_store_events_per_s(sales)}
    return counts, sales[:sales_wanted], rates


class GatewayProcess:
    """``benchmarks/hub_gateway.py`` for one store: started, asked, stopped over its stdin."""

    def __init__(
        self,
        store: str,
        work: Path,
        mqtt_port: int,
        nats_url: str,
        counts: list,
        own: bool,
        script: Path = ROOT / "benchmarks" / "hub_gateway.py",
    ):
        """``script``: another store process speaking the same protocol (``hub_floor.py``'s)."""
        self.store = store
        path = work / f"{store}.counts.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in counts))
        args = [store, str(work), str(mqtt_port), nats_url, str(path)]
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(work / f"{store}.log").open("ab"),
            text=True,
            start_new_session=own,
        )

    def expect(self, word: str) -> None:
        line = self.proc.stdout.readline().strip()
        if line != word:
            raise RuntimeError(f"gateway {self.store}: expected {word!r}, got {line!r}")

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def quit(self) -> None:
        """Ask the gateway to close (it flushes and says ``offline``); ``wait`` for it."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()

    def wait(self) -> None:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Watcher:
    """The stock bucket watched from a thread, every update stamped with CLOCK_MONOTONIC."""

    def __init__(self, nats_url: str):
        self.nats_url = nats_url
        self.updates: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
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
                self.updates[entry.key].append((time.monotonic(), value["on_hand"], value["seq"]))
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


class Replay:
    """Each store's sales handed to one ``mosquitto_pub -l`` per store, at a paced total rate,
    continuing where the previous step stopped; every sale stamped when handed over."""

    def __init__(self, port: int, per_store: dict[str, list[dict]]):
        self.port = port
        self.per_store = per_store
        self.next = dict.fromkeys(per_store, 0)
        self.nth: dict[tuple[str, str], int] = defaultdict(int)  # sales of a SKU so far

    def _pubs(self) -> dict[str, subprocess.Popen]:
        pub = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
        base = [pub, "-h", "127.0.0.1", "-p", str(self.port), "-q", "1", "-l", "-t"]
        return {
            s: subprocess.Popen([*base, f"shelfcast/{s}/events/pos"], stdin=subprocess.PIPE)
            for s in self.per_store
        }

    def step(self, rate: float, seconds: float) -> tuple[list[tuple], float, float]:
        """``(sent [(t_sent, store, sku, nth sale of that SKU, event id)], achieved rate, CPU
        seconds of the mosquitto_pub processes)``."""
        procs = self._pubs()
        time.sleep(1.0)  # each mosquitto_pub connects before the clock starts
        stores = list(self.per_store)
        left = sum(len(v) - self.next[s] for s, v in self.per_store.items())
        total = min(int(rate * seconds), left)
        sent = []
        t0 = time.monotonic()
        for i in range(total):
            store = stores[i % len(stores)]
            e = self.per_store[store][self.next[store]]
            self.next[store] += 1
            due = t0 + i / rate
            while (now := time.monotonic()) < due:
                time.sleep(min(0.002, due - now))
            line = json.dumps(e).encode() + b"\n"
            # Stamped before the hand-over: after it, this thread may wait for the GIL (the
            # watch thread has it) longer than the sale takes to reach the view.
            t_sent = time.monotonic()
            procs[store].stdin.write(line)
            procs[store].stdin.flush()
            self.nth[(store, e["sku"])] += 1
            sent.append((t_sent, store, e["sku"], self.nth[(store, e["sku"])],
                         e["event_id"]))  # fmt: skip
        achieved = total / (time.monotonic() - t0)
        cpu = sum(cpu_seconds(p.pid) for p in procs.values())
        for p in procs.values():
            p.stdin.close()
            p.wait(30)
        return sent, achieved, cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(sent: list[tuple], initial: dict, updates: dict) -> tuple[list[float], int]:
    """Per sale, ms from its hand-over to the first view update holding it; and how many sales
    were never seen (a sale beyond the opening count leaves the figure at zero: not timed)."""
    lat, unseen = [], 0
    for t_sent, store, sku, k, _id in sent:
        target = initial.get((store, sku), 0) - k
        if target < 0:
            continue
        seen = next(
            (
                t
                for t, on_hand, _seq in updates.get(sku_key(store, sku), [])
                if t >= t_sent and on_hand <= target
            ),
            None,
        )
        if seen is None:
            unseen += 1
        else:
            lat.append((seen - t_sent) * 1000)
    return lat, unseen


STAGES = ("mqtt", "commit", "window", "acked", "recv", "kv", "view", "bench_view", "done")
"""A sale's way, each stamped in the process that sees it (``benchmarks/hub_stage_trace.py``):
paho hands the gateway the payload, the ledger commits it, the uplink window holding its SKU is
committed to the outbox, JetStream acknowledges that row to the gateway, the worker receives it,
JetStream acknowledges the SKU's new figure to the worker, the API's watch puts it in its view,
the benchmark's own watch (the latency figure) sees it; and the worker is done with its batch
(every figure of it written; its cursor follows later, off the sale's path)."""


def read_stage_logs(where: Path) -> dict:
    """Every process's stamps, indexed for ``stage_table``."""
    ix: dict = {"mqtt": {}, "commit": {}, "window": defaultdict(list), "acked": defaultdict(list),
                "recv": {}, "done": {}, "kv": defaultdict(list), "view": defaultdict(list)}  # fmt: skip
    for path in sorted(where.glob("*.jsonl")):
        store = path.name.split("-")[1] if path.name.startswith("gateway-") else None
        for line in path.read_text().splitlines():
            stage, t, *key = json.loads(line)
            if stage in ("mqtt", "commit"):
                ix[stage].setdefault(key[0], t)
            elif stage == "window":
                ix["window"][store].append((t, key[0], set(key[1])))
            elif stage == "acked":
                ix["acked"][store].append((t, key[0], key[1]))
            elif stage == "recv":
                ix["recv"].setdefault((key[0], key[1]), t)
            elif stage == "done":
                for seq in key[1]:
                    ix["done"].setdefault((key[0], seq), t)
            elif stage in ("kv", "view"):
                ix[stage][key[0]].append((t, key[1]))
    return ix


def _sale_stages(sale: tuple, ix: dict, bench: dict) -> dict[str, float] | None:
    """ms from a sale's hand-over to each stage (None: a stage not found for it)."""
    t0, store, sku, _k, event_id = sale
    commit = ix["commit"].get(event_id)
    if commit is None or event_id not in ix["mqtt"]:
        return None
    win = next(((t, seq) for t, seq, skus in ix["window"][store] if t >= commit and sku in skus),
               None)  # fmt: skip
    if win is None:
        return None
    seq, key = win[1], sku_key(store, sku)
    acked = next((t for t, a, b in ix["acked"][store] if a < seq <= b), None)
    kv = next((t for t, s in ix["kv"].get(key, []) if s >= seq), None)
    view = next((t for t, s in ix["view"].get(key, []) if s >= seq), None)
    seen = next((t for t, _on, s in bench.get(key, []) if s >= seq), None)
    at = {"mqtt": ix["mqtt"][event_id], "commit": commit, "window": win[0], "acked": acked,
          "recv": ix["recv"].get((store, seq)), "kv": kv, "view": view, "bench_view": seen,
          "done": ix["done"].get((store, seq))}  # fmt: skip
    if not ix["kv"]:  # a worker without the stamp (written key by key)
        at["kv"] = at["done"]
    if None in at.values():
        return None
    return {k: (v - t0) * 1000 for k, v in at.items()}


def stage_table(sent: list[tuple], ix: dict, bench: dict) -> dict:
    """Per stage, p50/p99 of the ms since hand-over (``since_sale``) and since the stage
    before (``step``), over the sales every stage was found for."""
    rows = [r for r in (_sale_stages(s, ix, bench) for s in sent) if r is not None]
    out: dict = {"sales_traced": len(rows), "sales": len(sent)}
    prev = None
    for stage in STAGES:
        since = [r[stage] for r in rows]
        steps = [r[stage] - (r[prev] if prev else 0.0) for r in rows]
        if rows:
            out[stage] = {
                "since_sale_p50_ms": round(percentile(since, 0.5), 1),
                "since_sale_p99_ms": round(percentile(since, 0.99), 1),
                "step_p50_ms": round(percentile(steps, 0.5), 1),
                "step_p99_ms": round(percentile(steps, 0.99), 1),
            }
        prev = stage
    return out


class ApiReader:
    """HTTP availability reads of sold SKUs every ``every_s`` from a thread, each timed: what
    the API read adds after its view holds a figure."""

    def __init__(self, hub: HubProcess, skus: list[str], every_s: float = 0.05):
        self.hub, self.skus, self.every_s = hub, skus, every_s
        self.ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.hub.url, headers=self.hub.headers(), timeout=10) as c:
            i = 0
            while not self._stop.wait(self.every_s):
                t = time.monotonic()
                c.get(f"/v1/availability/{self.skus[i % len(self.skus)]}").raise_for_status()
                self.ms.append((time.monotonic() - t) * 1000)
                i += 1

    def __enter__(self) -> ApiReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def figures(self) -> dict:
        if not self.ms:
            return {}
        return {"reads": len(self.ms), "p50_ms": round(percentile(self.ms, 0.5), 1),
                "p99_ms": round(percentile(self.ms, 0.99), 1)}  # fmt: skip


GOAL_P99_MS = 50.0


def latency_phase(args: argparse.Namespace, work: Path) -> dict:
    """The headline step at ``--rate``, then ``--ramp`` rates (ascending) until p99 passes
    ``GOAL_P99_MS`` or the offered rate is not achieved."""
    stores = M5_STORES[: args.stores]
    rates = sorted({args.rate, *args.ramp})
    wanted = sum(r * (args.seconds if r == args.rate else args.ramp_seconds) for r in rates)
    streams = {s: store_stream(s, int(wanted / len(stores)) + 1) for s in stores}
    own = not args.one_session
    variant = os.environ.get(VARIANT_ENV, "")  # broker-nagle: Mosquitto's Nagle left on
    broker = Mosquitto(work / "broker", overrides=broker_overrides(variant), own_session=own)
    broker.start()
    nats_server = NatsServer(work / "nats", own_session=own).start()
    traces, launcher = work / "stages", None
    if args.stages:  # every process below stamps its stages (benchmarks/hub_stage_trace.py)
        traces.mkdir()
        os.environ[TRACE_ENV] = str(traces)
        launcher = ROOT / "benchmarks" / "hub_stage_trace.py"
    # The API and the workers in processes of their own, as deployed (none waits on another).
    workers = [HubProcess(nats_server.url, api=False, log=work / f"worker{i}.log",
                          launcher=launcher, own_session=own).start()
               for i in range(args.latency_workers)]  # fmt: skip
    hub = HubProcess(nats_server.url, workers=0, log=work / "hub.log", launcher=launcher,
                     own_session=own).start()  # fmt: skip
    gws: dict[str, GatewayProcess] = {}
    initial = {(s, e["sku"]): e["qty"] for s in stores for e in streams[s][0]}
    steps, watcher = [], None
    try:
        gws = {
            s: GatewayProcess(s, work, broker.port, nats_server.url, streams[s][0], own)
            for s in stores
        }
        for gw in gws.values():
            gw.expect("ready")
        watcher = Watcher(nats_server.url).start()
        _wait_drained(nats_server.url, 300)  # the opening counts and their alerts are applied
        watcher.wait_quiet(1.0, 60)
        replay = Replay(broker.port, {s: v[1] for s, v in streams.items()})
        for rate in rates:
            seconds = args.seconds if rate == args.rate else args.ramp_seconds
            reader = ApiReader(hub, sorted({k for _s, k in initial})) if args.stages else None
            step = _timed_step(replay, rate, seconds, gws, watcher, initial,
                               _pids(hub, workers, nats_server, broker, gws), nats_server.url,
                               reader)  # fmt: skip
            steps.append(step)
            print(json.dumps({k: v for k, v in step.items() if k != "_sent"}), file=sys.stderr)
            passed = (
                step["p99_pos_to_online_ms"] is not None
                and step["p99_pos_to_online_ms"] <= GOAL_P99_MS
            )
            if rate > args.rate and (not passed or step["achieved_events_per_s"] < 0.95 * rate):
                break
        http_checked = _http_spot_check(hub, gws, steps[0]["_sent"])
        stream_bytes = asyncio.run(_bytes_per_message(nats_server.url))
    finally:
        if watcher is not None:
            watcher.stop()
        for gw in gws.values():
            gw.quit()  # all close at once
        for gw in gws.values():
            gw.wait()
        hub.stop()
        for w in workers:
            w.stop()
        nats_server.stop()
        broker.stop()
        os.environ.pop(TRACE_ENV, None)
    if args.stages:
        ix = read_stage_logs(traces)
        for s in steps:
            s["stages"] = stage_table(s["_sent"], ix, watcher.updates)
    head = next(s for s in steps if s["offered_events_per_s"] == args.rate)
    ok = [s for s in steps if s["p99_pos_to_online_ms"] is not None
          and s["p99_pos_to_online_ms"] <= GOAL_P99_MS
          and s["achieved_events_per_s"] >= 0.95 * s["offered_events_per_s"]]  # fmt: skip
    for s in steps:
        del s["_sent"]
    return {
        "stores": stores,
        "latency_workers": args.latency_workers,
        "peak_store_events_per_s": round(max(v[2]["peak_per_s"] for v in streams.values()), 3),
        "store_events_per_day": round(sum(v[2]["per_day"] for v in streams.values()) / len(stores)),
        "stream_bytes_per_message": stream_bytes,
        **{k: v for k, v in head.items() if k != "cpu_seconds"},
        "http_spot_check_equal": http_checked,
        "cpu_seconds_during_replay": head["cpu_seconds"],
        "max_total_events_per_s_at_50ms": max(
            (s["achieved_events_per_s"] for s in ok), default=None
        ),
        "rate_steps": steps,
    }


def _timed_step(
    replay, rate, seconds, gws, watcher, initial, pids, url, reader=None, kv_writes=None
) -> dict:
    """One replay step at ``rate``; ``kv_writes(url)``: the stream and bucket counts to diff
    (``_kv_writes``, the product's streams, unless given)."""
    kv_writes = kv_writes or _kv_writes
    writes0 = asyncio.run(kv_writes(url))
    cpu0 = {p: cpu_seconds(pid) for p, pid in pids.items()}
    wait0 = {p: runqueue_seconds(pid) for p, pid in pids.items()}
    load0 = os.getloadavg()
    machine0, wall0 = machine_cpu_seconds(), time.monotonic()
    with reader or contextlib.nullcontext():
        sent, achieved, pub_cpu = replay.step(rate, seconds)
    for gw in gws.values():
        gw.ask("drain")
    watcher.wait_quiet(1.0, 60)
    cpu = {p: round(cpu_seconds(pid) - cpu0[p], 2) for p, pid in pids.items()}
    wall = time.monotonic() - wall0
    machine = [(b - a) / wall for a, b in zip(machine0, machine_cpu_seconds(), strict=True)]
    waited = {p: runqueue_seconds(pid) - wait0[p] for p, pid in pids.items()}
    writes = _per_message(writes0, asyncio.run(kv_writes(url)))
    waited = {"gateways (sum)": sum(v for p, v in waited.items() if p.startswith("gateway ")),
              **{p: v for p, v in waited.items() if not p.startswith("gateway ")}}  # fmt: skip
    per_gateway = [v for k, v in cpu.items() if k.startswith("gateway ")]
    cpu = {k: v for k, v in cpu.items() if not k.startswith("gateway ")}
    cpu["gateways (sum)"] = round(sum(per_gateway), 2)
    cpu["gateway (max of one)"] = max(per_gateway)
    cpu["mosquitto_pub (sum)"] = round(pub_cpu, 2)
    # What a gateway spends per sale at this rate (its idle timers' share included).
    per_1000 = round(1000 * sum(per_gateway) / len(sent), 3) if sent else None
    busy = sum(cpu.values()) - cpu["gateway (max of one)"]  # that gateway is in the sum already
    lat, unseen = latencies(sent, initial, watcher.updates)
    ms = lambda q: round(percentile(lat, q), 2) if lat else None  # noqa: E731
    return {
        "offered_events_per_s": rate,
        "achieved_events_per_s": round(achieved, 1),
        "replay_seconds": seconds,
        "sales_timed": len(lat),
        "sales_never_seen_online": unseen,
        "p50_pos_to_online_ms": ms(0.50),
        "p99_pos_to_online_ms": ms(0.99),
        "max_pos_to_online_ms": round(max(lat), 2) if lat else None,
        "cpu_seconds": cpu,
        "gateway_cpu_s_per_1000_events": per_1000,
        "runqueue_wait_seconds": {p: round(v, 2) for p, v in waited.items()},
        "cpu_cores_busy": round(busy / (len(sent) / achieved), 2) if sent else None,
        # The whole machine over the step's wall clock (replay and drain): every process and
        # the kernel's own work (loopback networking), and what the hypervisor took from it;
        # ``others``: all but the processes above (other work on the machine, the kernel's).
        "machine_cores_busy": round(machine[0], 2),
        "machine_cores_stolen": round(machine[1], 2),
        "others_cores_busy": round(machine[0] - busy / wall, 2),
        **writes,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **({"api_read": reader.figures()} if reader is not None else {}),
        "_sent": sent,
    }


def _pids(hub, workers, nats_server, broker, gws) -> dict[str, int]:
    names = (
        ["hub worker"] if len(workers) == 1 else [f"hub worker {i}" for i in range(len(workers))]
    )
    return {
        "benchmark (publisher, view watcher)": os.getpid(),
        **{name: w.proc.pid for name, w in zip(names, workers, strict=True)},
        "hub API": hub.proc.pid,
        "nats-server": nats_server.proc.pid,
        "mosquitto": broker.proc.pid,
        **{f"gateway {s}": gw.proc.pid for s, gw in gws.items()},
    }


def sold_on_hand(gws: dict[str, GatewayProcess], sent: list) -> list[tuple[str, str, float]]:
    """About 20 of the sold SKUs, each with its store's own on hand now: (store, SKU, units)."""
    return [(store, sku, json.loads(gws[store].ask(f"stock {sku}")))
            for _t, store, sku, _k, _id in sent[:: max(1, len(sent) // 20)]]  # fmt: skip


def _http_spot_check(hub: HubProcess, gws: dict[str, GatewayProcess], sent: list) -> str:
    """Sold SKUs read through the HTTP API: equal to the stores' ledgers?"""
    sampled = sold_on_hand(gws, sent)
    equal = 0
    for store, sku, on_hand in sampled:
        fig = {x["store_id"]: x for x in hub.get(f"/v1/availability/{sku}")["stores"]}[store]
        equal += fig["on_hand"] == on_hand
    return f"{equal}/{len(sampled)}"


def _stock_messages(n: int, stores: int, rows: int = 5) -> list[tuple[str, dict, bytes]]:
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
    """The hub's streams and consumers, then ``messages`` stored (no worker runs yet); the
    partitions' consumers are paused, so no worker gets a message before ``_resume``."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure(js)
    for p in range(PARTITIONS):
        await js.pause_consumer(UPLINK_STREAM, partition_consumer(p), "2999-01-01T00:00:00Z")
    for i in range(0, len(messages), 500):
        acks = [await js.publish_async(s, p, headers=h) for s, h, p in messages[i : i + 500]]
        await asyncio.gather(*acks)
    await nc.close()


async def _remaining(url: str, left=unacknowledged) -> int:
    """What ``left(js)`` counts as not yet acknowledged (by default the uplink messages, over
    every partition)."""
    import nats

    nc = await nats.connect(url)
    try:
        return await left(nc.jetstream())
    finally:
        await nc.close()


def _wait_drained(url: str, timeout: float, left=unacknowledged) -> bool:
    """Until ``left`` counts nothing (True), or ``timeout`` seconds (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(_remaining(url, left)) == 0:
            return True
        time.sleep(0.2)
    return False


async def _all_bound(url: str) -> bool:
    """Every partition's consumer has a subscriber (its owner) on its deliver subject."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        infos = [await js.consumer_info(UPLINK_STREAM, partition_consumer(p))
                 for p in range(PARTITIONS)]  # fmt: skip
        return all(i.push_bound for i in infos)
    finally:
        await nc.close()


def _wait_dealt(url: str, logs: list[Path], timeout: float) -> None:
    """Until the workers share every partition evenly and each is subscribed (the consumers
    still paused: none of them has been sent a message)."""
    deadline = time.monotonic() + timeout
    fair = {PARTITIONS // len(logs), -(-PARTITIONS // len(logs))}
    while time.monotonic() < deadline:
        owned = [owned_partitions(log) for log in logs]
        every = sorted(p for o in owned for p in o) == list(range(PARTITIONS))
        if every and {len(o) for o in owned} <= fair and asyncio.run(_all_bound(url)):
            return
        time.sleep(0.1)
    raise RuntimeError(f"workers did not share the partitions within {timeout:.0f} s")


DRAIN_STALL_S = 30.0
"""The drain stops with an error when no message of its undrained partitions has been
acknowledged for this long: a run that cannot finish says so (and which partitions and their
consumers' state) instead of waiting for the round's ten minutes."""


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Drain:
    """One connection that resumes the paused consumers and counts what is left unacknowledged
    (asking the partitions one by one, each until it is drained: a poll of all sixteen cost
    nats-server and this process CPU that the workers would otherwise have; all sixteen only
    every ``stall_s``, to tell a stalled drain)."""

    def __init__(self, url: str, stall_s: float = DRAIN_STALL_S):
        self.url = url
        self.stall_s = stall_s
        self.loop = asyncio.new_event_loop()
        self.left = set(range(PARTITIONS))
        self.deliveries = 0  # deliveries by every partition's consumer, first ones and again
        self.late: set[int] = set()  # partitions whose pause missed its time: resumed later
        self.late_s = 0.0  # how much later than the others they started
        self.nc = self.js = None
        self._check_at = self._unacked = None

    def __enter__(self) -> Drain:
        import nats

        self.nc = self.loop.run_until_complete(nats.connect(self.url))
        self.js = self.nc.jetstream()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()

    def resume(self, after_s: float = 0.3) -> float:
        """The consumers deliver from ``after_s`` on (when the monotonic clock reads what this
        returns), or later when the server is slower to answer than that allows (the lead is
        ten times the time of a round of requests to every consumer). Re-paused to run out
        then, not resumed by request: a push consumer resumed by request delivered nothing
        here (nats-server 2.15) until a new message came (see :meth:`pause_until`)."""

        async def round_trip() -> float:
            t = time.monotonic()
            await self._infos(range(PARTITIONS))
            return time.monotonic() - t

        lead = max(after_s, 10 * self.loop.run_until_complete(round_trip()))
        start = time.monotonic() + lead
        self.pause_until(datetime.now(UTC) + timedelta(seconds=lead))
        self._unacked = self.loop.run_until_complete(self._unacked_left())
        self._check_at = start + self.stall_s
        return start

    def pause_until(self, at: datetime, again_s: float = 0.3) -> None:
        """Every partition's consumer paused until ``at``, the requests sent at once. A pause
        whose time has passed when the server reads it resumes the consumer by request (its
        reply says not paused), and such a push consumer is stranded: on a busy box sixteen
        requests in turn once outlasted the lead, and partitions 10-15 never delivered. Those
        are paused again ``again_s`` ahead (their own pause then runs out): ``late``."""

        async def pause(parts: list[int], until: datetime) -> list[int]:
            replies = await asyncio.gather(
                *(self.js.pause_consumer(UPLINK_STREAM, partition_consumer(p), _stamp(until))
                  for p in parts)
            )  # fmt: skip
            return [p for p, r in zip(parts, replies, strict=True) if not r.paused]

        missed = self.loop.run_until_complete(pause(list(range(PARTITIONS)), at))
        for _ in range(10):
            if not missed:
                return
            self.late.update(missed)
            again = datetime.now(UTC) + timedelta(seconds=again_s)
            self.late_s = max(self.late_s, (again - at).total_seconds())
            missed = self.loop.run_until_complete(pause(missed, again))
            again_s *= 2
        if missed:
            raise RuntimeError(f"partitions {missed}: the server resumed their consumers by "
                               "request each time they were paused ahead")  # fmt: skip

    async def _infos(self, parts) -> dict:
        return {p: await self.js.consumer_info(UPLINK_STREAM, partition_consumer(p))
                for p in parts}  # fmt: skip

    async def _unacked_left(self) -> int:
        infos = await self._infos(sorted(self.left))
        return sum(i.num_pending + i.num_ack_pending for i in infos.values())

    def drained(self) -> bool:
        """Whether every partition is drained; raises ``RuntimeError`` (with each undrained
        consumer's state) when none of their messages was acknowledged for ``stall_s``."""

        async def poll() -> None:
            for p in sorted(self.left):  # up to the first not drained: one request a poll
                info = await self.js.consumer_info(UPLINK_STREAM, partition_consumer(p))
                if info.num_pending + info.num_ack_pending > 0:
                    return
                self.left.discard(p)
                self.deliveries += info.delivered.consumer_seq

        self.loop.run_until_complete(poll())
        if self.left and self._check_at is not None and time.monotonic() >= self._check_at:
            unacked = self.loop.run_until_complete(self._unacked_left())
            if unacked >= self._unacked:
                raise RuntimeError(self._stalled())
            self._unacked, self._check_at = unacked, time.monotonic() + self.stall_s
        return not self.left

    def _stalled(self) -> str:
        infos = self.loop.run_until_complete(self._infos(sorted(self.left)))
        state = "; ".join(
            f"p{p}: {i.num_pending} not delivered, {i.num_ack_pending} unacknowledged, "
            f"{i.delivered.consumer_seq} deliveries, paused {bool(i.paused)}, "
            f"subscribed {bool(i.push_bound)}"
            for p, i in infos.items()
        )
        late = f" (resumed late: {sorted(self.late)})" if self.late else ""
        return (f"drain stalled: no message of partitions {sorted(self.left)} acknowledged "
                f"for {self.stall_s:.0f} s{late}; {state}")  # fmt: skip


async def _kv_writes(url: str) -> dict[str, int]:
    """Writes each key-value bucket's stream has stored since it was made (its last sequence:
    a write that replaced a key's older value still counts), and the uplink messages stored."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    streams = {b: f"KV_{b}" for b in (STOCK_BUCKET, CURSOR_BUCKET, FLEET_BUCKET)}
    out = {b: (await js.stream_info(s)).state.last_seq for b, s in streams.items()}
    out["uplink messages"] = (await js.stream_info(UPLINK_STREAM)).state.last_seq
    info = await js.stream_info(UPLINK_STREAM, subjects_filter="shelfcast.*.*.*")
    for subject, n in (info.state.subjects or {}).items():
        kind = f"uplink {subject.split('.')[2]}"
        out[kind] = out.get(kind, 0) + n
    await nc.close()
    return out


def _per_message(before: dict[str, int], after: dict[str, int]) -> dict:
    """Key-value writes per uplink message between two ``_kv_writes`` counts."""
    d = {k: after[k] - before.get(k, 0) for k in after}
    messages = d.pop("uplink messages")
    kinds = {k.split(" ", 1)[1]: d.pop(k) for k in list(d) if k.startswith("uplink ")}
    return {
        "uplink_messages": messages,
        "uplink_messages_by_kind": kinds,
        "kv_writes": d,
        "kv_writes_per_message": round(sum(d.values()) / messages, 3) if messages else None,
    }


async def _bytes_per_message(url: str) -> float:
    """What one uplink message costs the stream's store (all kinds, as the gateways sent them)."""
    import nats

    nc = await nats.connect(url)
    info = await nc.jetstream().stream_info(UPLINK_STREAM)
    await nc.close()
    return round(info.state.bytes / max(1, info.state.messages), 1)


def throughput_phase(
    workers: int,
    args: argparse.Namespace,
    work: Path,
    tag: str = "",
    around_drain: Callable[[int], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict:
    """The stream filled first, its partitions' consumers paused; ``workers`` processes
    (pinned to CPUs 0, 1, ... with ``--pin``) start, agree on partitions and subscribe; then
    the consumers resume and the clock runs from there until every message is acknowledged.
    No publisher runs in that time, every message is counted, and no worker starts before
    the others. This process's own CPU (the drain poll) is reported with the others.
    ``around_drain(nats-server's pid)`` is entered just before the timed drain and left just
    after it (a profiler's recording: ``benchmarks/hub_drain_profile.py``)."""
    own = not args.one_session
    server = NatsServer(work / f"nats-tp{workers}{tag}", own_session=own).start()
    procs: list[HubProcess] = []
    messages = args.messages
    logs = [work / f"tp{workers}{tag}-{i}.log" for i in range(workers)]
    try:
        asyncio.run(_fill(server.url, _stock_messages(messages, args.tp_stores)))
        procs = [
            HubProcess(server.url, api=False, log=log,
                       cpu=i % (os.cpu_count() or 1) if args.pin else None,
                       own_session=own).start()
            for i, log in enumerate(logs)
        ]  # fmt: skip
        _wait_dealt(server.url, logs, 60)
        pids = {**{f"worker {i}": p.proc.pid for i, p in enumerate(procs)},
                "nats-server": server.proc.pid}  # fmt: skip
        with around_drain(server.proc.pid), Drain(server.url) as drain:
            cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
            wait0 = {k: runqueue_seconds(v) for k, v in pids.items()}
            own0 = time.process_time()
            load0 = os.getloadavg()
            t0 = drain.resume()
            time.sleep(max(0.0, t0 - time.monotonic()))
            while not drain.drained() and time.monotonic() < t0 + 600:
                time.sleep(0.05)
            elapsed = time.monotonic() - t0
        cpu = {k: round(cpu_seconds(v) - cpu0[k], 2) for k, v in pids.items()}
        waited = {k: round(runqueue_seconds(v) - wait0[k], 2) for k, v in pids.items()}
        cpu["benchmark (drain poll)"] = round(time.process_time() - own0, 2)
        writes = _per_message({}, asyncio.run(_kv_writes(server.url)))
    finally:
        for p in procs:
            p.stop()
        server.stop()
    if drain.left:
        raise RuntimeError(f"{workers} worker(s) left partitions {sorted(drain.left)} undrained")
    said = [x for log in logs for x in log.read_text().splitlines() if " stops: " in x]
    return {
        "messages": messages,
        "stores": args.tp_stores,
        "stream_filled_before_workers": True,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(messages / elapsed, 1),
        "sku_rows_per_s": round(5 * messages / elapsed, 1),
        "cpu_seconds": cpu,
        "cpu_cores_busy": round(sum(cpu.values()) / elapsed, 2),
        "runqueue_wait_seconds": waited,
        "messages_per_cpu_s": round(
            messages / sum(v for w, v in cpu.items() if w.startswith("worker")), 1
        ),
        "nats_server_cpu_s_per_1000_messages": round(1000 * cpu["nats-server"] / messages, 3),
        "kv_writes_per_message": writes["kv_writes_per_message"],
        "kv_writes": writes["kv_writes"],
        "deliveries_again": drain.deliveries - messages,
        "resumed_late": {"partitions": sorted(drain.late), "seconds": round(drain.late_s, 3)},
        "reported_in_progress": sum(int(x.split(", ")[-1].split()[0]) for x in said),
        "pinned": bool(args.pin),
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def scale_out(args: argparse.Namespace, work: Path) -> dict:
    """``--rounds`` rounds of a 1-worker and a 2-worker run, alternating which goes first (so
    a change of the machine's load during the rounds weighs on both alike); the figures are
    medians over rounds. ``scale_out_ratio_cpu_normalised``: what two workers would do with a
    core each relative to one, from the messages each applied per CPU-second it got (2 x the
    2-worker rate per CPU-second / the 1-worker one): how much workers slow each other, with
    the share of CPU the scheduler gave them factored out."""
    from statistics import median

    rounds = []
    for r in range(args.rounds):
        order = (1, 2) if r % 2 == 0 else (2, 1)
        runs = {n: throughput_phase(n, args, work, tag=f"-r{r}") for n in order}
        rounds.append(runs)
        print(json.dumps({f"round {r}": {n: (x["messages_per_s"], x["messages_per_cpu_s"])
                                         for n, x in runs.items()}}), file=sys.stderr)  # fmt: skip

    def med(n: int, key: str, digits: int = 1) -> float:
        return round(median(x[n][key] for x in rounds), digits)

    one, two = med(1, "messages_per_s"), med(2, "messages_per_s")
    per_cpu = [med(1, "messages_per_cpu_s"), med(2, "messages_per_cpu_s")]
    return {
        "hub_events_per_s": one,
        "hub_events_per_s_1_worker": one,
        "hub_events_per_s_2_workers": two,
        "scale_out_ratio": round(two / one, 2),
        "scale_out_ratio_rounds": [
            round(x[2]["messages_per_s"] / x[1]["messages_per_s"], 2) for x in rounds
        ],
        "scale_out_ratio_cpu_normalised": round(2 * per_cpu[1] / per_cpu[0], 2),
        "worker_messages_per_cpu_s_1_vs_2": per_cpu,
        "nats_server_cpu_s_per_1000_messages": max(
            med(n, "nats_server_cpu_s_per_1000_messages") for n in (1, 2)
        ),
        "kv_writes_per_message_1_vs_2": [med(n, "kv_writes_per_message", 3) for n in (1, 2)],
        "throughput_runs": [{f"{n}_worker{'s' * (n > 1)}": x[n] for n in (1, 2)} for x in rounds],
    }


def peak_store_events_per_s(sales: list[dict]) -> float:
    """A store's busiest hour of real sales in the replayed stream, in sale events per second."""
    per_hour: dict[str, int] = defaultdict(int)
    for e in sales:
        per_hour[e["event_time"][:13]] += 1
    return max(per_hour.values(), default=0) / 3600


SIZING_START, SIZING_END = "<!-- sizing:start -->", "<!-- sizing:end -->"
STORES_AT_SCALE = 1000
PEAK_HEADROOM = 10  # sized for ten times the busiest real hour seen in the replayed M5 stores


def sizing_paragraph(f: dict) -> str:
    """What ``STORES_AT_SCALE`` stores at peak need, from the measured figures ``f``."""
    import math

    worker = f["worker_messages_per_cpu_s_1_vs_2"][0]  # a worker with a core of its own
    peak = f["peak_store_events_per_s"] * PEAK_HEADROOM
    msgs = STORES_AT_SCALE * peak  # a 20 ms window with one sale in it: a message per sale
    workers = max(1, math.ceil(msgs / worker))
    nats_cores = msgs * f["nats_server_cpu_s_per_1000_messages"] / 1000
    per_day = STORES_AT_SCALE * f["store_events_per_day"]
    disk_gb = per_day * f["stream_bytes_per_message"] * 3 / 1e9
    return (
        f"The busiest hour of the replayed M5 stores carries {f['peak_store_events_per_s']:.2f} "
        f"sale events/s per store; sized for {PEAK_HEADROOM}x that, {STORES_AT_SCALE:,} stores "
        f"send {msgs:,.0f} stock messages/s at peak (with a 20 ms window, at most one per "
        f"sale). One worker applied {worker:,.0f} messages per CPU-second here "
        f"({f['hub_events_per_s_1_worker']:,.0f}/s of wall clock on this shared box), so a "
        f"hub of workers with a core each needs "
        f"{workers} worker(s) (with one spare for failover, {workers + 1}; "
        f"{PARTITIONS} partitions allow up to {PARTITIONS}). nats-server spent "
        f"{f['nats_server_cpu_s_per_1000_messages']:.2f} CPU-s per 1,000 messages with one "
        f"node, i.e. {nats_cores:.1f} cores at that rate; three nodes (replicas 3, which keep "
        f"the stream and the view through one node's loss) each store every message and its "
        f"key-value writes, so plan {nats_cores:.1f} to {3 * nats_cores:.1f} cores per node "
        f"(not measured on a cluster at this rate). A store-day is "
        f"{f['store_events_per_day']:,.0f} sale events in these stores, so {per_day / 1e6:.1f} M "
        f"messages/day of {f['stream_bytes_per_message']:.0f} bytes stored: "
        f"{disk_gb:.1f} GB/day across the three replicas, {7 * disk_gb:.0f} GB for the "
        f"stream's 7-day retention (the key-value view is one figure per store x SKU, "
        f"not per day)."
    )


def render_docs(figures: dict, page: Path) -> None:
    """Replace the sizing paragraph of ``page`` with one computed from ``figures``."""
    text = page.read_text()
    start, end = text.index(SIZING_START) + len(SIZING_START), text.index(SIZING_END)
    page.write_text(text[:start] + "\n" + sizing_paragraph(figures) + "\n" + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--stores", type=int, default=4, choices=range(1, 11))
    parser.add_argument("--rate", type=float, default=1200.0, help="events/s, all stores")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--latency-workers", type=int, default=1, help="hub worker processes in the latency phase"
    )
    parser.add_argument(
        "--ramp",
        type=lambda t: [float(x) for x in t.split(",") if x],
        default=[1800.0, 2400.0, 3000.0, 3600.0],
        help="further total rates, comma-separated, for max_total_events_per_s_at_50ms",
    )
    parser.add_argument("--ramp-seconds", type=float, default=5.0)
    parser.add_argument("--messages", type=int, default=20000, help="for the throughput phase")
    parser.add_argument("--tp-stores", type=int, default=64, help="for the throughput phase")
    parser.add_argument("--pin", action="store_true", help="pin worker i to CPU i")
    parser.add_argument(
        "--rounds", type=int, default=3, help="1-worker / 2-worker rounds (medians reported)"
    )
    parser.add_argument(
        "--render-docs", action="store_true", help="rewrite docs/hub.md's sizing paragraph"
    )
    parser.add_argument("--from-json", help="no run: render the docs from this earlier output")
    parser.add_argument(
        "--stages", action="store_true", help="stamp each stage of a sale's way; per-stage p50/p99"
    )
    parser.add_argument(
        "--one-session",
        action="store_true",
        help="run the pipeline's processes in the benchmark's session (one CPU share)",
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if args.from_json:
        render_docs(json.loads(Path(args.from_json).read_text()), ROOT / "docs" / "hub.md")
        return 0
    work = Path(tempfile.mkdtemp(prefix="shelfcast-hub-bench-"))
    try:
        out = figures(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the run's ledgers and stores: hundreds of MB
    show_figures(out, args.json)
    if args.render_docs and "p99_pos_to_online_ms" in out and "scale_out_ratio" in out:
        render_docs(out, ROOT / "docs" / "hub.md")
    return 0


def figures(args: argparse.Namespace, work: Path) -> dict:
    """The phases ``args`` asks for, run under ``work``."""
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
    out: dict = {
        "cpu_count": os.cpu_count(),
        "autogroup_scheduler": autogroup.exists() and autogroup.read_text().strip() == "1",
        "own_sessions": not args.one_session,
        "nats_server_gomaxprocs": nats_gomaxprocs(),
        # the gateways' MQTT settings switched for an experiment (benchmarks/gateway_variant.py)
        "gateway_variant": os.environ.get(VARIANT_ENV, ""),
    }
    if not args.skip_latency:
        out.update(latency_phase(args, work))
    if not args.skip_throughput:
        out.update(scale_out(args, work))
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
