"""Screening of treatments of empty-shelf days on the deployed engine, validation weeks first.

Each candidate changes what the gateway's day close does with a day whose shelf closed empty
(the SKU's on hand 0 at the close); everything else is the engine
(``twin.gateway_engine.GatewayPolicy``). Each runs over ``benchmarks/twin_screen.FINE_GRID`` of
the buffer parameter; its figure is the lost-unit reduction against min/max (3 safety days)
interpolated at min/max's average inventory, as ``twin_screen`` reports it.

- ``baseline``: the engine's rule: ``max(sold, level)`` as the day's value, no label.
- ``uncensored``: the day learnt as what it sold (the benchmark's ablation).
- ``intraday``: the one rule at the hour grain (``censored_day_demand``): the sales while in
  stock plus the rest of the day's share of the store's intraday profile, at the day's rate
  shrunk towards the level; the share elapsed is read at the real order line that emptied the
  shelf (Online Retail's invoice minutes, as a gateway reads its last sale's time), the profile
  from the days before the window.
- ``lift K`` / ``plus K``: the value ``max(sold, K x level)`` / ``sold + K x level``.
- ``lower_bound``: River also learns an empty-shelf day whose estimate is above the forecast.
- ``oracle`` / ``oracle_label`` (diagnostics, told the lost demand): the day's true demand as
  its value, left out of / learnt as a label.

Usage: ``python benchmarks/twin_censored_screen.py --json OUT [--windows validation,test]
[--candidates baseline,oracle,...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.twin_screen import FINE_GRID, reductions  # noqa: E402
from feature_store.censored_demand import censored_day_demand, shelf_empty  # noqa: E402
from twin.gateway_engine import GatewayPolicy  # noqa: E402
from twin.policies import MinMaxPolicy  # noqa: E402
from twin.simulate import MINMAX_REFERENCE  # noqa: E402
from twin.store import DemandPanel, StoreConfig, simulate  # noqa: E402


class ValuedPolicy(GatewayPolicy):
    """The engine with an empty-shelf day's sales replaced by ``value`` before its close (the
    day close still lifts it to the level and leaves it out of the labels)."""

    def value(self, state, empty: np.ndarray, sold: np.ndarray) -> np.ndarray:
        return sold

    def levels(self) -> np.ndarray:
        """Each panel SKU's in-stock level before today's close (NaN: none yet)."""
        index, level = self.sales.panel.index, self.sales._levels(len(self.sales.panel))
        return np.array([level[index[s]] if s in index else np.nan for s in self._skus])

    def observe(self, state) -> None:
        empty = np.asarray(shelf_empty(state.on_hand))
        sold = state.sales[:, -1].copy()
        state.sales[:, -1] = np.where(empty, self.value(state, empty, sold), sold)
        try:
            super().observe(state)
        finally:
            state.sales[:, -1] = sold


class Lifted(ValuedPolicy):
    k, plus = 1.5, False

    def value(self, state, empty, sold):
        usual = np.nan_to_num(self.levels())
        return sold + self.k * usual if self.plus else np.maximum(sold, self.k * usual)


class Oracle(ValuedPolicy):
    def value(self, state, empty, sold):
        return self._panel.units[:, state.day]


class OracleLabel(Oracle):
    def observe(self, state) -> None:
        on_hand, sold = state.on_hand, state.sales[:, -1].copy()
        state.sales[:, -1] = self._panel.units[:, state.day]  # what sold where in stock
        state.on_hand = np.where(np.asarray(shelf_empty(on_hand)), 1.0, on_hand)  # learnt
        try:
            GatewayPolicy.observe(self, state)
        finally:
            state.sales[:, -1], state.on_hand = sold, on_hand


class Intraday(ValuedPolicy):
    lines: dict | None = None  # intraday_lines
    cdf: np.ndarray | None = None  # profile_cdf

    def value(self, state, empty, sold):
        out, usual = sold.copy(), self.levels()
        for i in np.flatnonzero(empty & (sold > 0) & ~np.isnan(usual)).tolist():
            minutes, qty = self.lines[(i, state.day)]
            k = min(int(np.searchsorted(np.cumsum(qty), sold[i] - 1e-9)), len(minutes) - 1)
            share = float(self.cdf[minutes[k]])  # of the day's units, by the emptying line
            out[i] = float(censored_day_demand(np.array(sold[i]), sold[i], share, usual[i]))
        return out


class LowerBound(GatewayPolicy):
    def prepare(self, panel, start, config) -> None:
        super().prepare(panel, start, config)
        model, learn = self.model, self.model.learn

        def learn_bound(closed):
            central = model.central
            for day, units in closed if central is not None else ():
                h = int((day - central.first_close).astype(int))
                if not 1 <= h <= central.mean.shape[2]:
                    continue
                for i, sku in enumerate(central.skus):
                    forecast = central.mean[i, 0, h - 1]
                    if sku in units.censored and units.get(sku, 0.0) > forecast:
                        s = model.central_scale[i]
                        model.correction.learn_one(sku, forecast / s, units[sku] / s)
            return learn(closed)

        model.learn = learn_bound


def intraday_lines(panel: DemandPanel) -> dict:
    """(panel row, day index) -> (minutes of the day, units) of its netted order lines, in time
    order: the store's real intraday sales (the same lines the daily panel sums)."""
    import pandas as pd

    from training.datasets import ONLINE_RETAIL, net_cancellations, require

    cols = ["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Country", "Customer ID"]
    raw = pd.read_parquet(require(ONLINE_RETAIL), columns=cols)
    keep = raw["Price"].gt(0) & raw["StockCode"].astype(str).str.match(r"^\d")
    df = net_cancellations(raw.loc[keep & raw["Country"].eq("United Kingdom")])
    df = df[df["Quantity"] > 0]
    rows = {s: i for i, s in enumerate(panel.skus)}
    df = df.assign(row=df["StockCode"].astype(str).str.upper().map(rows)).dropna(subset=["row"])
    day = df["InvoiceDate"].dt.normalize().to_numpy().astype("datetime64[D]") - panel.dates[0]
    minute = df["InvoiceDate"].dt.hour * 60 + df["InvoiceDate"].dt.minute
    df = df.assign(day=day.astype(int), minute=minute).sort_values(["row", "day", "minute"])
    return {
        (int(r), int(d)): (g["minute"].to_numpy(), g["Quantity"].to_numpy(dtype=float))
        for (r, d), g in df.groupby(["row", "day"])
    }


