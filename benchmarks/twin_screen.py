"""Cheap screening of order-up-to rules on the deployed engine's own forecasts, before a full
``benchmarks/twin.py`` run.

What it does:

1. Replays the deployed engine (``twin.gateway_engine.GatewayPolicy``: the gateway's day close
   and decision policy) once per window, validation and test, at ``--every-days`` (the buffer
   parameter the benchmark chose on validation), and keeps the forecast table of every close.
2. :class:`TableReplay` replays the twin's store with the gateway's decision policy on those
   recorded tables: the same decisions the engine made (a test checks orders, lost units and
   inventory are identical), but much faster, since nothing is scored. Its buffer
   reads a year of daily demand kept as the gateway keeps it (:class:`GatewayHistory`: the real
   history before the replay, the twin's sales during it, an empty shelf's day lifted by the
   censored-demand rule). A candidate changes the level the order covers, the stock the
   decision sees, or the history.
3. Each candidate runs over a fine grid of ``every_days`` on both windows; its figure is the
   lost-unit reduction against min/max (3 safety days) interpolated at min/max's average
   inventory, per window. Candidates are chosen on the validation column; the test column is
   shown, not used.

What it leaves out: a candidate's effect on the forecast itself (through censored days and
River's correction, which learn from the twin's sales) is not replayed; ``--engine`` candidates
(River's correction) run the whole engine instead. The ``diagnostic:`` candidates are told the
future and are no policy: they show where the headroom is.

Usage: ``python benchmarks/twin_screen.py --json var/bench/twin_screen.json [--engine]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402
from edge_runtime.decide.forecast_policy import DailyForecasts  # noqa: E402
from edge_runtime.decide.service_level import buffer_exceeded_every  # noqa: E402
from edge_runtime.forecast.daily_sales import HISTORY_DAYS, UnitsHistory  # noqa: E402
from feature_store.censored_demand import close_levels, shelf_empty  # noqa: E402
from twin.gateway_engine import EngineDecisions, GatewayPolicy  # noqa: E402
from twin.policies import MinMaxPolicy  # noqa: E402
from twin.simulate import MINMAX_REFERENCE, interpolate_lost, markdown  # noqa: E402
from twin.store import DemandPanel, StoreConfig, StoreState, simulate, sku_parameters  # noqa: E402

FINE_GRID = (30.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 80.0, 100.0)
SPIKE = 5.0  # a large day: above this multiple of the SKU's 91-day mean (the benchmark's clip)


class GatewayHistory:
    """The days the gateway's marginal buffer reads, kept as the gateway keeps them
    (``edge_runtime.forecast.daily_sales``): NaN before a SKU's first sale within
    ``HISTORY_DAYS``, an empty shelf's day lifted to the in-stock level.

    >>> h = GatewayHistory(np.array([[0.0, 2.0, 4.0]]))
    >>> h.close(np.array([0.0]), np.array([True]))  # sold nothing, shelf empty: its level
    >>> h.matrix(3).round(2).tolist()
    [[2.0, 4.0, 2.14]]
    """

    def __init__(self, before: np.ndarray):
        units = np.array(before, dtype=np.float64)
        units[np.cumsum(units > 0, axis=1) == 0] = np.nan  # no series before its first sale
        self.level = np.full(units.shape[0], np.nan)
        no_empty = np.zeros(units.shape[0], dtype=bool)
        self.days = [close_levels(self.level, day, no_empty) for day in units.T]

    def close(self, sold: np.ndarray, empty: np.ndarray) -> None:
        """One replayed day: what sold, and which shelves closed empty."""
        day = np.where(np.isnan(self.days[-1]) & (sold <= 0), np.nan, sold.astype(np.float64))
        self.days.append(close_levels(self.level, day, empty))

    def matrix(self, days: int = UnitsHistory().days) -> np.ndarray:
        """The last ``days`` closed days, a row per SKU."""
        return np.array(self.days[-days:]).T


# A level rule: (replay, mean (SKUs x horizons), history) -> factor per SKU on the mean.
Level = Callable[["TableReplay", np.ndarray, np.ndarray], np.ndarray]
# A stock rule: (replay, state, mean) -> the on-hand stock the decision sees.
Stock = Callable[["TableReplay", StoreState, np.ndarray], np.ndarray]


class TableReplay:
    """The gateway's decision policy on recorded forecast tables (``GatewayPolicy.trace``),
    with the marginal buffer at ``every_days`` on :class:`GatewayHistory`. ``level``,
    ``stock`` and ``history`` (a subclass's ``close``) are what a candidate changes."""

    name = "table_replay"

    def __init__(
        self,
        trace: dict,
        every_days: float,
        level: Level | None = None,
        stock: Stock | None = None,
    ):
        self.trace, self.every_days, self.level, self.stock = trace, every_days, level, stock

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        self.panel, self.day = panel, start
        self.pack, capacity, _ = sku_parameters(panel, start, config)
        self.skus = [str(s) for s in panel.skus]
        self.decisions = EngineDecisions(panel.store_id, self.skus, config, self.pack, capacity)
        self.history = GatewayHistory(panel.units[:, max(0, start - HISTORY_DAYS) : start])

    def receive(self, arrived: np.ndarray) -> None:
        self.decisions.receive(arrived)

    def observe(self, state: StoreState) -> None:
        self.day = state.day
        self.history.close(state.sales[:, -1], shelf_empty(state.on_hand))

    def order(self, state: StoreState) -> np.ndarray:
        mean, p90 = (a.copy() for a in self.trace[state.day])
        history = self.history.matrix()
        if self.level is not None:
            factor = self.level(self, mean, history)[:, None]
            mean, p90 = mean * factor, np.maximum(p90 * factor, mean * factor)
        buffer = buffer_exceeded_every(history, self.every_days)
        table = DailyForecasts(self.skus, self.panel.dates[state.day], mean[:, None, :],
                               p90[:, None, :], buffer)  # fmt: skip
        on_hand = state.on_hand if self.stock is None else self.stock(self, state, mean)
        return self.decisions.orders(table, on_hand, state.on_order)


def record(panel, windows, config, bundle: str, every_days: float) -> dict[str, dict]:
    """The deployed engine's forecast table at every close, per window (panel order)."""
    out = {}
    for window, (a, b) in windows.items():
        policy = GatewayPolicy(bundle, buffer_every_days=every_days)
        run = simulate(panel, policy, config, a, b)
        out[window] = {"trace": policy.trace, "metrics": run.metrics(), "orders": run.orders}
    return out


def reductions(curves: dict, reference: dict) -> dict[str, float | None]:
    """Per window: 1 - lost units interpolated at min/max's inventory / min/max's lost units."""
    out = {}
    for window, points in curves.items():
        inventory, lost = reference[window]
        at = interpolate_lost(points, inventory)
        out[window] = None if at is None else 1.0 - at / lost
    return out


def _mean_of(h: np.ndarray, days: int) -> np.ndarray:
    """Each SKU's mean over the last ``days`` of ``h`` (0 without any)."""
    with np.errstate(all="ignore"):
        return np.nan_to_num(np.nanmean(h[:, -days:], axis=1))


def uniform(k: float) -> Level:
    return lambda replay, mean, h: np.full(mean.shape[0], k)


def clipped_share(clip: float, days: int) -> Level:
    """The level without the large orders: the share of the last ``days`` of demand left with
    each day clipped at ``clip`` x the SKU's 91-day mean."""

    def level(replay, mean, h):
        w = np.nan_to_num(h[:, -days:])
        total = w.sum(axis=1)
        kept = np.minimum(w, clip * _mean_of(h, 91)[:, None]).sum(axis=1)
        return np.where(total > 0, kept / np.maximum(total, 1e-9), 1.0)

    return level


def blend_trailing(weight: float, days: int = 91, clip: float | None = None) -> Level:
    """The model's level blended with the trailing mean (days clipped at ``clip`` x the
    91-day mean when given)."""

    def level(replay, mean, h):
        w = h[:, -days:]
        if clip is not None:
            w = np.minimum(w, clip * _mean_of(h, 91)[:, None])
        model = mean.mean(axis=1)
        new = (1.0 - weight) * model + weight * _mean_of(w, days)
        return np.where(model > 0, new / np.maximum(model, 1e-9), 1.0)

    return level


def capped_after_large_day(days: int) -> Level:
    """For 7 days after a large day, the level is at most the clipped trailing mean."""

    def level(replay, mean, h):
        usual = _mean_of(h, 91)[:, None]
        recent = (np.nan_to_num(h[:, -7:]) > SPIKE * usual).any(axis=1)
        clipped = _mean_of(np.minimum(h[:, -days:], SPIKE * usual), days)
        model = mean.mean(axis=1)
        cap = np.where(model > 0, np.minimum(clipped / np.maximum(model, 1e-9), 1.0), 1.0)
        return np.where(recent, cap, 1.0)

    return level


def clairvoyant_base(mask: np.ndarray | None = None) -> Level:
    """Diagnostic, told the future: the next 28 days' mean demand, days clipped at ``SPIKE``
    x the 91-day mean (the benchmark's ``clairvoyant_base_level``), for the SKUs in ``mask``."""

    def level(replay, mean, h):
        units, t = replay.panel.units, replay.day
        usual = units[:, max(0, t - 90) : t + 1].mean(axis=1)[:, None]
        ahead = np.minimum(units[:, t + 1 : t + 29], SPIKE * usual).mean(axis=1)
        model = mean.mean(axis=1)
        k = np.where(model > 0, ahead / np.maximum(model, 1e-9), 1.0)
        return k if mask is None else np.where(mask, k, 1.0)

    return level


def lost_sales_position(share: float) -> Stock:
    """On hand counted as at least ``share`` of the lead time's demand: with lost sales what
    the shelf lacks before the order lands is lost, not owed, so the order need not cover it."""

    def stock(replay, state, mean):
        lead = mean[:, : state.config.lead_time].sum(axis=1)
        return np.maximum(state.on_hand, share * lead)

    return stock


def rounded_past(fraction: float) -> Stock:
    """Packs: the need rounded up only once it is ``fraction`` of a pack past a whole one."""
    return lambda replay, state, mean: state.on_hand + fraction * replay.pack


class TrueDemandHistory(TableReplay):
    """Diagnostic, told the lost units: the buffer's history holds the true demand."""

    def observe(self, state: StoreState) -> None:
        super().observe(state)
        demand = self.panel.units[:, state.day]
        last = self.history.days
        last[-1] = np.where(np.isnan(last[-1]) & (demand <= 0), np.nan, demand)


def candidates(panel: DemandPanel, start: int) -> list[tuple[str, Callable]]:
    """The rules screened (name, (trace, every_days) -> policy); the first is the engine's."""
    usual = panel.units[:, start - 91 : start].mean(axis=1)[:, None]
    large = (panel.units[:, start - 364 : start] > SPIKE * usual).sum(axis=1)
    lumpy = np.zeros(panel.n_skus, dtype=bool)
    lumpy[np.argsort(-large, kind="stable")[:50]] = True  # most large days before validation
    rules: list[tuple[str, Level | None, Stock | None]] = [
        ("engine's rule (baseline)", None, None),
        *[(f"level x {k:g}", uniform(k), None) for k in (0.9, 0.95, 1.05, 1.1)],
        *[(f"level x share left clipped at {c:g}x, 364 days", clipped_share(c, 364), None)
          for c in (3.0, 5.0, 10.0)],
        ("level x share left clipped at 5x, 91 days", clipped_share(5.0, 91), None),
        *[(f"level blended with the 91-day mean, weight {w:g}", blend_trailing(w), None)
          for w in (0.25, 0.5, 1.0)],
        ("level blended with the clipped 91-day mean, weight 0.5",
         blend_trailing(0.5, clip=SPIKE), None),
        *[(f"level capped at the clipped {d}-day mean for 7 days after a large day",
           capped_after_large_day(d), None) for d in (28, 91)],
        *[(f"on hand counted as >= {s:g} x lead-time demand (lost sales)", None,
           lost_sales_position(s)) for s in (0.5, 1.0)],
        *[(f"packs rounded up past {f:g} of a pack", None, rounded_past(f)) for f in (0.25, 0.5)],
        ("diagnostic: clairvoyant base level, all SKUs", clairvoyant_base(), None),
        ("diagnostic: clairvoyant base level, 50 lumpiest SKUs", clairvoyant_base(lumpy), None),
        ("diagnostic: clairvoyant base level, 150 others", clairvoyant_base(~lumpy), None),
    ]  # fmt: skip
    out: list[tuple[str, Callable]] = [
        (name, lambda tr, n, lv=lv, st=st: TableReplay(tr, n, lv, st)) for name, lv, st in rules
    ]
    out.append(("diagnostic: buffer history = true demand", lambda tr, n: TrueDemandHistory(tr, n)))
    return out


def engine_candidates(bundle: str) -> list[tuple[str, Callable]]:
    """River's correction, varied: these change the forecast, so the whole engine runs."""
    from edge_runtime.forecast.online import LevelCorrection

    class ClippedLevel(LevelCorrection):
        """Learns each day's actual clipped at ``clip`` typical days (no large orders)."""

        def __init__(self, clip: float, **kw):
            super().__init__(**kw)
            self.clip = clip

        def learn_one(self, sku, central, actual):
            super().learn_one(sku, central, min(actual, self.clip))

    rivers = [
        ("engine (baseline)", None),
        ("River: actual clipped at 5 typical days", lambda: ClippedLevel(5.0)),
        ("River: actual clipped at 3 typical days", lambda: ClippedLevel(3.0)),
        ("River: fading 0.02", lambda: LevelCorrection(fading=0.02)),
        ("River: fading 0.1", lambda: LevelCorrection(fading=0.1)),
        *[(f"River: shrink {k:g} typical days", lambda k=k: LevelCorrection(shrink=k))
          for k in (1.0, 2.0, 5.0)],
        ("River: bounds 0.8-1.25", lambda: LevelCorrection(bounds=(0.8, 1.25))),
        ("River: off (factor held at 1)", lambda: LevelCorrection(bounds=(1.0, 1.0))),
    ]  # fmt: skip
    return [
        (f"{name} [engine]",
         lambda tr, n, f=f: GatewayPolicy(bundle, buffer_every_days=n, correction=f))
        for name, f in rivers
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the screening table here")
    parser.add_argument("--every-days", type=float, default=56.25,
                        help="the engine replay's buffer parameter (the benchmark's choice)")  # fmt: skip
    parser.add_argument("--trees", type=int, default=200, help="as benchmarks/twin.py")
    parser.add_argument("--engine", action="store_true", help="also River's variants (slow)")
    args = parser.parse_args()
    from benchmarks.twin import bundle_for
    from training.datasets import online_retail

    t0 = time.perf_counter()
    frame = online_retail(top_skus=200)
    panel = DemandPanel.from_frame(frame)
    test0 = panel.n_days - 56
    val0 = test0 - 56
    windows = {"validation": (val0, test0), "test": (test0, panel.n_days)}
    bundle, _ = bundle_for(frame, panel.dates[val0 - 1], ROOT / "var" / "bench" / "twin_bundle_200",
                           args.trees)  # fmt: skip
    config = StoreConfig()
    reference = {}
    for window, (a, b) in windows.items():
        m = simulate(panel, MinMaxPolicy(MINMAX_REFERENCE), config, a, b).metrics()
        reference[window] = (m["avg_inventory_units"], m["lost_units"])
    traces = record(panel, windows, config, str(bundle), args.every_days)
    todo = candidates(panel, val0) + (engine_candidates(str(bundle)) if args.engine else [])
    rows = []
    for name, make in todo:
        curves = {w: [] for w in windows}
        for n in FINE_GRID:
            for window, (a, b) in windows.items():
                m = simulate(panel, make(traces[window]["trace"], n), config, a, b).metrics()
                curves[window].append((n, m["avg_inventory_units"], m["lost_units"]))
        rows.append({"candidate": name, **reductions(curves, reference), "curves": curves})
        print(f"{name}: {rows[-1]['validation']} / {rows[-1]['test']}", flush=True)
    print(markdown(rows, ("candidate", "validation", "test")))
    rules = [r for r in rows if not r["candidate"].startswith("diagnostic") and r["validation"]]
    best = max(rules, key=lambda r: r["validation"])
    result = {
        "benchmark": "twin_screen",
        "machine": machine(),
        "baseline_reduction_validation": rows[0]["validation"],
        "baseline_reduction_test": rows[0]["test"],
        "best_on_validation": best["candidate"],
        "best_on_validation_reduction_validation": best["validation"],
        "best_on_validation_reduction_test": best["test"],
        "windows": {w: [str(panel.dates[a]), str(panel.dates[b - 1])] for w, (a, b) in windows.items()},
        "engine_every_days": args.every_days,
        "engine_replay": {w: traces[w]["metrics"] for w in windows},
        "minmax_reference": reference,
        "grid": FINE_GRID,
        "candidates": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
