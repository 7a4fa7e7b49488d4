"""kill -9 of a gateway holding a long history, end to end through the shipped Mosquitto settings.

    python benchmarks/e2e_crash.py --json out.json [--quick]

Everything real, on this machine over loopback: Mosquitto runs the shipped settings
(``edge_runtime/transport/mosquitto.conf``); the gateway is ``shelfcast run`` in a process of its own, its
ledger a copy of one holding 1M events of history (``benchmarks/history.py``: Online Retail II,
every country as one store, 5,000 SKUs), deciding with a signed model bundle as in production
(``benchmarks/latency.py``'s; ``--policy rules`` runs without one); the tills are another process, a paho client publishing
one event per QoS 1 message at 1,200 events/s (the events after the history, repeated in passes
shifted in time when more are needed) and recording which got a PUBACK; a replenishment system
is a third process, subscribed (persistent session, QoS 1) to the alert and conflict topics
throughout. The gateway is killed with SIGKILL ``--kills`` times at random moments (a few during
its start-up) and restarted at once each time.

Then a backlog phase: the gateway is stopped, ``--backlog`` events are queued in the broker, and
the gateway is started again: ``full_path_events_per_s`` is the rate from the first to the last
commit of that backlog (MQTT -> ledger -> decisions -> outbox, in the gateway's transactions).

Figures (top-level JSON keys):
- ``lost``: events the tills got a PUBACK for that are not in the ledger at the end.
- ``double_counted``: events logged more than once.
- ``stock_mismatch_skus``: SKUs whose final stock differs from a fold, here in plain Python, of
  the history plus every PUBACKed event; ``verify_mismatch_skus``: the ledger against its own log.
- ``alert_ids_reissued``: alert keys (store, SKU, kind, epoch) the consumer received under more
  than one ``message_id``. The epoch is the message's ``epoch`` field when the gateway sends one,
  else its ``cause_event_id``, else (a day close's decisions) its ``event_time``
  (``alert_key_epoch`` says which was used).
- ``restart_to_first_ack_s``: per restart, from spawning the process to its first commit (the
  commit's time is stored with each logged event; the acknowledgement to the broker follows the
  commit): median and max, over the restarts that lived long enough to commit. Every fifth kill
  lands in start-up; the others come 0.5-3 s after the restarted gateway's first commit.
  ``restart_cpu_to_first_ack_s``: the CPU seconds the process used until then (a figure that
  does not depend on what else the machine runs; the wall time does). The gateway's packages
  are compiled to bytecode first, as in the edge image (``gateway_bytecode``; ``--from-source``:
  none, each start compiles them, about 0.2 CPU-s more).
- ``second_gateway_started`` (goal false): a second ``shelfcast run`` on the running gateway's
  state directory; ``second_gateway_message`` is the one line it printed.
- ``disk_full_lost``, ``verify_mismatch_skus_after_disk_full``: the full-disk episode of
  ``benchmarks/disk_full.py`` (a small tmpfs this script mounts and removes, under a running
  gateway over the same broker settings, with ``--disk-full-events`` real events).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.history import STORE, copy_ledger, live_events  # noqa: E402
from benchmarks.machine import machine  # noqa: E402
from benchmarks.shipped_bytecode import compile_gateway, remove_bytecode  # noqa: E402
from tests.mosquitto import Mosquitto, wait  # noqa: E402

PREFIX = "shelfcast"


# ---- the field: tills and a consumer, each a process of its own -----------------------------


def _tills_main(port: int, events_file: str, rate: float | None, out: str, stop=None) -> None:
    """Publish the lines of ``events_file`` (QoS 1, one event a message) at ``rate``/s (None: as
    fast as the window allows) until they run out or ``stop`` is set; write the event ids that
    got a PUBACK to ``out``."""
    import paho.mqtt.client as mqtt

    lines = Path(events_file).read_bytes().splitlines()
    ids = [json.loads(line)["event_id"] for line in lines]
    pending: dict[int, str] = {}
    early: dict[int, bool] = {}  # mid -> success, for PUBACKs that beat publish()'s return
    acked: list[str] = []
    lock = threading.Lock()

    # paho may call on_publish on its loop thread before publish() has returned the mid, so
    # an unmatched PUBACK is parked until the publishing thread records its event id.
    def on_publish(client, userdata, mid, reason_code, properties):
        with lock:
            event_id = pending.pop(mid, None)
            if event_id is None:
                early[mid] = not reason_code.is_failure
            elif not reason_code.is_failure:
                acked.append(event_id)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tills", clean_session=False)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = f"{PREFIX}/{STORE}/events/pos"
    start = time.perf_counter()
    for i, line in enumerate(lines):
        if stop is not None and i % 100 == 0 and stop.is_set():
            break
        if rate:
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        info = client.publish(topic, line, qos=1)
        with lock:
            if info.mid in early:
                if early.pop(info.mid):
                    acked.append(ids[i])
            else:
                pending[info.mid] = ids[i]
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    Path(out).write_text(json.dumps(acked))


def _consumer_main(port: int, out: str, stop) -> None:
    """A replenishment system: persistent session, QoS 1, records what it receives."""
    import paho.mqtt.client as mqtt

    got: list[dict] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe([(f"{PREFIX}/{STORE}/alerts/#", 1), (f"{PREFIX}/{STORE}/conflicts", 1)])

    def on_message(client, userdata, msg):
        m = json.loads(msg.payload)
        got.append({k: m.get(k) for k in
                    ("message_id", "kind", "sku", "store_id", "cause_event_id", "epoch",
                     "event_time")})  # fmt: skip

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="replenishment",
                         clean_session=False)  # fmt: skip
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop.wait()
    client.loop_stop()
    client.disconnect()
    Path(out).write_text(json.dumps(got))


# ---- the stream ------------------------------------------------------------------------------


def stream(n_history: int, n: int, first_pass: int = 0) -> list[dict]:
    """``n`` live events after the history: the held-out events, then again in passes shifted by
    the span of those events (ids and order ids suffixed with the pass). Passes stay in the past:
    the gateway refuses events dated ahead of now."""
    base = live_events(n_history)
    t0 = datetime.fromisoformat(base[0]["event_time"])
    t1 = datetime.fromisoformat(base[-1]["event_time"])
    span = timedelta(days=(t1 - t0).days + 1)
    out: list[dict] = []
    p = first_pass
    while len(out) < n:
        for e in base[: n - len(out)]:
            if p:
                at = datetime.fromisoformat(e["event_time"]) + p * span
                e = {**e, "event_id": f"{e['event_id']}~{p}", "event_time": at.isoformat()}
                if "order_id" in e:
                    e["order_id"] = f"{e['order_id']}~{p}"
            out.append(e)
        p += 1
    return out


def write_events(events: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    return path


# ---- the gateway -----------------------------------------------------------------------------


def provision_session(port: int) -> None:
    """Create the gateway's persistent session (its client id, its events subscription), as a
    store's installation does before the tills send: until a session exists, the broker queues
    nothing for the gateway, so events sent during its very first start would be lost."""
    import paho.mqtt.client as mqtt

    from edge_runtime.config import load_config

    cfg = load_config(env={"SHELFCAST_STORE_ID": STORE})
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                         clean_session=False)  # fmt: skip
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(f"{PREFIX}/{STORE}/events/+", qos=1)
    if not subscribed.wait(10):
        raise SystemExit("could not create the gateway's session on the broker")
    client.disconnect()
    client.loop_stop()


def spawn_gateway(
    state: Path,
    port: int,
    log_file: Path,
    model_env: dict[str, str] | None = None,
    code_root: Path = ROOT,
    log_level: str = "WARNING",
    wrap: list[str] | None = None,
) -> subprocess.Popen:
    """``shelfcast run`` on ``state``; ``model_env`` configures its signed bundle (none: the
    rules decide); ``code_root`` holds the gateway's code (another commit's, exported);
    ``wrap`` runs it under a profiler's command line."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            (str(code_root), str(ROOT), os.environ.get("PYTHONPATH", ""))
        ),
        "SHELFCAST_STORE_ID": STORE,
        "SHELFCAST_STATE_DIR": str(state),
        "SHELFCAST_MQTT_HOST": "127.0.0.1",
        "SHELFCAST_MQTT_PORT": str(port),
        "SHELFCAST_MQTT_RECONNECT_MIN_S": "0.1",
        "SHELFCAST_MQTT_RECONNECT_MAX_S": "0.5",
        **(model_env or {}),
    }
    cmd = [sys.executable, "-m", "shelfcast.cli", "run", "--log-level", log_level]
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [*(wrap or []), *cmd], cwd=code_root, env=env, stdout=log, stderr=log
        )


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restart(
    state: Path,
    port: int,
    log_file: Path,
    spawned: list[list[float]],
    wait: bool,
    model_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, dict]:
    """Spawn the gateway; with ``wait``, until its first commit: the wall and CPU seconds the
    process took to get there (polled every 10 ms: up to that much late)."""
    ledger = state / "ledger.sqlite"
    upto = read(ledger, "SELECT max(seq) FROM events")[0][0]
    born = time.time()
    gw = spawn_gateway(state, port, log_file, model_env)
    spawned.append([born, float("inf")])
    first = {"upto": upto, "wall_s": None, "cpu_s": None}
    deadline = time.monotonic() + 120
    while wait and time.monotonic() < deadline and gw.poll() is None:
        cpu = cpu_s(gw.pid)
        if read(ledger, "SELECT max(seq) FROM events")[0][0] > upto:
            first.update(wall_s=time.time() - born, cpu_s=cpu)
            break
        time.sleep(0.01)
    return gw, first


