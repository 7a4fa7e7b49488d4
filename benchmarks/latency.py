"""Event-to-alert latency, throughput, a broker outage and uplink bytes, through a real Mosquitto.

    python benchmarks/latency.py --json out.json [--quick]

Everything runs on this machine over loopback: the script starts Mosquitto (persistence on) on a
free port, runs the gateway (``edge_runtime.gateway.Gateway``: real SQLite ledger with
``synchronous=FULL``, outbox, rule policy, paho transport) in this process, and two "field"
processes: the store's tills (holding the replay, sending one JSON event per MQTT message to
``shelfcast/{store}/events/pos`` through ``mosquitto_pub -l``) and a replenishment system (a
plain paho subscriber with a persistent session on the alert and conflict topics).

The events are a real-data replay: Walmart M5 store CA_1 (3,049 items x 28 days, units spread over
opening hours from a seed, synthetic opening counts and weekly receipts; ``twin.replay``),
repeated with event times shifted by 28 days per pass when more events are needed.

With ``--history N`` the gateway instead holds a long history, as a store's would: its state
directory starts as a copy of ``benchmarks/history.py``'s ledger (the first N Online Retail II
events, every country pooled as store "OR", ~4,900 SKUs), and the tills replay the real events
that follow it (repeated with event times shifted by the stream's span per pass when more are
needed). The M5 replay cannot be used on top of that history: it is years later, and the
gateway's plausibility bounds (``edge_runtime.store.plausibility``) rightly refuse such a jump.

Figures:
- ``p50/p99_event_to_alert_ms``: an offered 1,200 events/s; for every alert, receive time at the
  subscriber minus send time of the event that caused it (``cause_event_id``); both clocks are
  this machine's CLOCK_MONOTONIC. Median over the runs.
- ``max_sustained_events_per_s`` (scoring on, see below): the rate at which a gateway with a
  model bundle drains single-event messages queued in the broker while it was down (ledger
  commit, decisions, alerts published, and every store-day close it crosses), first to last
  event. ``*_rules_live``: the rule policy while ``mosquitto_pub`` sends as fast as it can,
  singly and in 100-event JSON-array batches.
- ``outage_alerts_lost``: Mosquitto is stopped for the outage, the gateway keeps ingesting at
  1,200 events/s through its local path (``Gateway.ingest``, what the API calls, a 12-event batch
  every 10 ms), Mosquitto is restarted: alerts created during the outage minus alerts the
  subscriber received.
- ``duplicates_delivered``: alerts the subscriber received more than once, whole run;
  ``duplicates_by_phase`` says in which phase and whether the broker flagged the copy DUP (its
  QoS 1 redelivery to the consumer, which consumers dedupe by ``message_id``) or not (the
  gateway handed the same outbox row to the broker twice).
- ``uplink_bytes_ratio``: bytes of the uplink (gzip JSON deltas + short exceptions, one message
  per 15 minutes of store time) / bytes of every event as compact JSON, over the replay.

Decisions come from the rule policy (``edge_runtime.decide.decisions.RulePolicy``) except for
``max_sustained_events_per_s`` and ``p99_event_to_alert_ms_scoring_on``: those restart the gateway
with a real model bundle (``--bundle``; by default one trained here on the M5 sample's ten real
series, 60 trees, kept in ``var/bench/latency_bundle``). The gateway then runs as in a store: at
start-up and at every store-day close it re-scores every SKU in one ONNX Runtime call with the
River correction (``edge_runtime.decide.day_close``), and each event's decisions use the forecast policy
(``edge_runtime.decide.forecast_policy``: stock-out probability per changed SKU, replenishment, phantom
and count checks). The replay packs a store day into about 5,000 events, so at these rates a
day closes every few seconds instead of once a day: both figures include those closes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # --compare puts the old packages first: keep them there
    sys.path.insert(0, str(ROOT))
if sys.path[0] == str(ROOT / "benchmarks"):  # run as a script with ROOT on PYTHONPATH: its
    sys.path.pop(0)  # siblings (twin.py, api.py, hub.py) would shadow the packages of those names
from benchmarks.machine import machine  # noqa: E402
from edge_runtime.config import load_config, with_mqtt, with_section  # noqa: E402
from edge_runtime.gateway import Gateway  # noqa: E402
from edge_runtime.heap import freeze_startup_heap  # noqa: E402
from tests.mosquitto import Mosquitto, mosquitto_binary  # noqa: E402
from tests.mosquitto import wait as wait_until  # noqa: E402

STORE = "CA_1"  # the M5 replay's store; --history replays store "OR" (benchmarks/history.py)
PREFIX = "shelfcast"
ALERT_KINDS = ("stockout", "replenishment", "anomaly", "conflict")


# ---- the field: tills and a replenishment system, each a process of its own ------------
# The gateway's process holds only the gateway (as in a store): the replay's event dicts
# (145,000 per pass) live in the tills' process, so the gateway's garbage collector never walks
# them, and the consumer's receive stamps never wait for the tills' GIL.


def _tills_main(port: int, history: int, conn) -> None:
    replay = Replay.of(history)
    topic = f"{PREFIX}/{replay.store}/events/pos"
    while True:
        cmd, arg = conn.recv()
        if cmd == "offer":  # (events, batch size or None for single events, rate)
            n, size, rate = arg
            events = replay.take(n)
            items = batches(events, size) if size else singles(events)
            conn.send(_offer(port, topic, items, rate))
        elif cmd == "take":
            conn.send(replay.take(arg))
        elif cmd == "stop":
            break


def _consumer_main(port: int, store: str, conn) -> None:
    import paho.mqtt.client as mqtt

    received: list[tuple[str, str, str | None, int, bool]] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe([(f"{PREFIX}/{store}/alerts/#", 1), (f"{PREFIX}/{store}/conflicts", 1)])

    def on_message(client, userdata, msg):
        t = time.monotonic_ns()
        d = json.loads(msg.payload)
        received.append((d["message_id"], d["kind"], d.get("cause_event_id"), t, bool(msg.dup)))

    sub = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="bench-replenishment", clean_session=False
    )
    sub.on_connect, sub.on_message = on_connect, on_message
    sub.reconnect_delay_set(0.1, 0.5)
    sub.connect_async("127.0.0.1", port)
    sub.loop_start()
    while True:
        cmd, _ = conn.recv()
        if cmd == "received":
            conn.send(list(received))
        elif cmd == "stop":
            break
    sub.loop_stop()


class Field:
    """The tills and the replenishment system, seen from the gateway's process."""

    def __init__(self, port: int, history: int = 0):
        ctx = mp.get_context("spawn")
        self._tills, tills_end = ctx.Pipe()
        self._consumer, consumer_end = ctx.Pipe()
        store = replay_store(history)
        self._procs = [
            ctx.Process(target=_tills_main, args=(port, history, tills_end), daemon=True),
            ctx.Process(target=_consumer_main, args=(port, store, consumer_end), daemon=True),
        ]
        for proc in self._procs:
            proc.start()

    def _ask(self, pipe, cmd: str, arg=None):
        pipe.send((cmd, arg))
        return pipe.recv()

    def offer(self, n: int, rate: float | None, batch: int | None = None):
        """The tills start publishing their next ``n`` replay events; ``offered`` waits."""
        self._tills.send(("offer", (n, batch, rate)))

    def offered(self) -> tuple[dict[str, int], float]:
        """When the offer is done: (event id -> send time, seconds it took)."""
        return self._tills.recv()

    def take(self, n: int) -> list[dict]:
        """The next ``n`` replay events, for the gateway's local ingest path."""
        return self._ask(self._tills, "take", n)

    def received(self) -> list[tuple]:
        """Every alert the replenishment system has received so far, in arrival order."""
        return self._ask(self._consumer, "received")

    def stop(self) -> None:
        for pipe in (self._tills, self._consumer):
            pipe.send(("stop", None))
        for proc in self._procs:
            proc.join(10)


