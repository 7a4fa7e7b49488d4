"""The full path's decisions without the broker: a gateway object drains live events in groups.

    python benchmarks/drain_in_process.py --events 30000 --group 5000 --json out.json
    python benchmarks/drain_in_process.py ... --compare main --pairs 4   # alternate with REF
    python benchmarks/drain_in_process.py ... --steps    # + the close's River steps, each call

The gateway (``edge_runtime.gateway.Gateway``, MQTT off, the signed ``latency_bundle``) starts
from a copy of the cached 1M-event history ledger (``benchmarks/history.py``) and is fed the
live events that follow it through ``Gateway.ingest``, ``--group`` events per call: what its
worker does with a group the MQTT intake took (``full_path.py`` drains its backlog in groups of
up to 5,000 events: the broker hands over the whole queued session at once). The figure is
the calling thread's CPU seconds over the feeding (parse, ledger commit, decisions on every
state change and at every store-day close, outbox rows), free of paho, the broker and the
pinned core's other tenants' threads, of which the store-day closes' (``close_cpu_s``, timed as
``full_path.py`` times them; the start's heap frozen as there); ``decisions_digest`` is
``full_path.py``'s digest of the messages decided. With ``--compare REF`` the gateway packages of git ``REF`` run the same
events in alternation (``--pairs`` runs each), pinned like ``full_path.py`` (``--cpu``).
``--steps`` adds the thread CPU of each call of the day close's River steps
(``DayCloseModel.learn`` and ``._shift``, on both sides) and whether River was imported.
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # --compare puts the old packages first
    sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import child_figures, show_figures  # noqa: E402


def drain(args: argparse.Namespace, on_ready: Callable[[object], object] | None = None) -> dict:
    """One drain: a gateway (MQTT off) on a copy of the history ledger fed ``args.events``
    live events in groups of ``args.group``; its thread CPU over the feeding, its counters
    (``messages_by_kind`` too) and ``decisions_digest``. ``on_ready`` is called with the
    gateway once it has started, before the first group. ``decide_steps_skip.py`` and
    ``full_path_floor.py`` run the same drain."""
    from benchmarks.full_path import _decisions_digest, _outbox_end
    from benchmarks.history import STORE, copy_ledger, live_events
    from edge_runtime.config import load_config, with_section
    from edge_runtime.gateway import Gateway

    work = Path(tempfile.mkdtemp(prefix="shelfcast-drain-"))
    try:
        copy_ledger(args.history, work)
        env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(work),
               "SHELFCAST_MQTT_ENABLED": "false"}  # fmt: skip
        cfg = with_section(load_config(env=env), "model", bundle=args.bundle,
                           public_key=args.public_key)  # fmt: skip
        events = live_events(args.history, args.events)
        payloads = [json.dumps(events[i : i + args.group]).encode()
                    for i in range(0, len(events), args.group)]  # fmt: skip
        gw = Gateway(cfg)
        if on_ready is not None:
            on_ready(gw)
        start = _outbox_end(str(work))
        cpu0 = time.thread_time()
        for payload in payloads:
            gw.ingest(payload, source="pos")
        cpu = time.thread_time() - cpu0
        result = {"events": len(events), "cpu_s": round(cpu, 3),
                  "messages": gw.counters["messages"], "day_closes": gw.counters["day_closes"],
                  "messages_by_kind": dict(gw.created_by_kind)}  # fmt: skip
        gw.close()
        result["decisions_digest"] = _decisions_digest(str(work), start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _child(args: argparse.Namespace) -> int:
    from benchmarks.full_path import _timed_closes
    from edge_runtime.heap import freeze_startup_heap

    steps = _timed_steps() if args.steps else None
    close_cpu = _timed_closes()
    result = drain(args, on_ready=lambda gw: freeze_startup_heap())  # as full_path.py's child
    result["close_cpu_s"] = round(sum(close_cpu), 3)
    result["close_cpu_ms_each"] = [round(1000 * c, 1) for c in close_cpu]
    if steps is not None:
        result["steps_ms"] = {k: [round(1000 * t, 2) for t in v] for k, v in steps.items()}
        result["river_imported"] = "river" in sys.modules
    print(json.dumps(result), flush=True)
    return 0


def _timed_steps() -> dict[str, list[float]]:
    """Thread CPU seconds of each call of the day close's River steps, filled as they run."""
    from edge_runtime.decide.day_close import DayCloseModel

    spent: dict[str, list[float]] = {"learn": [], "_shift": []}
    for name, calls in spent.items():
        step = getattr(DayCloseModel, name)

        def timed(self, *args, _step=step, _calls=calls):
            t0 = time.thread_time()
            out = _step(self, *args)
            _calls.append(time.thread_time() - t0)
            return out

        setattr(DayCloseModel, name, timed)
    return spent


def _run(code_root: Path, args: argparse.Namespace, bundle: str, key: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--history",
           str(args.history), "--events", str(args.events), "--group", str(args.group),
           "--bundle", bundle, "--public-key", key]  # fmt: skip
    if args.steps:
        cmd.append("--steps")
    if args.cpu:
        cmd = ["taskset", "-c", args.cpu, *cmd]
    env = {**os.environ, "PYTHONPATH": f"{code_root}:{ROOT}"}
    return child_figures(cmd, env, 900, "drain")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="events of history")
    parser.add_argument("--events", type=int, default=30_000, help="live events fed")
    parser.add_argument("--group", type=int, default=5000, help="events per ingest call")
    parser.add_argument("--compare", metavar="REF", help="alternate with the gateway of REF")
    parser.add_argument("--pairs", type=int, default=3, help="runs per side")
    parser.add_argument("--cpu", default="0", help="core(s) for taskset ('' to not pin)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--steps", action="store_true", help="time the close's River steps")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", help=argparse.SUPPRESS)
    parser.add_argument("--public-key", help="the bundle's public key (default: training's)")
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    from benchmarks.full_path import _old_code, same_decisions
    from benchmarks.latency import latency_bundle, latency_bundle_key

    bundle = str(latency_bundle(ROOT / "var/bench/latency_bundle"))
    key = latency_bundle_key(args.public_key)
    work = Path(tempfile.mkdtemp(prefix="shelfcast-drain-ab-"))
    roots = {"new": ROOT}
    if args.compare:
        roots["old"] = _old_code(args.compare, work / "old")  # the benchmarks stay ours
    sides = list(roots)
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    try:
        for i in range(args.pairs if args.compare else 1):
            for side in sides if i % 2 == 0 else sides[::-1]:
                res = _run(roots[side], args, bundle, key)
                res["loadavg_1m"] = round(os.getloadavg()[0], 2)
                runs[side].append(res)
                print(f"{side}: {json.dumps(res)}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict = {"events": args.events, "group": args.group, "runs": runs}
    for side in sides:
        result[f"median_cpu_s_{side}"] = statistics.median(r["cpu_s"] for r in runs[side])
        result[f"median_close_cpu_s_{side}"] = statistics.median(
            r["close_cpu_s"] for r in runs[side]
        )
    if args.compare:
        result["same_decisions"] = same_decisions(runs)
        result["cpu_ratio_old_over_new"] = round(
            result["median_cpu_s_old"] / result["median_cpu_s_new"], 3
        )
        result["close_cpu_ratio_old_over_new"] = round(
            result["median_close_cpu_s_old"] / result["median_close_cpu_s_new"], 3
        )
    show_figures(result, args.json, unprinted=("runs",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