# Polls read the ledger file: every 0.2 s keeps them light beside the gateway being measured.
wait_until = functools.partial(wait, step=0.2)


def read(ledger: Path, sql: str, args=()) -> list:
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def first_commit_after(ledger: Path, spawned: list[tuple[float, float]]) -> list[float | None]:
    """Per (spawn, end of life) wall-clock window: seconds from spawn to the first commit in it."""
    out = []
    for born, died in spawned:
        row = read(ledger, "SELECT min(received_us) FROM events WHERE received_us >= ? AND "
                   "received_us < ?", (int(born * 1e6), int(died * 1e6)))  # fmt: skip
        out.append(None if row[0][0] is None else row[0][0] / 1e6 - born)
    return out


# ---- checks ----------------------------------------------------------------------------------


def reference_states(history_ledger: Path, acked: list[dict]) -> dict:
    """Every SKU's state folded in plain Python from the history's log and the PUBACKed events."""
    from edge_runtime.store.events import LEDGER_TYPES
    from edge_runtime.store.stock import fold

    by_sku: dict[str, list] = defaultdict(list)
    for sku, *row in read(history_ledger, "SELECT sku, type, qty, ts_us, event_id, order_id "
                          "FROM events"):  # fmt: skip
        if row[0] in LEDGER_TYPES:
            by_sku[sku].append(tuple(row))
    for e in acked:
        if e["type"] in LEDGER_TYPES:
            ts = round(datetime.fromisoformat(e["event_time"]).timestamp() * 1_000_000)
            by_sku[e["sku"]].append((e["type"], e["qty"], ts, e["event_id"], e.get("order_id")))
    return {sku: fold(sku, rows, 0)[0] for sku, rows in by_sku.items()}