def _offer(port: int, topic: str, items: list[tuple[list[str], bytes]], rate: float | None):
    """Publish items (event ids, one-line JSON payload) at ``rate`` messages/s (None: as fast as
    possible) through ``mosquitto_pub -l``, QoS 1, one message per line.

    Why a C client: a Python paho publisher at 1,200 messages/s took a third of a core from the
    two the gateway runs on, and its network thread added its own delay between the send stamp
    and the socket. Here the stamp is taken as the line is written and the C client sends it at
    once.
    """
    pub = shutil.which("mosquitto_pub")
    if pub is None:
        raise FileNotFoundError("mosquitto_pub not found: apt-get install mosquitto-clients")
    args = [pub, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1", "-l"]
    proc = subprocess.Popen(
        [*args, "-M", "1000", "-i", "bench-tills"], stdin=subprocess.PIPE, bufsize=0
    )
    time.sleep(0.5)  # connected before the clock starts (lines written earlier would wait)
    sent: dict[str, int] = {}
    t0 = time.monotonic_ns()
    step = int(1e9 / rate) if rate else 0
    write = proc.stdin.write
    for i, (ids, payload) in enumerate(items):
        if step:
            due = t0 + i * step
            wait = due - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)  # no spinning: the CPU is shared with the gateway
        now = time.monotonic_ns()
        for event_id in ids:
            sent[event_id] = now
        write(payload + b"\n")
    proc.stdin.close()
    if proc.wait(120) != 0:  # it exits once every message is acknowledged
        raise RuntimeError(f"mosquitto_pub exited with {proc.returncode}")
    return sent, (time.monotonic_ns() - t0) / 1e9


