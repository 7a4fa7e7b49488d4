"""A store day's close, the parts ``git REF`` did otherwise: REF's way and ours, alternated.

    python benchmarks/close_cuts.py --events 10000 --runs 10 --ref main --json out.json

A gateway (MQTT off, the signed ``latency_bundle``, the start's heap frozen as ``full_path.py``
does) drains ``--events`` live events after the cached 1M-event history in groups of 5,000
(``drain_in_process.drain``: 4 closes). At each close it keeps what two of the close's steps
were given: the review of every SKU (the policy as it stood, the SKU states as committed, the
close's time) and River's shift of every SKU (the correction, the central forecast, the
scales). Then, for every close, ``--runs`` times each way in alternation, on fresh copies:

- ``review``: ``ForecastDecisionPolicy.review`` with the close's decision ids; REF's policy
  class (its ``forecast_policy.py``, loaded beside ours) with ids set on copies (pydantic's
  ``model_copy`` here: the hand copy REF's ``with_decision_ids`` made is gone, so this way now
  costs more than REF's did), against ours building each decision with its id (``occasion``);
- ``shift``: ``DayCloseModel._shift``; REF's (``predict_one`` per SKU) against ours.

Figures: each close's median thread CPU of each way, their sums over the closes, and whether
both ways gave the same messages (their JSON but ``created_at``) and the same shifts (bit for
bit). Pin it (``taskset -c 0``) to weigh it as the full path's gateway is.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import show_figures  # noqa: E402


def _ref_policy(ref: str) -> type:
    """REF's ``ForecastDecisionPolicy``, its module loaded under another name (the rest of the
    gateway is ours: REF's policy must import what it needs from it)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:edge_runtime/decide/forecast_policy.py"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    spec = importlib.util.spec_from_loader("ref_forecast_policy", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(src, f"{ref}:forecast_policy.py", "exec"), module.__dict__)
    return module.ForecastDecisionPolicy