def alert_reissues(received: list[dict]) -> tuple[int, int, str]:
    """(keys seen under >1 message_id, plain re-deliveries of one id, what the epoch was)."""
    uses_epoch = any(m.get("epoch") is not None for m in received)
    ids_by_key: dict[tuple, set[str]] = defaultdict(set)
    copies = Counter(m["message_id"] for m in received)
    for m in received:
        if m["kind"] == "conflict":
            continue
        # A decision no single event made (a store day's close re-deciding every SKU, a
        # detector's conclusion) has no cause: it is known by when it was decided, so the
        # closes of two days are two decisions, not one re-issued.
        cause = m.get("cause_event_id") or f"at:{m.get('event_time')}"
        epoch = m.get("epoch") if uses_epoch else cause
        ids_by_key[(m["store_id"], m["sku"], m["kind"], epoch)].add(m["message_id"])
    reissued = sum(1 for ids in ids_by_key.values() if len(ids) > 1)
    return (
        reissued,
        sum(c - 1 for c in copies.values()),
        "epoch" if uses_epoch else "cause_event_id",
    )


def second_gateway(state: Path, port: int, log_file: Path) -> dict:
    """A second gateway on the running one's state directory must refuse to start, saying why
    in one line, and leave the directory alone."""
    other = spawn_gateway(state, port, log_file)
    try:
        code = other.wait(60)
    except subprocess.TimeoutExpired:
        other.kill()
        other.wait(30)
        code = None
    lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
    return {
        "second_gateway_started": code is None,
        "second_gateway_exit_code": code,
        "second_gateway_message": lines[-1][:300] if lines else None,
    }


