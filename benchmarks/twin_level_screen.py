"""Screen the day close's trailing-level weight on the twin's validation weeks, whole engine.

For each ``--weights`` value the deployed engine (``twin.gateway_engine.GatewayPolicy``: the
gateway's day close with that ``trailing_weight``, River, the decision policy) replays the
validation weeks at every buffer parameter of ``benchmarks.twin_screen.FINE_GRID``; the figure is
the lost-unit reduction against min/max (3 safety days) interpolated at min/max's average
inventory, as the twin benchmark reads it. The test weeks are not run. ``--no-season`` holds the
store's season factor at 1 (an ablation).

Usage: ``python benchmarks/twin_level_screen.py --weights 0 0.5 --json out.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402
from benchmarks.twin_screen import FINE_GRID, reductions  # noqa: E402
from twin.gateway_engine import GatewayPolicy  # noqa: E402
from twin.policies import MinMaxPolicy  # noqa: E402
from twin.simulate import MINMAX_REFERENCE  # noqa: E402
from twin.store import DemandPanel, StoreConfig, simulate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the figures here")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--no-season", action="store_true", help="season factor held at 1")
    parser.add_argument("--trees", type=int, default=200, help="as benchmarks/twin.py")
    args = parser.parse_args()
    import edge_runtime.decide.day_close as day_close
    import edge_runtime.forecast.trailing_level as trailing
    from benchmarks.twin import bundle_for
    from training.datasets import online_retail

    t0 = time.perf_counter()
    if args.no_season:
        trailing.store_season = lambda units, lens: 1.0
    frame = online_retail(top_skus=200)
    panel = DemandPanel.from_frame(frame)
    val0 = panel.n_days - 112
    window = (val0, val0 + 56)
    bundle, _ = bundle_for(frame, panel.dates[val0 - 1], ROOT / "var" / "bench" / "twin_bundle_200",
                           args.trees)  # fmt: skip
    config = StoreConfig()
    m = simulate(panel, MinMaxPolicy(MINMAX_REFERENCE), config, *window).metrics()
    reference = {"validation": (m["avg_inventory_units"], m["lost_units"])}
    made = day_close.DayCloseModel.__init__
    rows = []
    for weight in args.weights:

        def init(self, *a, _w=weight, **kw):
            made(self, *a, **{"trailing_weight": _w, **kw})

        day_close.DayCloseModel.__init__ = init
        curve = []
        for n in FINE_GRID:
            policy = GatewayPolicy(str(bundle), buffer_every_days=n)
            r = simulate(panel, policy, config, *window).metrics()
            curve.append((n, r["avg_inventory_units"], r["lost_units"]))
        got = reductions({"validation": curve}, reference)["validation"]
        rows.append({"trailing_weight": weight, "validation": got, "curve": curve})
        print(f"trailing_weight {weight:g}: {got}", flush=True)
    day_close.DayCloseModel.__init__ = made
    result = {
        "benchmark": "twin_level_screen",
        "machine": machine(),
        "season": not args.no_season,
        "window": [str(panel.dates[window[0]]), str(panel.dates[window[1] - 1])],
        "minmax_reference": reference,
        "grid": FINE_GRID,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