# ---- events -------------------------------------------------------------------------------


def replay_store(history: int) -> str:
    """The store id of the replay: M5's CA_1, or the history ledger's store."""
    if not history:
        return STORE
    from benchmarks.history import STORE as HISTORY_STORE

    return HISTORY_STORE


class Replay:
    """Real events, endless: pass k shifts event times by ``shift_days * k`` days and renames
    ids. By default M5 CA_1 (28 days a pass)."""

    def __init__(self, limit: int | None = None, base: list[dict] | None = None,
                 store: str = STORE, shift_days: int = 28):  # fmt: skip
        if base is None:
            from twin.replay import m5_events

            base = m5_events((STORE,), restock=True)
        self.base = base[:limit] if limit else base
        self.store = store
        self.shift_days = shift_days
        self.pos = 0

    @classmethod
    def of(cls, history: int, limit: int | None = None) -> Replay:
        """The M5 replay (``history`` 0), or the real events after ``history`` events of the
        history ledger, a pass as long as their span in whole days."""
        if not history:
            return cls(limit)
        from benchmarks.history import live_events

        base = live_events(history)
        first, last = (datetime.fromisoformat(base[i]["event_time"]) for i in (0, -1))
        span = (last - first).days + 1
        return cls(limit, base, replay_store(history), span)

    def take(self, n: int) -> list[dict]:
        out = []
        while len(out) < n:
            k, i = divmod(self.pos, len(self.base))
            e = self.base[i]
            if k:
                t = datetime.fromisoformat(e["event_time"]) + timedelta(days=self.shift_days * k)
                e = {**e, "event_id": f"{e['event_id']}~{k}", "event_time": t.isoformat()}
            out.append(e)
            self.pos += 1
        return out


def _compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def singles(events: list[dict]) -> list[tuple[list[str], bytes]]:
    return [([e["event_id"]], _compact(e)) for e in events]


def batches(events: list[dict], size: int) -> list[tuple[list[str], bytes]]:
    chunks = [events[i : i + size] for i in range(0, len(events), size)]
    return [([e["event_id"] for e in c], _compact(c)) for c in chunks]


# ---- phases --------------------------------------------------------------------------------


