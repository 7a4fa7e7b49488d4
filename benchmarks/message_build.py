"""Building the gateway's outgoing alerts: pydantic's validation vs without it.

    python benchmarks/message_build.py --messages 5000 --runs 10 --json out.json

Builds ``--messages`` alerts, cycling through one of each shape the engine makes (a day
close's forecast stock-out and order, a rule's stock-out, a conflict, an anomaly, an intraday
warning), ``--runs`` times each way in alternation, and reports the median thread CPU per
message of each way:

- ``validated``: ``Model(**fields)``, what the engine does;
- ``unchecked``: the floor of any construction without validation: the instance's dict from
  the defaults and the given values, default factories called, nothing checked or converted
  (not a way to build messages: what skipping validation could save at most).

A third way, values checked in Python against a plan derived from the model, was tried and
not kept (docs/records/ingest.md); this script at 3153d5e measures it too. Pin it (``taskset
-c 1``) to weigh it as the full path's gateway is.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.figures_out import show_figures  # noqa: E402


def shapes() -> list[tuple[type, dict]]:
    """One alert of each shape the engine builds, with the value types its call sites pass."""
    from edge_runtime.messages import (
        AnomalyAlert,
        ConflictMessage,
        ReasonCode,
        ReplenishmentAlert,
        StockoutAlert,
    )

    at = datetime.fromisoformat("2026-01-07T18:00:00+00:00")
    stock = {"atp": 3.0, "on_hand": 4.0, "reserved": 1.0, "confidence": 0.93}
    common = {"store_id": "S1", "sku": "SKU-00042", "model_version": "m5-1", "event_time": at}
    hour = datetime(2026, 1, 7, 17, tzinfo=timezone(timedelta(hours=2)))
    return [
        (StockoutAlert, {**common, **stock, "cause_event_id": "e-1", "probability": 0.71,
                         "horizon_hours": 48.0, "expected_stockout_time": at + timedelta(1.5),
                         "reason_codes": [ReasonCode.FORECAST_RISK],
                         "evidence": {"forecast_mean_daily": 2.125, "forecast_p90_daily": 4.5}}),
        (ReplenishmentAlert, {**common, **stock, "cause_event_id": None, "recommended_qty": 24,
                              "order_up_to": 30.5, "horizon_hours": 48.0,
                              "reason_codes": ["BELOW_ORDER_UP_TO"],
                              "evidence": {"safety_stock": 6.5, "inventory_position": 4.0,
                                           "protection_days": 3.0, "safety_rule": "p90"}}),
        (StockoutAlert, {**common, **stock, "cause_event_id": "e-2", "probability": 1.0,
                         "horizon_hours": 0.0, "reason_codes": [ReasonCode.ATP_ZERO],
                         "evidence": {"previous_level": "low"}}),
        (ConflictMessage, {**common, "cause_event_id": "e-3", "rule": "physical-event-wins",
                           "loser_event_id": "e-3", "qty_requested": 2.0, "qty_granted": 1.0,
                           "reason_codes": [ReasonCode("RESERVATION_SHORT")],
                           "evidence": {"order_id": "o-9", "shortfall": 1.0}}),
        (AnomalyAlert, {**common, "cause_event_id": "e-4", "anomaly_type": "theft",
                        "score": 1.0, "units": 2.0,
                        "reason_codes": ["EXIT_GATE_WITHOUT_SALE"],
                        "evidence": {"units": 2.0, "gate_count": 1, "gate_first": "e-4"}}),
        (StockoutAlert, {"message_id": "x", "store_id": "S1", "sku": "SKU-7",
                         "model_version": "m5-1", "event_time": hour + timedelta(hours=1),
                         "probability": 0.8, "horizon_hours": 2.0,
                         "reason_codes": [ReasonCode.INTRADAY_SELL_OUT_RISK],
                         "evidence": {"threshold": 0.5, "hour": 17}, "warning": "intraday",
                         "episode": "open", "hour_start": hour}),
    ]  # fmt: skip


@functools.cache
def _floor_plan(cls: type) -> tuple[dict, dict]:
    fields = cls.model_fields
    defaults = {n: f.get_default(call_default_factory=False) for n, f in fields.items()}
    return defaults, {n: f.default_factory for n, f in fields.items() if f.default_factory}


def unchecked(cls: type, **fields) -> object:
    """The floor: no check, no conversion (see the module docstring)."""
    defaults, factories = _floor_plan(cls)
    values = defaults.copy()
    values.update(fields)
    for name, factory in factories.items():
        if name not in fields:
            values[name] = factory()
    out = cls.__new__(cls)
    object.__setattr__(out, "__dict__", values)
    object.__setattr__(out, "__pydantic_extra__", None)
    object.__setattr__(out, "__pydantic_fields_set__", set(fields))
    object.__setattr__(out, "__pydantic_private__", None)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="alerts built per run")
    parser.add_argument("--runs", type=int, default=10, help="runs each way")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    made = shapes()
    work = [made[i % len(made)] for i in range(args.messages)]
    ways = {
        "validated": lambda cls, kw: cls(**kw),
        "unchecked": lambda cls, kw: unchecked(cls, **kw),
    }
    for build in ways.values():  # warm every plan and cache
        [build(cls, kw) for cls, kw in made]
    spent: dict[str, list[float]] = {w: [] for w in ways}
    for r in range(args.runs):
        for way in list(ways) if r % 2 == 0 else list(ways)[::-1]:
            build = ways[way]
            t0 = time.thread_time()
            for cls, kw in work:
                build(cls, kw)
            spent[way].append(time.thread_time() - t0)
    figures: dict = {
        "messages": args.messages,
        "runs": args.runs,
        "at": datetime.now(UTC).isoformat(),
    }
    for way, runs in spent.items():
        figures[f"{way}_us_per_message_median"] = round(
            1e6 * statistics.median(runs) / args.messages, 2
        )
        figures[f"{way}_us_per_message_min"] = round(1e6 * min(runs) / args.messages, 2)
    show_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