def disk_full_figures(events: int, stall_s: float) -> dict:
    """The full-disk episode of ``benchmarks/disk_full.py`` (a small tmpfs under a running
    gateway over the same shipped broker settings), with its real Online Retail II events."""
    if os.geteuid() != 0:
        return {"disk_full_lost": None, "disk_full_note": "needs root to mount a tmpfs"}
    from benchmarks.disk_full import STORE as DISK_STORE
    from benchmarks.disk_full import episode
    from twin.replay import online_retail_events

    real = online_retail_events("United Kingdom", DISK_STORE, limit=events, restock=True)
    with tempfile.TemporaryDirectory(prefix="e2e-disk-full-") as tmp:
        figures = episode(real, Path(tmp), stall_s)
    return {
        "disk_full_lost": figures["disk_full_lost"],
        "verify_mismatch_skus_after_disk_full": figures["verify_mismatch_skus_after_disk_full"],
        "verify_mismatch_skus_during_disk_full": figures["verify_mismatch_skus_during_disk_full"],
        "disk_full_dead_letters": figures["dead_letters"],
        "disk_full_resumed_in_s": figures["resumed_in_s"],
        "disk_full_events": figures["events"],
    }


# ---- the run ---------------------------------------------------------------------------------


def _mosquitto_version() -> str:
    out = subprocess.run(["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


def gateway_model(policy: str) -> tuple[dict[str, str], str]:
    """The gateway's environment for ``--policy`` and how the figures name it: ``model`` is
    the production path, a signed bundle (``benchmarks/latency.py``'s, trained once) verified
    against the training key's public half; ``rules`` runs without a bundle."""
    if policy == "rules":
        return {}, "rules (no model bundle)"
    from benchmarks.latency import latency_bundle
    from training.signing_key import public_key_path, signing_key_path

    bundle = latency_bundle(ROOT / "var/bench/latency_bundle")
    key = public_key_path(signing_key_path()).resolve()
    env = {"SHELFCAST_BUNDLE": str(bundle), "SHELFCAST_MODEL_PUBLIC_KEY": str(key)}
    return env, f"signed model bundle {bundle.name}"


def run(args: argparse.Namespace, work: Path) -> dict:
    rng = random.Random(args.seed)
    result: dict = {"machine": machine(mosquitto=_mosquitto_version())}
    # The gateway starts from bytecode, as the edge image's does (benchmarks/shipped_bytecode.py).
    remove_bytecode(ROOT) if args.from_source else compile_gateway(ROOT)
    result["gateway_bytecode"] = "none (compiled at each start)" if args.from_source else "compiled"
    model_env, policy = gateway_model(args.policy)
    broker = Mosquitto(work / "broker", overrides={"autosave_interval": "60"}).start()
    state = work / "state"
    info = copy_ledger(args.history, state)
    ledger = state / "ledger.sqlite"
    history_ledger = ROOT / "var" / "bench" / f"history-{args.history}" / "ledger.sqlite"
    result["history"] = info
    log_file = work / "gateway.log"
    stop_consumer = mp.Event()
    consumer_out = work / "consumer.json"
    consumer = mp.Process(target=_consumer_main, args=(broker.port, str(consumer_out),
                                                       stop_consumer))  # fmt: skip
    consumer.daemon = True
    consumer.start()
    try:
        # A gateway that has been running: the first start reads the whole history (the tills
        # already sending, their events queued in the broker meanwhile), then writes its
        # snapshots after its first commits; the figures below are for the restarts that follow.
        n_live = int(args.rate * (args.kills * 12.0 + 60))  # enough for a slow machine
        live = stream(args.history, n_live)
        tills_out = work / "tills.json"
        stop_tills = mp.Event()
        provision_session(broker.port)
        t = time.time()
        gw = spawn_gateway(state, broker.port, log_file, model_env)
        tills = mp.Process(target=_tills_main, args=(broker.port, str(write_events(
            live, work / "live.jsonl")), args.rate, str(tills_out), stop_tills))  # fmt: skip
        tills.start()
        snapshots = (state / "derived.pickle", state / "ledger.sqlite.index.npz")
        if not wait_until(lambda: all(p.exists() for p in snapshots), 300):
            raise SystemExit(f"gateway did not start; see {log_file}")
        result["first_start_without_snapshots_s"] = round(time.time() - t, 1)
        result.update(second_gateway(state, broker.port, work / "second-gateway.log"))
        spawned: list[list[float]] = []
        startup: list[dict] = []
        during_startup = 0
        for k in range(args.kills):
            early = k % 5 == 4  # every fifth kill lands in start-up (its restart did not wait)
            time.sleep(rng.uniform(0.0, 1.0) if early else rng.uniform(0.5, 3.0))
            gw.send_signal(signal.SIGKILL)
            gw.wait(30)
            if spawned:
                spawned[-1][1] = time.time()
            during_startup += early
            next_early = (k + 1) % 5 == 4 and k + 1 < args.kills
            gw, first = restart(state, broker.port, log_file, spawned, not next_early, model_env)
            startup.append(first)
        time.sleep(2.0)
        stop_tills.set()
        tills.join()
        acked_ids = set(json.loads(tills_out.read_text()))
        n_before = info["history_events"]

        def logged() -> int:
            return read(ledger, "SELECT count(*) FROM events")[0][0] - n_before

        wait_until(lambda: logged() >= len(acked_ids), 120)
        # The backlog: queued in the broker while the gateway is down, then drained.
        gw.send_signal(signal.SIGTERM)
        gw.wait(60)
        spawned[-1][1] = time.time()
        # The backlog follows the last pass the tills got through, not the last one generated:
        # events dated passes ahead of the ledger's clock are refused by the plausibility bounds.
        passes = {i.partition("~")[2] or "0" for i in acked_ids}
        backlog = stream(args.history, args.backlog, first_pass=max(map(int, passes)) + 1)
        backlog_out = work / "backlog.json"
        filler = mp.Process(target=_tills_main, args=(broker.port, str(write_events(
            backlog, work / "backlog.jsonl")), None, str(backlog_out)))  # fmt: skip
        filler.start()
        filler.join()
        backlog_acked = set(json.loads(backlog_out.read_text()))
        gw, first = restart(state, broker.port, log_file, spawned, True, model_env)
        startup.append(first)
        upto = first["upto"]
        wait_until(lambda: logged() >= len(acked_ids) + len(backlog_acked), 300)
        span = read(ledger, "SELECT count(*), min(received_us), max(received_us) FROM events "
                    "WHERE seq > ?", (upto,))[0]  # fmt: skip
        # Let the outbox drain to the consumer, then stop cleanly.
        wait_until(lambda: read(ledger, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]
                   == 0, 120)  # fmt: skip
        time.sleep(2)
        gw.send_signal(signal.SIGTERM)
        gw.wait(60)
        spawned[-1][1] = time.time()
    finally:
        if gw.poll() is None:
            gw.kill()
        stop_consumer.set()
        consumer.join(30)
        broker.stop()
    result["loadavg_end"] = os.getloadavg()

    live_by_id = {e["event_id"]: e for e in live + backlog}
    live = [e for e in live if e["event_id"] in acked_ids]
    all_acked = acked_ids | backlog_acked
    ids = Counter(r[0] for r in read(ledger, "SELECT event_id FROM events"))
    reference = reference_states(history_ledger, [live_by_id[i] for i in all_acked])
    stored = {r[0]: r for r in read(ledger, "SELECT * FROM stock")}
    from edge_runtime.store.ledger import Ledger
    from edge_runtime.store.stock import SkuState

    mismatch = [s for s in set(reference) | set(stored)
                if reference.get(s) != (SkuState(*stored[s]) if s in stored else None)]  # fmt: skip
    with Ledger(ledger, STORE) as check:
        verify = check.verify()
    received = json.loads(consumer_out.read_text())
    reissued, redelivered, basis = alert_reissues(received)
    firsts = first_commit_after(ledger, [(b, d) for b, d in spawned])
    measured = [f for f in firsts if f is not None]
    cpus = [f["cpu_s"] for f in startup if f["cpu_s"] is not None]
    result.update(
        lost=len(all_acked - set(ids)),
        double_counted=sum(c - 1 for c in ids.values() if c > 1),
        stock_mismatch_skus=len(mismatch),
        verify_mismatch_skus=len(verify),
        alert_ids_reissued=reissued,
        alert_key_epoch=basis,
        alerts_redelivered_same_id=redelivered,
        alerts_received=len(received),
        restart_to_first_ack_s={
            "median": round(statistics.median(measured), 3) if measured else None,
            "max": round(max(measured), 3) if measured else None,
            "restarts": len(firsts),
            "killed_before_first_commit": len(firsts) - len(measured),
            "all": [None if f is None else round(f, 3) for f in firsts],
        },
        restart_cpu_to_first_ack_s={
            "median": round(statistics.median(cpus), 3) if cpus else None,
            "max": round(max(cpus), 3) if cpus else None,
            "note": "CPU seconds (user + system) of the gateway process from spawn to its first "
            "commit: what the restart costs whatever else the machine runs",
        },
        full_path_events_per_s=round(span[0] / max(1e-9, (span[2] - span[1]) / 1e6))
        if span[0] > 1
        else None,
        backlog_events=span[0],
        kills=args.kills,
        kills_during_startup=during_startup,
        live_events_acked=len(acked_ids),
        rate_events_per_s=args.rate,
        broker_settings="edge_runtime/transport/mosquitto.conf (shipped), on loopback",
        policy=policy,
    )
    print("full-disk episode ...", file=sys.stderr)
    result.update(disk_full_figures(args.disk_full_events, args.disk_full_stall_s))
    return result


def table(r: dict) -> str:
    first, cpu = r["restart_to_first_ack_s"], r["restart_cpu_to_first_ack_s"]
    rows = [
        ("events lost (PUBACKed, not in the ledger)", r["lost"]),
        ("events double-counted", r["double_counted"]),
        ("SKUs whose stock differs from the reference fold", r["stock_mismatch_skus"]),
        ("SKUs failing verify()", r["verify_mismatch_skus"]),
        ("alert keys re-issued under a new message_id", r["alert_ids_reissued"]),
        ("restart to first commit, median / max (s)", f"{first['median']} / {first['max']}"),
        ("CPU s of a restart to first commit, median / max", f"{cpu['median']} / {cpu['max']}"),
        ("full-path events/s draining a backlog", r["full_path_events_per_s"]),
        ("second gateway on the same state directory started", r["second_gateway_started"]),
        ("events lost in the full-disk episode", r["disk_full_lost"]),
        (
            "SKUs failing verify() after the full disk",
            r.get("verify_mismatch_skus_after_disk_full"),
        ),
    ]
    return "\n".join(["| figure | value |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="5 kills, a 10,000-event backlog")
    parser.add_argument("--kills", type=int)
    parser.add_argument("--rate", type=float, default=1200.0, help="till events/s")
    parser.add_argument("--backlog", type=int)
    parser.add_argument("--history", type=int, default=1_000_000, help="events of history")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--policy",
        choices=("model", "rules"),
        default="model",
        help="decide with a signed model bundle (the production path) or the rules",
    )
    parser.add_argument(
        "--disk-full-events", type=int, default=40_000, help="real events of the full-disk episode"
    )
    parser.add_argument(
        "--disk-full-stall-s", type=float, default=5.0, help="seconds the disk stays full"
    )
    parser.add_argument(
        "--from-source", action="store_true",
        help="no bytecode of the gateway's packages: each start compiles them (the image ships it)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.kills = args.kills or (5 if args.quick else 20)
    args.backlog = args.backlog or (10_000 if args.quick else 30_000)
    if args.kills < 1 or args.backlog < 2 or args.rate <= 0:
        parser.error("--kills >= 1, --backlog >= 2 and --rate > 0 are required")
    work = Path(tempfile.mkdtemp(prefix="e2e-crash-"))
    try:
        result = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _exit_on_sigterm(*_: object) -> None:
    raise SystemExit(143)  # runs the clean-up (gateway, broker, field processes)


if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    raise SystemExit(main())
