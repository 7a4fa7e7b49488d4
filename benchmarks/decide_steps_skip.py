"""Thread CPU of the per-change decision rounds (``DecisionEngine._decide_steps``) of a drain,
with the quiet-level skip and without it (``deciding`` passing every step), alternated in one
process tree: one child a run, the same ledger, bundle and events as ``drain_in_process.py``.

    python benchmarks/decide_steps_skip.py --events 10000 --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _child(args: argparse.Namespace) -> None:
    from benchmarks.drain_in_process import drain
    from edge_runtime.decide.engine import DecisionEngine
    from edge_runtime.decide.forecast_policy import ForecastDecisionPolicy

    if not args.skip:
        ForecastDecisionPolicy.deciding = lambda self, steps, safety_buffer: steps
    spent = [0.0]
    inside = {"filter_s": 0.0, "skipped_decided_s": 0.0, "skipped": 0, "steps": 0}
    if args.skip:
        _measure_skipped(ForecastDecisionPolicy, inside)
    real = DecisionEngine._decide_steps

    def timed(self, *a):
        t0 = time.thread_time()
        out = real(self, *a)
        spent[0] += time.thread_time() - t0
        return out

    DecisionEngine._decide_steps = timed
    result = drain(args)
    print(json.dumps({"skip": args.skip, "cpu_s": result["cpu_s"],
                      "decide_steps_s": round(spent[0], 4), "digest": result["decisions_digest"],
                      **({k: round(v, 4) for k, v in inside.items()} if args.skip else {})}))  # fmt: skip


def _measure_skipped(policy_class, inside: dict) -> None:
    """In the skip's run: the filter's CPU, and what deciding the steps it left out would have
    cost (decided anyway, after the kept ones; they must publish and change nothing)."""
    from edge_runtime.store.state_columns import StateColumns

    real = policy_class.deciding

    def deciding(self, steps, safety_buffer):
        t0 = time.thread_time()
        kept = real(self, steps, safety_buffer)
        inside["filter_s"] += time.thread_time() - t0
        kept_ids = {id(e) for e, _ in kept}  # the filter makes new tuples: the events are kept
        left = [step for step in steps if id(step[0]) not in kept_ids]
        inside["steps"] += len(steps)
        inside["skipped"] += len(left)
        if left:
            changed = [s for _, s in left]
            before = (dict(self.monitor.under_alert()), dict(self.replenisher.open_orders))
            t0 = time.thread_time()
            states = StateColumns.of_sku_states(
                changed, safety_buffer, [s.last_us for s in changed]
            )
            out = self.decide(states, {e.sku: e for e, _ in left}, [])
            inside["skipped_decided_s"] += time.thread_time() - t0
            after = (dict(self.monitor.under_alert()), dict(self.replenisher.open_orders))
            if out or before != after:  # a wrong skip: say which and stop at once
                print("WRONG SKIP", [(e.sku, e.event_time, s.available(safety_buffer))
                      for e, s in left][:5], [m.to_dict() for m in out][:2], flush=True)  # fmt: skip
                os._exit(3)
        return kept

    policy_class.deciding = deciding


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--history", type=int, default=1_000_000)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--group", type=int, default=5000)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--cpu", default="0")
    p.add_argument("--bundle", default=str(ROOT / "var/bench/latency_bundle"))
    p.add_argument("--public-key", default=str(ROOT / "var/keys/bundle-signing.pub"))
    p.add_argument("--skip", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args)
        return 0
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for k in range(2 * args.pairs):
        skip = k % 4 in (0, 3)  # ABBA
        cmd = [sys.executable, __file__, "--child", "--history", str(args.history), "--events",
               str(args.events), "--group", str(args.group), "--bundle", args.bundle,
               "--public-key", args.public_key] + (["--skip"] if skip else [])  # fmt: skip
        if args.cpu:
            cmd = ["taskset", "-c", args.cpu, *cmd]
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        print(out, flush=True)
        runs[skip].append(out)
    for skip, rs in runs.items():
        print(("skip" if skip else "all"), "median decide_steps_s",
              statistics.median(r["decide_steps_s"] for r in rs), "median cpu_s",
              statistics.median(r["cpu_s"] for r in rs))  # fmt: skip
    print("same_decisions", len({r["digest"] for rs in runs.values() for r in rs}) == 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