def duplicates_by_phase(alerts: list[tuple], marks: dict[str, int]) -> dict[str, dict]:
    """Repeated alerts per phase (``marks``: phase -> alerts received by its end), split by
    whether the broker flagged the copy DUP (its own QoS 1 redelivery to the consumer) or not
    (the gateway published the alert twice)."""
    seen: set[str] = set()
    out, start = {}, 0
    for phase, end in marks.items():
        dup_flagged = unflagged = 0
        for message_id, *_, dup in alerts[start:end]:
            if message_id in seen:
                dup_flagged += dup
                unflagged += not dup
            seen.add(message_id)
        out[phase] = {"broker_redelivered_dup": dup_flagged, "published_twice": unflagged}
        start = end
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency_run(field: Field, gw: Gateway, n_events: int, rate: float) -> dict:
    before = len(field.received())
    cpu0 = time.process_time()
    field.offer(n_events, rate)
    sent, seconds = field.offered()
    if not gw.flush(60):
        raise RuntimeError("outbox did not drain after the latency run")
    cpu = time.process_time() - cpu0
    time.sleep(0.3)
    got = field.received()[before:]
    lat = [(t - sent[c]) / 1e6 for _, _, c, t, _ in got if c in sent]
    return {
        "events": n_events,
        "offered_per_s": rate,
        "achieved_offer_per_s": round(n_events / seconds, 1),
        "alerts": len(lat),
        "p50_ms": round(percentile(lat, 50), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "max_ms": round(max(lat), 3),
        "gateway_cpu_us_per_event": round(cpu / n_events * 1e6, 1),
    }


def throughput_run(field: Field, gw: Gateway, n_events: int, batch: int | None) -> dict:
    start = gw.counters["ingested"]
    marks: list[tuple[float, int]] = []
    field.offer(n_events, None, batch)
    deadline = time.monotonic() + 300
    while gw.counters["ingested"] - start < n_events and time.monotonic() < deadline:
        marks.append((time.monotonic(), gw.counters["ingested"] - start))
        time.sleep(0.005)
    marks.append((time.monotonic(), gw.counters["ingested"] - start))
    _, publish_s = field.offered()
    first = next(t for t, n in marks if n > 0)
    done = marks[-1][0]
    gw.flush(60)
    return {
        "events": n_events,
        "messages": -(-n_events // (batch or 1)),
        "gateway_events_per_s": round(n_events / (done - first), 1),
        "publisher_events_per_s": round(n_events / publish_s, 1),
    }


def outage_run(
    field: Field, gw: Gateway, broker: Mosquitto, events: list[dict], rate: float
) -> dict:
    gw.flush(60)
    db = sqlite3.connect(gw.cfg.ledger_path)
    seq_before = db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]
    broker.stop()
    wait_until(lambda: not gw.transport.connected, 10)
    t0 = time.monotonic()
    tick = max(1, round(rate / 100))  # a batch every 10 ms, as tills and the web shop post them
    for i in range(0, len(events), tick):  # the local ingest path (what the API calls)
        pause = t0 + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        gw.ingest(events[i : i + tick], "api")
    outage_s = time.monotonic() - t0
    depth = gw.outbox_depth()
    broker.start()
    t1 = time.monotonic()
    drained = gw.flush(300)
    drain_s = time.monotonic() - t1
    marks = ",".join("?" * len(ALERT_KINDS))
    created = {
        r[0]
        for r in db.execute(
            f"SELECT message_id FROM outbox WHERE seq > ? AND kind IN ({marks})",
            (seq_before, *ALERT_KINDS),
        )
    }
    db.close()

    def all_arrived() -> bool:
        return created <= {m for m, *_ in field.received()}

    wait_until(all_arrived, 60, 0.2)
    ids = {m for m, *_ in field.received()}
    return {
        "outage_s": round(outage_s, 1),
        "events_during_outage": len(events),
        "alerts_created_during_outage": len(created),
        "outbox_depth_at_reconnect": depth,
        "drained": drained,
        "drain_s": round(drain_s, 2),
        "alerts_lost": len(created - ids),
    }


def uplink_run(events: list[dict], window_min: int, state_dir: Path, store: str = STORE) -> dict:
    env = {"SHELFCAST_STORE_ID": store, "SHELFCAST_STATE_DIR": str(state_dir)}
    cfg = load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})
    gw = Gateway(cfg)
    event_bytes = sum(len(_compact(e)) for e in events)
    wire = plain = messages = 0
    window, group = None, []

    def close_window() -> None:
        nonlocal wire, plain, messages
        for i in range(0, len(group), 5000):
            gw.ingest(group[i : i + 5000], "pos")
        for row in gw.uplink.flush():
            wire += len(row.payload)
            plain += len(gzip.decompress(row.payload))
            messages += 1

    for e in events:
        w = int(datetime.fromisoformat(e["event_time"]).timestamp() // (window_min * 60))
        if window is not None and w != window:
            close_window()
            group = []
        window = w
        group.append(e)
    close_window()
    alerts = gw.counters["messages"]
    gw.close()
    return {
        "events": len(events),
        "window_minutes_store_time": window_min,
        "per_event_json_bytes": event_bytes,
        "uplink_bytes": wire,
        "uplink_bytes_uncompressed": plain,
        "uplink_messages": messages,
        "alerts_and_conflicts_in_exceptions": alerts,
        "ratio": round(wire / event_bytes, 4),
        "ratio_uncompressed": round(plain / event_bytes, 4),
    }


def latency_bundle(out: Path) -> Path:
    """A demand + anomaly bundle for the scoring-on phase: trained here on the M5 sample's ten
    real series (60 trees, one fold), or the one trained before for this feature-store version."""
    from feature_store.spec import FEATURE_STORE_VERSION
    from training.datasets import m5_sample
    from training.train import TrainConfig, train

    meta = out / "metadata.json"
    if (
        meta.exists()
        and (out / "signature.json").exists()  # bundles from before signing are retrained
        and json.loads(meta.read_text()).get("feature_store_version") == FEATURE_STORE_VERSION
    ):
        return out
    print(f"training the scoring-on bundle into {out} (M5 sample, 60 trees) ...", file=sys.stderr)
    return train(m5_sample(), out, TrainConfig.quick_config(), "m5_sample", track=False).bundle


def latency_bundle_key(given: str | Path | None = None) -> str:
    """The public key a gateway must trust for :func:`latency_bundle`: ``given`` (a bundle
    cached by a checkout with another signing key), else training's own, resolved."""
    from training.signing_key import public_key_path, signing_key_path

    return str(Path(given or public_key_path(signing_key_path())).resolve())


def drain_run(gw_factory, field: Field, n_events: int) -> tuple[object, dict]:
    """Events queued in the broker while no gateway runs; a new gateway drains them: its
    capacity without a publisher in the way."""
    field.offer(n_events, None)
    _, publish_s = field.offered()
    gw = gw_factory()  # started, not waited for: it ingests queued events from CONNACK on
    start = 0  # a new gateway's counters start at zero
    marks = []
    deadline = time.monotonic() + 300
    while gw.counters["ingested"] - start < n_events and time.monotonic() < deadline:
        marks.append((time.monotonic(), gw.counters["ingested"] - start))
        time.sleep(0.005)
    marks.append((time.monotonic(), gw.counters["ingested"] - start))
    first = next(t for t, n in marks if n > 0)
    gw.transport.wait_connected(10)
    gw.flush(60)
    done = marks[-1]
    return gw, {
        "events": n_events,
        "ingested": done[1],
        "gateway_events_per_s": round(done[1] / (done[0] - first), 1),
        "publisher_events_per_s": round(n_events / publish_s, 1),
    }


# ---- main ---------------------------------------------------------------------------------


def serving(gw: Gateway) -> Gateway:
    """Start the gateway as ``shelfcast run`` / ``serve`` do: the heap that start-up built is
    frozen out of later garbage collections (``edge_runtime.heap``)."""
    gw.start()
    freeze_startup_heap()
    return gw


def _mosquitto_version() -> str:
    out = subprocess.run([mosquitto_binary(), "-h"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="short runs for development")
    parser.add_argument("--rate", type=float, default=1200.0, help="offered events/s")
    parser.add_argument(
        "--bundle", help="model bundle for the scoring-on phase (default: trained on the M5 sample)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="N",
        help="the gateway holds N events of Online Retail II history (benchmarks/history.py, "
        "store OR) and the tills replay the events after it (default 0: M5 CA_1, no history)",
    )
    args = parser.parse_args(argv)
    if args.history < 0:
        parser.error(f"--history must be >= 0 events, got {args.history}")
    quick = args.quick
    bundle = Path(args.bundle) if args.bundle else latency_bundle(ROOT / "var/bench/latency_bundle")
    runs, run_s = (1, 5) if quick else (3, 20)
    outage_s = 5 if quick else 60
    blast_n = 5000 if quick else 30000

    work = Path(tempfile.mkdtemp(prefix="shelfcast-latency-"))
    store = replay_store(args.history)
    history_info = None
    if args.history:
        from benchmarks.history import copy_ledger

        print(f"copying the {args.history}-event history ledger ...", file=sys.stderr)
        history_info = copy_ledger(args.history, work / "gateway")
    broker = Mosquitto(work / "broker").start()
    replay_name = (
        f"Online Retail II after {args.history} events of history (benchmarks/history.py)"
        if args.history
        else "M5 CA_1 (twin.replay)"
    )
    print(f"starting the tills ({replay_name}) and the consumer ...", file=sys.stderr)
    field = Field(broker.port, args.history)
    env = {"SHELFCAST_STORE_ID": store, "SHELFCAST_STATE_DIR": str(work / "gateway")}
    cfg = with_mqtt(
        load_config(env=env), host="127.0.0.1", port=broker.port, reconnect_min_s=0.1,
        reconnect_max_s=1.0,
    )  # fmt: skip
    started = time.monotonic()
    gw = serving(Gateway(cfg))
    result: dict = {
        "machine": machine(
            mosquitto=_mosquitto_version(), state_dir_fs="same disk as the project (fsync is real)"
        ),
        "quick": quick,
        "replay": replay_name,
    }
    if history_info is not None:
        result["history"] = {
            **history_info,
            "gateway_start_s": round(time.monotonic() - started, 1),
        }
    try:
        if not gw.transport.wait_connected(60):
            raise RuntimeError("gateway did not connect to Mosquitto")
        field.take(0)  # the replay is loaded
        time.sleep(1.0)  # the field's clients connect and subscribe
        print("warm-up ...", file=sys.stderr, flush=True)
        latency_run(field, gw, int(args.rate), args.rate)
        marks = {"warm-up": len(field.received())}
        lat = []
        for r in range(runs):
            print(f"latency run {r + 1}/{runs} at {args.rate:.0f}/s ...", file=sys.stderr)
            lat.append(latency_run(field, gw, int(args.rate * run_s), args.rate))
        marks["latency"] = len(field.received())
        print("throughput (single events, then 100-event batches) ...", file=sys.stderr)
        single = throughput_run(field, gw, blast_n, None)
        batched = throughput_run(field, gw, blast_n * 2, 100)
        marks["throughput"] = len(field.received())
        print(f"broker outage of {outage_s} s ...", file=sys.stderr, flush=True)
        outage = outage_run(field, gw, broker, field.take(int(args.rate * outage_s)), args.rate)
        marks["outage"] = len(field.received())
        print(f"scoring on: bundle {bundle}, queued backlog then 1,200/s ...", file=sys.stderr)
        gw.close()  # events now wait in the broker (persistent session)
        key = latency_bundle_key()
        scored_cfg = with_section(cfg, "model", bundle=str(bundle), public_key=key)

        def scored_gateway() -> Gateway:
            return serving(Gateway(scored_cfg))

        gw, scored = drain_run(scored_gateway, field, blast_n)
        marks["restart + drain"] = len(field.received())
        scored_lat = latency_run(field, gw, int(args.rate * run_s), args.rate)
        alerts = field.received()
        marks["scoring-on latency"] = len(alerts)
        ids = [m for m, *_ in alerts]
    finally:
        gw.close()
        field.stop()
        broker.stop()
    print("uplink bytes over the replay ...", file=sys.stderr, flush=True)
    up_replay = Replay.of(args.history, limit=30000 if quick else None)
    up_events = up_replay.take(len(up_replay.base))
    uplink = uplink_run(up_events, 15, work / "uplink", store)
    shutil.rmtree(work, ignore_errors=True)  # with --history it holds a 1M-event ledger copy

    result["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    result.update(
        {
            "p50_event_to_alert_ms": statistics.median(r["p50_ms"] for r in lat),
            "p99_event_to_alert_ms": statistics.median(r["p99_ms"] for r in lat),
            "offered_events_per_s": args.rate,
            "max_sustained_events_per_s": scored["gateway_events_per_s"],
            "max_sustained_events_per_s_rules_live": single["gateway_events_per_s"],
            "max_sustained_events_per_s_rules_live_batched_100": batched["gateway_events_per_s"],
            "p50_event_to_alert_ms_scoring_on": scored_lat["p50_ms"],
            "p99_event_to_alert_ms_scoring_on": scored_lat["p99_ms"],
            "outage_alerts_lost": outage["alerts_lost"],
            "duplicates_delivered": len(ids) - len(set(ids)),
            "duplicates_by_phase": duplicates_by_phase(alerts, marks),
            "alerts_delivered": len(ids),
            "uplink_bytes_ratio": uplink["ratio"],
            "uplink_bytes_ratio_uncompressed": uplink["ratio_uncompressed"],
            "scoring": "latency/outage/uplink: rule policy (edge_runtime.decide.decisions.RulePolicy); "
            "max_sustained_events_per_s and *_scoring_on: the gateway with a model bundle "
            f"({bundle}): ONNX Runtime + River re-score of every SKU at start-up and at each "
            "store-day close the replay crosses, forecast policy per event (stock-out risk, "
            "replenishment, phantom, counts); *_rules_live: rule policy, live mosquitto_pub",
            "scoring_on_bundle": str(bundle),
            "scoring_on_day_closes": gw.counters.get("day_closes", 0),
            "scoring_on_drain": scored,
            "scoring_on_latency": scored_lat,
            "latency_runs": lat,
            "throughput_single": single,
            "throughput_batched_100": batched,
            "outage": outage,
            "uplink": uplink,
        }
    )
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def table(r: dict) -> str:
    keys = [
        "p50_event_to_alert_ms",
        "p99_event_to_alert_ms",
        "offered_events_per_s",
        "max_sustained_events_per_s",
        "max_sustained_events_per_s_rules_live",
        "max_sustained_events_per_s_rules_live_batched_100",
        "p50_event_to_alert_ms_scoring_on",
        "p99_event_to_alert_ms_scoring_on",
        "outage_alerts_lost",
        "duplicates_delivered",
        "alerts_delivered",
        "uplink_bytes_ratio",
        "uplink_bytes_ratio_uncompressed",
        "scoring",
    ]
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {r[k]} |" for k in keys]
    lines.append(
        f"| outage | {r['outage']['outage_s']} s, {r['outage']['alerts_created_during_outage']} alerts created |"
    )
    m = r["machine"]
    lines.append(
        f"| machine | nproc {m['nproc']}, {m['memory_gib']} GiB, {m['cpu']}, load average "
        f"{m['load_average_1m_at_start']} at start, {m['loadavg_1m_at_end']} at end |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
