"""The full path's floor: the CPU an event costs in the steps the contract makes mandatory,
each done by the gateway's own objects at their cheapest, against the real drain's.

    flock /work/wt/bench.lock nice -n 10 python benchmarks/full_path_floor.py --runs 5 \\
        --json var/bench/full_path_floor.json

The events are ``full_path.py``'s: the ``--events`` real events that follow the cached
1M-event history (``benchmarks/history.py``), each published as one QoS 1 message to real
Mosquitto on the shipped configuration (``tests.mosquitto``). Before the runs, one in-process
drain of them (``drain_in_process.drain``, not timed) records the feature rows each store-day
close hands the demand model, the messages decided and their kinds. Then, ``--runs`` times,
the events are published once and queue in two persistent sessions, and two children pinned
to one core (``taskset -c 0``, like ``full_path.py``'s gateway) take them in alternating order:

- ``floor``: the gateway's parts alone, on a copy of the same ledger the real drain starts
  from, each step's CPU seconds measured on its own:
  1. ``receive_ack``: the gateway's ``MqttTransport`` receives the messages and acknowledges
     them in one write per group of up to ``--group`` (``mqtt_acks.acknowledge``, the intake's
     way); the process's CPU (paho's thread included) from the first received to the last
     acknowledgement written;
  2. ``parse``: ``MqttIntake.groups`` with the ledger's parser, each payload on its own
     (the contract: a payload is judged alone), grouped by ``--group`` events;
  3. ``commit``: each group in one durable transaction (``Ledger.ingest_parsed``, WAL,
     ``synchronous=FULL``, the checkpointer thread, steps recorded as the gateway asks); the
     process's CPU over the commits and half a second after (the checkpoint), less step 4's
     outbox rows written inside the same transactions;
  4. ``messages``: as many as the drain decided, in its mix of kinds (one of each shape
     ``message_build.py`` makes per kind), each ``build`` with validation as the engine does,
     its ``outbox_row`` written in its group's commit (``Outbox.put``), and ``publish``\\ed by
     the transport within its in-flight window until every PUBACK (process CPU);
  5. ``close_onnx``: for each close, only ``day_close._units`` (the batched ``Scorer.demand``
     call and the flooring) on the rows that close built: a close with no Python around the
     model. The session is opened and run once before (a start's cost, not a drain's).
- ``drain``: ``full_path.py``'s gateway child on a copy of the prepared state directory,
  draining the same queued events: the product's CPU seconds (``cpu_s``) and its closes'.

Figures (medians over the runs, per event = CPU seconds / ``--events``): each step's
``<step>_us_per_event``; ``floor_us_per_event`` their sum and ``ceiling_events_per_s`` =
1e6 / that; ``..._without_closes`` the same without step 5 (a drain crossing no close);
``drain_us_per_event`` and ``drain_events_per_s_on_cpu`` the real drain's, and
``drain_over_floor``; ``messages_per_event`` and step 4's parts ``..._us_per_message``.
Measured beside the floor, not in it: marking the rows sent (``mark_sent_us_per_event``) and
publishing them again, each group's rows in one write with no in-flight window
(``publish_one_write_us_per_event``: what the window costs). Not measured: the decisions'
own arithmetic, the closes' Python around the model. ``machine``: cores, memory, load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import child_figures, show_figures  # noqa: E402

STEPS = ("receive_ack", "parse", "commit", "build", "outbox_row", "publish", "close_onnx")
FLOOR_CLIENT = "bench-floor-intake"
GATEWAY_DIR = "gateway"  # full_path's client id is bench-gateway-<its state directory's name>


def floor_figures(cpu_s: dict[str, float], events: int) -> dict:
    """Each step's microseconds per event from its CPU seconds over ``events``, the floor
    (their sum), the events/s one core could reach at that floor, and both without the
    closes' model call.

    >>> f = floor_figures({"parse": 0.05, "close_onnx": 0.03}, 10_000)
    >>> f["parse_us_per_event"], f["floor_us_per_event"], f["ceiling_events_per_s"]
    (5.0, 8.0, 125000.0)
    >>> f["floor_us_per_event_without_closes"], f["ceiling_events_per_s_without_closes"]
    (5.0, 200000.0)
    """
    out = {f"{step}_us_per_event": round(1e6 * s / events, 2) for step, s in cpu_s.items()}
    floor = 1e6 * sum(cpu_s.values()) / events
    rest = 1e6 * sum(s for step, s in cpu_s.items() if step != "close_onnx") / events
    out["floor_us_per_event"] = round(floor, 2)
    out["ceiling_events_per_s"] = round(1e6 / floor, 1)
    out["floor_us_per_event_without_closes"] = round(rest, 2)
    out["ceiling_events_per_s_without_closes"] = round(1e6 / rest, 1)
    return out


def message_mix(
    shapes: list[tuple[type, dict]], by_kind: dict[str, int]
) -> list[tuple[type, dict]]:
    """As many messages as ``by_kind`` counts, of each kind, cycling through the ``shapes``
    of that kind (``message_build.shapes()``); a kind no shape has takes all shapes in turn.
    A shape's ``message_id`` is dropped: each message gets a fresh one (the outbox keeps one
    row per id).

    >>> class A:
    ...     kind = "a"
    >>> class B:
    ...     kind = "b"
    >>> mix = message_mix([(A, {"x": 1, "message_id": "m"}), (B, {"x": 2})], {"a": 2, "c": 3})
    >>> [(cls.kind, kw) for cls, kw in mix]
    [('a', {'x': 1}), ('a', {'x': 1}), ('a', {'x': 1}), ('b', {'x': 2}), ('a', {'x': 1})]
    """
    made = [(cls, {k: v for k, v in kw.items() if k != "message_id"}) for cls, kw in shapes]
    out = []
    for kind, n in sorted(by_kind.items()):
        of_kind = [s for s in made if _kind(s[0]) == kind] or made
        out.extend(of_kind[i % len(of_kind)] for i in range(n))
    return out


def _kind(cls: type) -> str | None:
    """A message class's kind: its ``kind`` field's default (a pydantic model), else the
    class attribute."""
    fields = getattr(cls, "model_fields", None)
    if fields and "kind" in fields:
        return fields["kind"].default
    return getattr(cls, "kind", None)


def shares(total: int, sizes: list[int]) -> list[int]:
    """``total`` split over groups in proportion to their ``sizes``, summing to ``total``.

    >>> shares(7868, [5000, 5000]), shares(5, [1, 1, 1])
    ([3934, 3934], [2, 1, 2])
    """
    whole = sum(sizes)
    cuts = [round(total * sum(sizes[: i + 1]) / whole) for i in range(len(sizes))]
    return [b - a for a, b in zip([0, *cuts], cuts, strict=False)]


class CloseRows:
    """Records the feature rows each store-day close hands the demand model: the argument of
    ``day_close._units`` when ``DayCloseModel.rescore`` calls it, once ``armed`` (the start's
    own re-score is not the drain's). The engine's code runs unchanged around it."""

    def __init__(self) -> None:
        self.rows: list = []
        self.armed = False

    def install(self, patch: Callable[[object, str, object], None] = setattr) -> CloseRows:
        """Wrap ``_units`` and ``rescore`` in place (``patch``: how, e.g. pytest's)."""
        import numpy as np

        import edge_runtime.decide.day_close as day_close

        units, rescore = day_close._units, day_close.DayCloseModel.rescore
        inside = [False]

        def recording(scorer, X):
            if inside[0] and self.armed:
                self.rows.append(np.array(X, copy=True))
            return units(scorer, X)

        def flagged(model, sales):
            inside[0] = True
            try:
                return rescore(model, sales)
            finally:
                inside[0] = False

        patch(day_close, "_units", recording)
        patch(day_close.DayCloseModel, "rescore", flagged)
        return self


def _capture(args: argparse.Namespace) -> int:
    """The untimed drain that says what the floor must do: the closes' rows, the messages."""
    import numpy as np

    from benchmarks.drain_in_process import drain

    closes = CloseRows().install()
    ns = SimpleNamespace(history=args.history, events=args.events, group=args.group,
                         bundle=args.bundle, public_key=args.public_key)  # fmt: skip
    result = drain(ns, on_ready=lambda gw: setattr(closes, "armed", True))
    out = Path(args.out)
    np.savez(out / "close_rows.npz", *closes.rows)
    result["closes_recorded"] = len(closes.rows)
    (out / "drain.json").write_text(json.dumps(result))
    print(json.dumps(result), flush=True)
    return 0


def _floor(args: argparse.Namespace) -> int:
    """One floor run (see the module docstring); ``--expect 0`` only creates the session."""
    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.transport.mqtt import MqttTransport

    cfg = with_mqtt(load_config(env={"SHELFCAST_STORE_ID": "OR", "SHELFCAST_STATE_DIR":
                                     args.state_dir or tempfile.mkdtemp()}),
                    host="127.0.0.1", port=args.port, client_id=FLOOR_CLIENT)  # fmt: skip
    items: list[tuple[bytes, str, int, int]] = []
    held: list[tuple[int, int]] = []

    def received(payload: bytes, source: str, mid: int, qos: int) -> None:
        items.append((payload, source, mid, qos))
        held.append((mid, qos))

    t = MqttTransport(cfg, on_payload=received, model_version="floor")
    if not args.expect:
        t.start()
        if not t.wait_connected(10):
            raise SystemExit("no connection")
        t.stop()
        print(json.dumps({"session": FLOOR_CLIENT}), flush=True)
        return 0
    figures = _floor_steps(args, cfg, t, items, held)
    print(json.dumps(figures), flush=True)
    return 0


def _floor_steps(args, cfg, t, items, held) -> dict:
    import numpy as np

    from benchmarks.message_build import shapes
    from benchmarks.mqtt_acks import acknowledge
    from edge_runtime.decide.day_close import _units
    from edge_runtime.forecast.scoring import Scorer
    from edge_runtime.heap import freeze_startup_heap
    from edge_runtime.ingest.mqtt_intake import MqttIntake
    from edge_runtime.store.ledger import Ledger
    from edge_runtime.store.outbox import Outbox
    from feature_store.spec import FEATURE_STORE_VERSION
    from models.bundle import load_bundle

    work = Path(args.capture)
    drained = json.loads((work / "drain.json").read_text())
    with np.load(work / "close_rows.npz") as npz:
        rows = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    ledger = Ledger(cfg.ledger_path, "OR", safety_buffer=cfg.gateway.safety_buffer,
                    bounds=cfg.ingest.bounds())  # fmt: skip
    ledger.record_steps = True  # as the gateway asks: its decisions follow each state change
    outbox = Outbox(cfg.ledger_path, prefix=cfg.mqtt.topic_prefix)
    scorer = Scorer.from_bundle(load_bundle(args.bundle, FEATURE_STORE_VERSION), threads=1)
    if rows:  # the session opened and run once: a start's cost
        _units(scorer, rows[0])
    mix = message_mix(shapes(), drained["messages_by_kind"])
    for cls, kw in mix[:: max(1, len(mix) // 20)]:  # warm pydantic's validators
        cls(**kw)
    freeze_startup_heap()
    cpu: dict[str, float] = {}

    # 1. Receive and acknowledge.
    t.start()
    if not t.wait_connected(10):
        raise SystemExit("no connection")
    acked, cpu["receive_ack"] = acknowledge(t, held, args.expect, args.group)

    # 2. Parse, each payload alone, grouped as the intake groups them.
    intake = MqttIntake(ledger.parse, lambda *a: None, lambda acks: None)
    t0 = time.thread_time()
    groups = list(intake.groups(items))
    cpu["parse"] = time.thread_time() - t0
    sizes = [len(events) + len(rejections) for _, events, rejections, _ in groups]

    # 4a. Build the messages, each group's share.
    per_group = shares(len(mix), sizes)
    built, cpu["build"] = [], 0.0
    at = 0
    for n in per_group:
        t0 = time.thread_time()
        built.append([cls(**kw) for cls, kw in mix[at : at + n]])
        cpu["build"] += time.thread_time() - t0
        at += n

    # 3 + 4b. Commit each group durably, its outbox rows in its transaction.
    out_rows, hook_s = [], [0.0]

    def write_rows(messages):
        def before_commit(conn, result) -> None:
            t0 = time.thread_time()
            out_rows.extend(outbox.put(messages, conn=conn))
            hook_s[0] += time.thread_time() - t0

        return before_commit

    accepted = rejected = 0
    p0 = time.process_time()
    for (source, events, rejections, _), messages in zip(groups, built, strict=True):
        result = ledger.ingest_parsed(events, rejections, source, write_rows(messages))
        accepted += result.accepted
        rejected += result.rejected
    time.sleep(0.6)  # the checkpointer's pass over what was committed
    cpu["commit"] = time.process_time() - p0 - hook_s[0]
    cpu["outbox_row"] = hook_s[0]

    # 4c. Publish the rows within the in-flight window, until every PUBACK.
    p0 = time.process_time()
    seqs = _publish(t, out_rows, t.window)
    cpu["publish"] = time.process_time() - p0
    extra: dict[str, float] = {}
    t0 = time.thread_time()
    for i in range(0, len(seqs), 2000):  # the pump's MARK_BATCH
        outbox.mark_sent(seqs[i : i + 2000])
    extra["mark_sent"] = time.thread_time() - t0
    # The same rows again, each group's in one write, no window (no subscriber takes them).
    p0 = time.process_time()
    for group in shares(len(out_rows), sizes):
        rows_now, out_rows = out_rows[:group], out_rows[group:]
        _publish(t, rows_now, len(rows_now))
    extra["publish_one_write"] = time.process_time() - p0

    # 5. The closes' model call alone.
    each = []
    for X in rows:
        t0 = time.thread_time()
        _units(scorer, X)
        each.append(time.thread_time() - t0)
    cpu["close_onnx"] = sum(each)
    t.stop()
    outbox.close()
    ledger.close()
    return {
        "received": len(items), "acked": acked, "accepted": accepted, "rejected": rejected,
        "groups": sizes, "messages": len(seqs), "published": len(seqs),
        "closes": len(rows), "close_onnx_ms_each": [round(1000 * s, 1) for s in each],
        "cpu_s": {k: round(v, 4) for k, v in cpu.items()},
        "extra_cpu_s": {k: round(v, 4) for k, v in extra.items()},
    }  # fmt: skip


def _publish(t, rows: list, window: int) -> list[int]:
    """Hand ``rows`` to transport ``t`` as the pump does, never more than ``window`` in
    flight (the transport's is ``[mqtt] max_inflight``), until every PUBACK is in; returns
    the acknowledged seqs."""
    acked: list[int] = []
    at, deadline = 0, time.monotonic() + 120
    while len(acked) < len(rows) and time.monotonic() < deadline:
        acked.extend(t.take_acked())
        room = window - t.inflight
        if room > 0 and at < len(rows):
            t.publish(rows[at : at + room])
            at += room
        else:
            time.sleep(0.001)
    if len(acked) < len(rows):
        raise SystemExit(f"{len(rows) - len(acked)} PUBACKs missing")
    return acked


def _child_run(args: argparse.Namespace, what: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *what]
    if args.cpu:
        cmd = ["taskset", "-c", args.cpu, *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return child_figures(cmd, env, 900, what[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="events of history")
    parser.add_argument("--events", type=int, default=10_000, help="live events per run")
    parser.add_argument("--group", type=int, default=5000, help="events per commit")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side, alternated")
    parser.add_argument("--cpu", default="0", help="core(s) for taskset ('' to not pin)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--capture", help=argparse.SUPPRESS)  # a child's role and inputs
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", help=argparse.SUPPRESS)
    parser.add_argument("--public-key", help="the bundle's public key (default: training's)")
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        return _floor(args)
    if args.out:
        return _capture(args)
    return _parent(args)


def _parent(args: argparse.Namespace) -> int:
    from benchmarks.full_path import _gateway
    from benchmarks.full_path import _publish as publish_events
    from benchmarks.history import STORE, copy_ledger, live_events
    from benchmarks.latency import latency_bundle, latency_bundle_key
    from benchmarks.machine import machine
    from tests.mosquitto import Mosquitto

    info = machine(pinned_cpu=args.cpu or None)
    bundle = str(latency_bundle(ROOT / "var/bench/latency_bundle"))
    key = latency_bundle_key(args.public_key)
    events = live_events(args.history, args.events)
    work = Path(tempfile.mkdtemp(prefix="shelfcast-floor-"))
    base = work / "base" / GATEWAY_DIR
    broker = Mosquitto(work / "broker").start()
    common = ["--bundle", bundle, "--port", str(broker.port), "--group", str(args.group)]
    gw_args = SimpleNamespace(store=STORE, profile=None)
    runs: dict[str, list[dict]] = {"floor": [], "drain": []}
    load = [round(os.getloadavg()[0], 2)]
    try:
        capture = work / "capture"
        capture.mkdir()
        drained = _child_run(args, ["--history", str(args.history), "--events",
                                    str(args.events), "--out", str(capture), "--public-key",
                                    key, *common])  # fmt: skip
        print(f"capture: {json.dumps(drained)}", file=sys.stderr, flush=True)
        copy_ledger(args.history, base)  # its session and derived snapshot made here
        _gateway(ROOT, gw_args, base, broker.port, 0, bundle, key, args.cpu)
        _child_run(args, ["--floor", "--expect", "0", *common])
        sides = {
            "floor": lambda state: _child_run(args, [
                "--floor", "--expect", str(args.events), "--capture", str(capture),
                "--state-dir", str(state), *common]),
            "drain": lambda state: _gateway(ROOT, gw_args, state, broker.port, args.events,
                                            bundle, key, args.cpu),
        }  # fmt: skip
        for r in range(args.runs):
            publish_events(broker.port, f"shelfcast/{STORE}/events/pos", events)
            for side in list(sides) if r % 2 == 0 else list(sides)[::-1]:
                state = work / f"run-{r}-{side}" / GATEWAY_DIR
                _copy_state(base, state, side)
                load.append(round(os.getloadavg()[0], 2))
                res = sides[side](state)
                res["loadavg_1m"] = load[-1]
                runs[side].append(res)
                print(f"run {r + 1} {side}: {json.dumps(res)}", file=sys.stderr, flush=True)
                shutil.rmtree(state.parent, ignore_errors=True)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = summary(runs, args.events)
    result.update(events=args.events, group=args.group, runs_each=args.runs, machine=info,
                  loadavg_1m=load, captured_drain=drained, runs=runs)  # fmt: skip
    show_figures(result, args.json, unprinted=("runs",))
    return 0


def _copy_state(base: Path, state: Path, side: str) -> None:
    """The prepared state directory for the drain; only the ledger and its id index for the
    floor (the same ledger both start from)."""
    if side == "drain":
        shutil.copytree(base, state)
        return
    state.mkdir(parents=True)
    for name in ("ledger.sqlite", "ledger.sqlite.index.npz"):
        if (base / name).exists():
            shutil.copyfile(base / name, state / name)


def summary(runs: dict[str, list[dict]], events: int) -> dict:
    """Medians over the runs: the floor's steps (``floor_figures``) and the real drain's CPU
    per event, and how far the drain is from the floor.

    >>> floor = {"cpu_s": {"parse": 0.05, "close_onnx": 0.03, "build": 0.02},
    ...          "extra_cpu_s": {"mark_sent": 0.01}, "messages": 5000}
    >>> s = summary({"floor": [floor], "drain": [{"cpu_s": 0.5, "close_cpu_s": 0.1}]}, 10_000)
    >>> s["drain_us_per_event"], s["drain_over_floor"], s["mark_sent_us_per_event"]
    (50.0, 5.0, 1.0)
    >>> s["messages_per_event"], s["build_us_per_message"]
    (0.5, 4.0)
    """
    steps = runs["floor"][0]["cpu_s"]
    median = {s: statistics.median(r["cpu_s"][s] for r in runs["floor"]) for s in steps}
    out = floor_figures(median, events)
    for name in runs["floor"][0].get("extra_cpu_s", {}):  # measured, not in the floor
        spent = statistics.median(r["extra_cpu_s"][name] for r in runs["floor"])
        out[f"{name}_us_per_event"] = round(1e6 * spent / events, 2)
    messages = runs["floor"][0].get("messages")
    if messages:  # what the messages' steps cost each
        out["messages_per_event"] = round(messages / events, 4)
        for step in ("build", "outbox_row", "publish", "publish_one_write"):
            if f"{step}_us_per_event" in out:
                out[f"{step}_us_per_message"] = round(
                    out[f"{step}_us_per_event"] * events / messages, 2
                )
    drain = statistics.median(r["cpu_s"] for r in runs["drain"])
    out["drain_us_per_event"] = round(1e6 * drain / events, 2)
    out["drain_events_per_s_on_cpu"] = round(events / drain, 1)
    out["drain_close_us_per_event"] = round(
        1e6 * statistics.median(r["close_cpu_s"] for r in runs["drain"]) / events, 2
    )
    out["drain_over_floor"] = round(out["drain_us_per_event"] / out["floor_us_per_event"], 2)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
