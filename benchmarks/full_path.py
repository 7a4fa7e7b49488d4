"""Full-path throughput: a backlog of single-event MQTT messages drained through the gateway.

    python benchmarks/full_path.py --history 1000000 --events 10000 --rounds 3 --json out.json
    python benchmarks/full_path.py ... --compare main    # alternate with the gateway of `main`

Real Mosquitto on the shipped configuration (``tests.mosquitto``), the gateway in a process of
its own pinned to one core (``taskset -c 0``), its state directory a copy of the cached
history ledger (``benchmarks/history.py``: 1M Online Retail II events, ~4,900 SKUs, store "OR")
and a signed model bundle (``benchmarks/latency.py``'s ``latency_bundle``; ``--policy rules``
runs without one). Each round: with the gateway stopped, ``mosquitto_pub -l`` queues the next
``--events`` real events that follow the history, one event per QoS 1 message, in the
gateway's persistent session; then a gateway starts and drains them: MQTT -> parse ->
ledger commit -> decisions on every state change -> outbox -> published to the broker.

Figures per round: ``events_per_s`` from the first event committed to the last,
``events_per_s_to_outbox_empty`` to the last of their messages acknowledged by the broker, and
the gateway's CPU seconds over the drain, of which the store-day closes' (``close_cpu_s``: the
worker thread's CPU in the engine's two close steps, each close in ``close_cpu_ms_each``), and
a digest of the messages it decided. With
``--compare REF`` a second gateway runs the code of git ``REF`` (its gateway packages exported
to a temporary directory) on a second copy of the ledger under its own MQTT session: each
round's events are published once and queue in both sessions, and the two drain the very same
events (same day closes) one after the other, in alternating order, under the same machine
load; medians per side, and whether every round's decisions were the same on both sides
(``same_decisions``).
With ``--variant NAME=SPEC`` (repeatable) a further gateway of this tree runs with the
gateway-side MQTT settings of ``SPEC`` switched (``benchmarks/gateway_variant.py``: ``nagle``,
``mark=S``; ``broker-nagle`` gives it a broker of its own without ``set_tcp_nodelay``), on a
ledger and a session of its own, in the same rotation; its figures are under ``NAME`` and
``same_decisions`` compares every side with ``new``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # --compare puts the old edge_runtime first
    sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import child_figures, show_figures  # noqa: E402
from benchmarks.gateway_variant import VARIANT_ENV, apply_from_env, broker_overrides  # noqa: E402
from benchmarks.gateway_variant import parse as parse_variant  # noqa: E402


def _child(args: argparse.Namespace) -> int:
    """The gateway's process: start, drain ``--expect`` events, print the figures, close."""
    from edge_runtime.config import load_config, with_mqtt, with_section
    from edge_runtime.gateway import Gateway
    from edge_runtime.heap import freeze_startup_heap

    variant = apply_from_env()

    env = {"SHELFCAST_STORE_ID": args.store, "SHELFCAST_STATE_DIR": args.state_dir}
    cfg = with_mqtt(
        load_config(env=env), host="127.0.0.1", port=args.port, client_id=args.client_id
    )
    if args.bundle:
        cfg = with_section(cfg, "model", bundle=args.bundle, public_key=args.public_key)
    close_cpu = _timed_closes()
    t_start = time.monotonic()
    gw = Gateway(cfg).start()
    outbox_from = _outbox_end(args.state_dir)
    freeze_startup_heap()
    started_s = time.monotonic() - t_start
    cpu0, sys0 = time.process_time(), os.times().system
    first = None
    deadline = time.monotonic() + 600
    while gw.counters["ingested"] < args.expect and time.monotonic() < deadline:
        if first is None and gw.counters["ingested"]:
            first = time.monotonic()
        time.sleep(0.002)
    done = time.monotonic()
    drained = gw.flush(120)
    out_done = time.monotonic()
    cpu, sys_cpu = time.process_time() - cpu0, os.times().system - sys0
    n = gw.counters["ingested"]
    first = first or done
    result = {
        "ingested": n,
        "start_s": round(started_s, 2),
        "events_per_s": round(n / max(done - first, 1e-9), 1) if args.expect else None,
        "events_per_s_to_outbox_empty": round(n / max(out_done - first, 1e-9), 1)
        if args.expect
        else None,
        "outbox_drained": drained,
        "messages": gw.counters["messages"],
        "day_closes": gw.counters["day_closes"],
        "cpu_s": round(cpu, 2),
        "system_cpu_s": round(sys_cpu, 2),  # of which the kernel's (sends, receives, fsync)
        "close_cpu_s": round(sum(close_cpu), 3),
        "close_cpu_ms_each": [round(1000 * c, 1) for c in close_cpu],
        "policy": gw.model_version,
        "variant": variant,
    }
    gw.close()
    result["decisions_digest"] = _decisions_digest(args.state_dir, outbox_from)
    print(json.dumps(result), flush=True)
    return 0