def _ref_shift(correction, skus, first: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``DayCloseModel._shift`` before ``predict_many``: ``predict_one`` per SKU."""
    predict = correction.predict_one
    return np.fromiter(
        (predict(sku, c / s) * s - c
         for sku, c, s in zip(skus, first.tolist(), scale.tolist(), strict=True)),
        dtype=np.float64, count=len(skus),
    )  # fmt: skip


def _capture() -> tuple[dict[str, list], Callable[[], None]]:
    """What each close's review and shift were given, filled as the drain runs; and what puts
    the engine's own steps back."""
    from edge_runtime.decide.day_close import DayCloseModel
    from edge_runtime.decide.engine import DecisionEngine
    from edge_runtime.store.state_columns import StateColumns

    kept: dict[str, list] = {"review": [], "shift": [], "_columns": []}
    of_sku_states = StateColumns.of_sku_states.__func__

    def columns(cls, stored, safety_buffer, as_of_us):
        kept["_columns"] = [[s.copy() for s in stored], safety_buffer, list(as_of_us)]
        return of_sku_states(cls, stored, safety_buffer, as_of_us)

    StateColumns.of_sku_states = classmethod(columns)
    review_all = DecisionEngine.review_all

    def review(self, states, forecasts, at, occasion=None):
        if forecasts is not None and at is not None:
            kept["review"].append((copy.deepcopy(self.policy), *kept["_columns"], at, occasion))
        return review_all(self, states, forecasts, at, occasion)

    DecisionEngine.review_all = review
    shift = DayCloseModel._shift

    def shifted(self, skus, first, scale):
        kept["shift"].append((copy.deepcopy(self.correction), list(skus), first.copy(),
                              scale.copy()))  # fmt: skip
        return shift(self, skus, first, scale)

    DayCloseModel._shift = shifted

    def undo() -> None:
        StateColumns.of_sku_states = classmethod(of_sku_states)
        DecisionEngine.review_all, DayCloseModel._shift = review_all, shift

    return kept, undo


def _ids_on_copies(messages: list, occasion: str) -> list:
    """Each decision copied under its id (epoch: its cause, else ``occasion``): how the close
    gave its decisions their ids before it built them with them."""
    from edge_runtime.messages import decision_id

    def copied(m):
        epoch = m.cause_event_id or occasion
        return m.model_copy(update={"message_id": decision_id(m.store_id, m.kind, m.sku, epoch)})

    return [copied(m) for m in messages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000, help="live events drained first")
    parser.add_argument("--runs", type=int, default=10, help="runs each way, per close")
    parser.add_argument("--ref", default="main", help="git REF whose way is compared")
    parser.add_argument("--public-key", help="the bundle's public key (default: training's)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    from benchmarks.drain_in_process import drain
    from benchmarks.latency import latency_bundle, latency_bundle_key
    from edge_runtime.decide.day_close import DayCloseModel
    from edge_runtime.heap import freeze_startup_heap
    from edge_runtime.store.state_columns import StateColumns

    ref_policy = _ref_policy(args.ref)
    kept, undo = _capture()
    key = latency_bundle_key(args.public_key)
    bundle = str(latency_bundle(ROOT / "var/bench/latency_bundle"))
    ns = argparse.Namespace(history=args.history, events=args.events, group=5000,
                            bundle=bundle, public_key=key)  # fmt: skip
    drained = drain(ns, on_ready=lambda gw: freeze_startup_heap())
    undo()

    def review(policy, cls, built, stored, buffer, as_of_us, at, occasion):
        policy = copy.deepcopy(policy)
        policy.__class__ = cls
        states = StateColumns.of_sku_states(stored, buffer, as_of_us)
        t0 = time.thread_time()
        if built:
            out = policy.review(states, {}, at, occasion)
        else:
            out = _ids_on_copies(policy.review(states, {}, at), occasion)
        return time.thread_time() - t0, out

    model = DayCloseModel.__new__(DayCloseModel)
    figures: dict = {"events": args.events, "ref": args.ref, "decisions_digest":
                     drained["decisions_digest"], "closes": []}  # fmt: skip
    same_messages = same_shifts = True
    for i, (policy, stored, buffer, as_of_us, at, occasion) in enumerate(kept["review"]):
        ways = {"ref": (ref_policy, False), "ours": (type(policy), True)}
        spent: dict[str, list[float]] = {w: [] for w in ways}
        decided = {}
        for r in range(args.runs):
            for way in list(ways) if r % 2 == 0 else list(ways)[::-1]:
                took, out = review(policy, *ways[way], stored, buffer, as_of_us, at, occasion)
                spent[way].append(took)
                decided[way] = [m.to_json().split(b'"created_at"')[0] for m in out]
        same_messages &= decided["ref"] == decided["ours"]
        correction, skus, first, scale = kept["shift"][i + 1]  # [0]: the start's re-score
        model.correction = correction
        shift: dict[str, list[float]] = {"ref": [], "ours": []}
        for r in range(args.runs):
            for way in ("ref", "ours") if r % 2 == 0 else ("ours", "ref"):
                t0 = time.thread_time()
                got = (_ref_shift(correction, skus, first, scale) if way == "ref"
                       else model._shift(skus, first, scale))  # fmt: skip
                shift[way].append(time.thread_time() - t0)
                if way == "ref":
                    want = got
                else:
                    mine = got
        same_shifts &= want.tobytes() == mine.tobytes()
        figures["closes"].append({
            "messages": len(decided["ours"]), "skus": len(stored),
            **{f"review_ms_{w}": round(1000 * statistics.median(t), 2) for w, t in spent.items()},
            **{f"shift_ms_{w}": round(1000 * statistics.median(t), 2) for w, t in shift.items()},
        })  # fmt: skip
    for part in ("review", "shift"):
        for way in ("ref", "ours"):
            name = f"{part}_ms_{way}"
            figures[f"{name}_all_closes"] = round(sum(c[name] for c in figures["closes"]), 2)
    figures["same_messages"], figures["same_shifts"] = same_messages, same_shifts
    show_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
