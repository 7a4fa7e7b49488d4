"""Screening of a store-wide weekday correction of the deployed engine's demand forecast.

Runs the whole engine (``twin.gateway_engine.GatewayPolicy``) with
``edge_runtime.forecast.weekday_level.WeekdayLevel`` candidates over ``twin_screen``'s fine grid
of ``every_days`` and prints the lost-unit reduction against min/max at min/max's inventory.
A candidate named ``NAME@D`` first learns its factors over the ``D`` days before the window
(``NAME@Df``: then holds them).

Usage: ``python benchmarks/twin_weekday_screen.py validation base,units_shape@56``.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.twin_screen import FINE_GRID, reductions  # noqa: E402
from edge_runtime.forecast.weekday_level import WeekdayLevel  # noqa: E402
from twin.gateway_engine import GatewayPolicy  # noqa: E402
from twin.policies import MinMaxPolicy  # noqa: E402
from twin.simulate import MINMAX_REFERENCE  # noqa: E402
from twin.store import DemandPanel, StoreConfig, simulate  # noqa: E402

CANDIDATES = {
    "base": None,
    "plain": lambda: WeekdayLevel(),
    "noclip": lambda: WeekdayLevel(clip=None),
    "shape": lambda: WeekdayLevel(shape_only=True),
    "units": lambda: WeekdayLevel(in_units=True),
    "units_noclip": lambda: WeekdayLevel(in_units=True, clip=None),
    "units_shape": lambda: WeekdayLevel(in_units=True, shape_only=True),
    "units_shape_noclip": lambda: WeekdayLevel(in_units=True, shape_only=True, clip=None),
    "cens_units_noclip": lambda: WeekdayLevel(in_units=True, clip=None, with_censored=True),
    "cens_units_shape": lambda: WeekdayLevel(in_units=True, shape_only=True, with_censored=True),
    "cens_units_shape_noclip": lambda: WeekdayLevel(
        in_units=True, shape_only=True, clip=None, with_censored=True
    ),
}
_PRIMED: dict = {}


class WeekdayPolicy(GatewayPolicy):
    """The engine with a weekday correction, optionally learnt before the window first."""

    make = None
    prime: tuple[int, bool] | None = None  # (days before the window, then held)

    def prepare(self, panel, start, config) -> None:
        super().prepare(panel, start, config)
        if self.make is None:
            return
        if self.prime is None:
            self.model.weekday_level = self.make()
            return
        days, held = self.prime
        key = (start, id(self.make), days)
        if key not in _PRIMED:
            pre = WeekdayPolicy(self.bundle_path, buffer_every_days=self.buffer_every_days)
            pre.make = self.make
            simulate(panel, pre, config, start - days, start)
            _PRIMED[key] = pre.model.weekday_level
        level = copy.deepcopy(_PRIMED[key])
        if held:
            level.learn_day = lambda *a, **k: None
        self.model.weekday_level = level


def main() -> int:
    from benchmarks.twin import bundle_for
    from training.datasets import online_retail

    wanted, names = sys.argv[1].split(","), sys.argv[2].split(",")
    frame = online_retail(top_skus=200)
    panel = DemandPanel.from_frame(frame)
    test0 = panel.n_days - 56
    val0 = test0 - 56
    windows = {"validation": (val0, test0), "test": (test0, panel.n_days)}
    windows = {w: windows[w] for w in wanted}
    folder = ROOT / "var" / "bench" / "twin_bundle_200"
    bundle, _ = bundle_for(frame, panel.dates[val0 - 1], folder, 200)
    config = StoreConfig()
    reference = {}
    for window, (a, b) in windows.items():
        m = simulate(panel, MinMaxPolicy(MINMAX_REFERENCE), config, a, b).metrics()
        reference[window] = (m["avg_inventory_units"], m["lost_units"])
    for name in names:
        t0 = time.time()
        base, _, prime = name.partition("@")
        curves = {w: [] for w in windows}
        for n in FINE_GRID:
            for window, (a, b) in windows.items():
                policy = WeekdayPolicy(str(bundle), buffer_every_days=n)
                policy.make = CANDIDATES[base]
                policy.prime = (int(prime.rstrip("f")), prime.endswith("f")) if prime else None
                m = simulate(panel, policy, config, a, b).metrics()
                curves[window].append((n, m["avg_inventory_units"], m["lost_units"]))
        red = reductions(curves, reference)
        print(name, red, f"{time.time() - t0:.0f}s", flush=True)
        out = ROOT / "var" / f"weekday_{name}_{'_'.join(windows)}.json"
        out.write_text(json.dumps({"reductions": red, "curves": curves}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