def _timed_closes() -> list[float]:
    """The worker thread's CPU seconds in each store-day close of the drain: the engine's two
    close steps (the sales series, River and the re-score; then the decisions on every SKU)
    timed with ``time.thread_time`` around them, a list the drain fills. The engine's own code
    on both sides of ``--compare`` (these methods exist in both), not a copy of it."""
    from edge_runtime.decide.engine import DecisionEngine

    spent: list[float] = []
    for name in ("_stage_day_close", "_day_close"):
        step = getattr(DecisionEngine, name)

        def timed(self, *args, _step=step, _first=name == "_stage_day_close", **kwargs):
            t0 = time.thread_time()
            closed = _step(self, *args, **kwargs)
            took = time.thread_time() - t0
            if not _first:
                spent[-1] += took
            elif closed:  # (a segment that closes no day costs next to nothing)
                spent.append(took)
            return closed

        setattr(DecisionEngine, name, timed)
    return spent


def _outbox_end(state_dir: str) -> int:
    with sqlite3.connect(Path(state_dir) / "ledger.sqlite") as conn:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]


def _rounded(value):
    """``value`` with every float to 9 significant digits: two builds may compute a probability
    in a different order of operations (last-bit differences), which is not another decision."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _decisions_digest(state_dir: str, after: int) -> str:
    """SHA-256 of the messages the drain decided (outbox rows after ``after``), each payload
    without ``created_at`` (the wall clock) and ``confidence`` (it decays with the ledger clock
    at each batch's commit, and where a drain's batches end depends on timing): equal on both
    sides of ``--compare`` when the two gateways decided the same. Uplink deltas and state
    messages are left out: they aggregate whatever a timer finds, not decisions."""
    lines = []
    with sqlite3.connect(Path(state_dir) / "ledger.sqlite") as conn:
        rows = conn.execute(
            "SELECT payload FROM outbox WHERE seq > ? AND kind NOT IN ('uplink', 'state')",
            (after,),
        )
        for (payload,) in rows:
            data = bytes(payload)
            message = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
            message.pop("created_at", None)
            message.pop("confidence", None)
            lines.append(json.dumps(_rounded(message), sort_keys=True))
    # Sorted: the order of one batch's messages is not a decision.
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def _publish(port: int, topic: str, events: list[dict]) -> None:
    lines = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events)
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1", "-l"]
    subprocess.run([*args, "-i", "bench-tills"], input=lines, check=True, timeout=300)


def _gateway(code_root: Path, args: argparse.Namespace, state_dir: Path, port: int, expect: int,
             bundle: str | None, key: str | None, cpu: str, variant: str = "") -> dict:  # fmt: skip
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--store", args.store,
           "--state-dir", str(state_dir), "--port", str(port), "--expect", str(expect),
           "--client-id", f"bench-gateway-{state_dir.name}"]  # fmt: skip
    if bundle:
        cmd += ["--bundle", bundle, "--public-key", key]
    if cpu:
        cmd = ["taskset", "-c", cpu, *cmd]
    if args.profile and code_root == ROOT and expect:  # py-spy's folded stacks of the drain
        spy = str(Path(sys.executable).with_name("py-spy"))  # py-spy itself is not pinned
        cmd = [spy, "record", "-f", "raw", "-r", "250", "--threads", "-o", args.profile,
               "--", *cmd]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{code_root}:{ROOT}", VARIANT_ENV: variant}
    return child_figures(cmd, env, 900, "gateway")


def same_decisions(runs: dict[str, list[dict]]) -> bool:
    """Whether in every round every side decided the same messages as ``new`` (the same events
    drained): anything else is a bug of one side."""
    return all(
        a["decisions_digest"] == b["decisions_digest"]
        for side, other in runs.items()
        if side != "new"
        for a, b in zip(runs["new"], other, strict=True)
    )


# What a gateway process imports of the repository: all of it is taken from the old ref (the
# feature store and the model bundle code are on the hot path as much as ``edge_runtime``).
GATEWAY_PACKAGES = ("edge_runtime", "feature_store", "models", "configuration", "api")


def _old_code(ref: str, out: Path) -> Path:
    """The gateway's packages as of git ``ref``, exported under ``out`` (imported before ours)."""
    out.mkdir(parents=True)
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", ref],
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    packages = [p for p in GATEWAY_PACKAGES if p in listed]
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *packages],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="events of history")
    parser.add_argument("--events", type=int, default=10_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (per side with --compare)")
    parser.add_argument("--policy", choices=("model", "rules"), default="model")
    parser.add_argument("--bundle", help="signed bundle (default: latency.py's)")
    parser.add_argument("--compare", metavar="REF", help="alternate with the gateway of REF")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SPEC",
                        help="also this tree's gateway with SPEC's settings")  # fmt: skip
    parser.add_argument("--cpu", default="0", help="core(s) for taskset ('' to not pin)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--profile", help="py-spy folded stacks of the last drain here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", default="OR", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--public-key", help="the bundle's public key (default: training's)")
    parser.add_argument("--client-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    from benchmarks.history import STORE, copy_ledger, live_events
    from benchmarks.latency import latency_bundle, latency_bundle_key
    from tests.mosquitto import Mosquitto

    args.store = STORE
    bundle = key = None
    if args.policy == "model":
        bundle = args.bundle or str(latency_bundle(ROOT / "var/bench/latency_bundle"))
        key = latency_bundle_key(args.public_key)
    sides = ["new", "old"] if args.compare else ["new"]
    variants = {"new": "", "old": ""}
    for named in args.variant:
        name, _, spec = named.partition("=")
        parse_variant(spec)  # refused here, not in the first child
        if name in variants:
            raise SystemExit(f"--variant {named}: {name!r} is taken")
        sides.append(name)
        variants[name] = spec
    need = args.events * args.rounds
    events = live_events(args.history, need)
    if len(events) < need:
        raise SystemExit(f"{need} live events asked, the history leaves {len(events)}")
    work = Path(tempfile.mkdtemp(prefix="shelfcast-fullpath-"))
    roots = {"new": ROOT}
    if args.compare:
        roots["old"] = _old_code(args.compare, work / "old")
    for side in sides[1:]:
        roots.setdefault(side, ROOT)
    states = {side: work / f"gateway-{side}" for side in sides}
    for state in states.values():
        info = copy_ledger(args.history, state)
    # One broker per set of broker settings the sides ask for (``broker-nagle``), each round's
    # events published to each.
    brokers: dict[str, Mosquitto] = {}
    port = {}
    for side in sides:
        overrides = broker_overrides(variants[side])
        name = "broker" + "".join(f"-{k}-{v}" for k, v in sorted(overrides.items()))
        if name not in brokers:
            brokers[name] = Mosquitto(work / name, overrides=overrides).start()
        port[side] = brokers[name].port
    topic = f"shelfcast/{STORE}/events/pos"
    load = [round(os.getloadavg()[0], 2)]
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    try:
        # The session exists before the tills send; this start also writes the derived snapshot.
        for side in sides:
            first = _gateway(roots[side], args, states[side], port[side], 0, bundle, key,
                             args.cpu, variants[side])  # fmt: skip
            print(f"{side}: session created, start {first['start_s']} s", file=sys.stderr)
        for r in range(args.rounds):
            for broker in brokers.values():
                _publish(broker.port, topic, events[r * args.events : (r + 1) * args.events])
            # Two sides alternate which goes first; more rotate.
            order = (sides if r % 2 == 0 else sides[::-1]) if len(sides) <= 2 else (
                sides[r % len(sides):] + sides[:r % len(sides)])  # fmt: skip
            for side in order:
                load.append(round(os.getloadavg()[0], 2))
                res = _gateway(roots[side], args, states[side], port[side], args.events, bundle,
                               key, args.cpu, variants[side])  # fmt: skip
                res["loadavg_1m"] = load[-1]
                runs[side].append(res)
                print(f"round {r + 1} {side}: {json.dumps(res)}", file=sys.stderr, flush=True)
    finally:
        for broker in brokers.values():
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "history": info,
        "policy": args.policy,
        "bundle": bundle,
        "events_per_round": args.events,
        "pinned_cpu": args.cpu or None,
        "loadavg_1m": load,
        "nproc": os.cpu_count(),
        "runs": runs,
        "variants": {s: variants[s] for s in sides if variants[s]},
    }
    for side in sides:
        result[f"median_events_per_s_{side}"] = statistics.median(
            r["events_per_s"] for r in runs[side]
        )
        result[f"median_events_per_s_to_outbox_empty_{side}"] = statistics.median(
            r["events_per_s_to_outbox_empty"] for r in runs[side]
        )
        result[f"median_cpu_s_{side}"] = statistics.median(r["cpu_s"] for r in runs[side])
        result[f"median_close_cpu_s_{side}"] = statistics.median(
            r.get("close_cpu_s", 0.0) for r in runs[side]
        )
    if len(sides) > 1:
        # Per round, every side drained the same events: the same decisions or a bug.
        result["same_decisions"] = same_decisions(runs)
    for side in sides[2 if args.compare else 1 :]:
        result[f"cpu_ratio_{side}_over_new"] = round(
            result[f"median_cpu_s_{side}"] / result["median_cpu_s_new"], 3
        )
    if args.compare:
        result["ratio_new_over_old"] = round(
            result["median_events_per_s_new"] / result["median_events_per_s_old"], 2
        )
        # The same events on both sides: CPU seconds compare the code, less swayed by the load.
        result["cpu_ratio_old_over_new"] = round(
            result["median_cpu_s_old"] / result["median_cpu_s_new"], 2
        )
    show_figures(result, args.json, unprinted=("runs",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