def profile_cdf(lines: dict, before: int) -> np.ndarray:
    """The store's cumulative share of a day's units by minute, over days before ``before``."""
    w = np.zeros(1440)
    for (_, d), (minutes, qty) in lines.items():
        if d < before:
            np.add.at(w, minutes, qty)
    return np.cumsum(w) / w.sum()


def makers(bundle: str, lines: dict, cdf: np.ndarray) -> dict:
    def make(cls, **attrs):
        def build(n):
            policy = cls(bundle, buffer_every_days=n)
            for k, v in attrs.items():
                setattr(policy, k, v)
            return policy

        return build

    return {
        "baseline": make(GatewayPolicy),
        "uncensored": make(GatewayPolicy, censored=False),
        "intraday": make(Intraday, lines=lines, cdf=cdf),
        "lift 1.5": make(Lifted, k=1.5),
        "lift 2": make(Lifted, k=2.0),
        "plus 0.5": make(Lifted, k=0.5, plus=True),
        "plus 1": make(Lifted, k=1.0, plus=True),
        "lower_bound": make(LowerBound),
        "oracle": make(Oracle),
        "oracle_label": make(OracleLabel),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the screening table here")
    parser.add_argument("--windows", default="validation", help="validation and/or test")
    parser.add_argument("--candidates", default="all", help="comma-separated names, or all")
    args = parser.parse_args()
    from benchmarks.twin import bundle_for
    from training.datasets import online_retail

    frame = online_retail(top_skus=200)
    panel = DemandPanel.from_frame(frame)
    test0 = panel.n_days - 56
    val0 = test0 - 56
    every = {"validation": (val0, test0), "test": (test0, panel.n_days)}
    windows = {w: every[w] for w in args.windows.split(",")}
    bundle, _ = bundle_for(frame, panel.dates[val0 - 1], ROOT / "var" / "bench" / "twin_bundle_200", 200)  # fmt: skip
    lines = intraday_lines(panel)
    todo = makers(str(bundle), lines, profile_cdf(lines, val0))
    names = list(todo) if args.candidates == "all" else args.candidates.split(",")
    config, reference, rows = StoreConfig(), {}, []
    for w, (a, b) in windows.items():
        m = simulate(panel, MinMaxPolicy(MINMAX_REFERENCE), config, a, b).metrics()
        reference[w] = (m["avg_inventory_units"], m["lost_units"])
    for name in names:
        t0, curves = time.perf_counter(), {w: [] for w in windows}
        for n in FINE_GRID:
            for w, (a, b) in windows.items():
                m = simulate(panel, todo[name](n), config, a, b).metrics()
                curves[w].append((n, m["avg_inventory_units"], m["lost_units"]))
        rows.append({"candidate": name, **reductions(curves, reference), "curves": curves})
        print(name, {w: round(rows[-1][w] * 100, 2) for w in windows},
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"minmax_reference": reference, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
