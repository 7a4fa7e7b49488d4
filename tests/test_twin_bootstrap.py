"""The twin benchmark's bootstrap over SKUs (``benchmarks.twin.bootstrap_headline``), on a tiny
hand-made set of test-week runs: identical SKUs leave nothing to resample (the interval is the
point), one SKU carrying all of the difference makes it wide."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.twin import bootstrap_headline, headline
from twin.simulate import Comparison
from twin.store import DemandPanel, StoreConfig, TwinRun

DAYS = 4
N = 20


def _run(panel: DemandPanel, lost: list[float], on_hand: list[float]) -> TwinRun:
    """A test-week run whose SKUs lose ``lost`` units in all and hold ``on_hand`` every day."""
    lost_a = np.repeat(np.asarray(lost)[:, None] / DAYS, DAYS, axis=1)
    hand = np.repeat(np.asarray(on_hand, dtype=np.float64)[:, None], DAYS, axis=1)
    sales = np.ones_like(lost_a)
    return TwinRun("p", panel, 0, DAYS, sales + lost_a, sales, lost_a, hand, np.zeros_like(hand))


def _comparison(curves: dict[str, dict[float, tuple[list[float], list[float]]]]) -> Comparison:
    """Families -> parameter -> (each SKU's lost units, each SKU's on hand)."""
    panel = DemandPanel.from_arrays(
        "s", [f"k{i}" for i in range(N)], np.datetime64("2024-01-01") + np.arange(DAYS),
        np.ones((N, DAYS)),
    )  # fmt: skip
    cmp = Comparison(StoreConfig(), {"test": ("2024-01-01", "2024-01-04")})
    for family, grid in curves.items():
        cmp.runs[family] = {p: {"test": _run(panel, *v)} for p, v in grid.items()}
        cmp.chosen[family] = min(grid)
    return cmp


def _same(v: float) -> list[float]:
    return [v] * N


def _one_sku(first: float, rest: float) -> list[float]:
    return [first] + [rest] * (N - 1)


def test_identical_skus_collapse_the_interval_to_the_point():
    # min/max: 1 unit lost at 2 on hand per SKU; shelfcast's curve passes 0.5 there, the others 1.
    minmax = {3.0: (_same(1.0), _same(2.0))}
    shelf = {10.0: (_same(1.0), _same(1.0)), 50.0: (_same(0.0), _same(3.0))}
    other = {10.0: (_same(1.5), _same(1.0)), 50.0: (_same(0.5), _same(3.0))}
    cmp = _comparison(
        {"minmax": minmax, "shelfcast": shelf, "shelfcast_no_river": other, "statsforecast": other}
    )
    boot = bootstrap_headline(cmp, draws=500, seed=1)
    point = headline(cmp, cmp.summary())["lost_sales_reduction_vs_minmax"]
    assert point == pytest.approx(0.5)
    for k in ("point", "median", "q05", "q95"):
        assert boot[k] == pytest.approx(point, abs=1e-12)
    assert boot["share_at_or_above_goal"] == 1.0 and boot["not_measurable"] == 0
    assert (boot["draws"], boot["seed"]) == (500, 1)
    for name in ("shelfcast_minus_shelfcast_no_river", "shelfcast_minus_statsforecast"):
        paired = boot["paired"][name]
        assert paired["q05"] == pytest.approx(0.5) and paired["q95"] == pytest.approx(0.5)


def test_one_sku_carrying_all_of_the_difference_makes_the_interval_wide():
    # SKU 0 loses 10 units under min/max and none under shelfcast; on the other 19 shelfcast's
    # curve meets min/max's lost units at its inventory. Without River SKU 0 is like min/max.
    minmax = {3.0: (_one_sku(10.0, 1.0), _same(2.0))}
    shelf = {10.0: (_one_sku(0.0, 1.5), _same(1.0)), 50.0: (_one_sku(0.0, 0.5), _same(3.0))}
    no_river = {10.0: (_one_sku(10.5, 1.5), _same(1.0)), 50.0: (_one_sku(9.5, 0.5), _same(3.0))}
    cmp = _comparison({"minmax": minmax, "shelfcast": shelf, "shelfcast_no_river": no_river})
    boot = bootstrap_headline(cmp, draws=2000, seed=7)
    point = headline(cmp, cmp.summary())["lost_sales_reduction_vs_minmax"]
    assert point == pytest.approx(10 / 29)
    assert boot["point"] == pytest.approx(point, abs=1e-12)
    # k draws of SKU 0 give 10k / (20 + 9k): 0 when it is not drawn (36 % of resamples).
    assert boot["q05"] == pytest.approx(0.0, abs=1e-12)
    assert boot["q95"] > 0.5
    assert boot["median"] == pytest.approx(10 / 29)
    assert 0.55 < boot["share_at_or_above_goal"] < 0.75
    paired = boot["paired"]["shelfcast_minus_shelfcast_no_river"]
    assert paired["q05"] == pytest.approx(0.0, abs=1e-12) and paired["q95"] > 0.5
    assert "shelfcast_minus_statsforecast" not in boot["paired"]  # a family not run
    # The same seed draws the same resamples.
    assert bootstrap_headline(cmp, draws=2000, seed=7) == boot
