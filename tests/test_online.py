"""River online learning: the gateway's forecast correction adapts; the learners it was measured
against (benchmarks/online_learners.py) behave as their comparison assumes."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.online_learners import EwmCorrection, OnlineAnomaly, OnlineCorrection
from edge_runtime.forecast.online import LevelCorrection


@pytest.mark.parametrize("make", [LevelCorrection, OnlineCorrection])
def test_correction_removes_a_persistent_local_bias(make):
    rng = np.random.default_rng(0)
    c = make()
    err_raw, err_cor = [], []
    for day in range(200):
        for s in range(20):
            central = 5.0 + s % 4
            actual = max(central * 1.4 + rng.normal(0, 1), 0)  # the store sells 40% more
            if day >= 100:
                err_raw.append(actual - central)
                err_cor.append(actual - c.predict_one(f"s{s}", central))
            c.learn_one(f"s{s}", central, actual)
    assert np.sqrt(np.mean(np.square(err_cor))) < 0.6 * np.sqrt(np.mean(np.square(err_raw)))


def test_correction_does_little_harm_on_pure_noise():
    rng = np.random.default_rng(1)
    c, e = OnlineCorrection(), EwmCorrection(fading=0.1)
    raw, cor = [], []
    for day in range(150):
        for s in range(20):
            actual = rng.poisson(4.0)
            if day >= 50:
                raw.append((actual - 4.0) ** 2)
                cor.append((actual - c.predict_one(f"s{s}", 4.0)) ** 2)
            c.learn_one(f"s{s}", 4.0, actual)
            e.learn_one(f"s{s}", 4.0, actual)
    assert np.mean(cor) < 1.05 * np.mean(raw)
    assert e.predict_one("s0", 4.0) >= 0


@pytest.mark.parametrize("make", [LevelCorrection, OnlineCorrection])
def test_corrected_forecast_is_never_negative(make):
    c = make(warmup=1)
    for _ in range(50):
        c.learn_one("a", 5.0, 0.0)
    assert c.predict_one("a", 0.1) >= 0.0


def test_half_space_trees_rank_a_theft_like_burst_above_normal_traffic():
    rng = np.random.default_rng(2)
    det = OnlineAnomaly(seed=3, window_size=100)
    for _ in range(1500):
        sold = rng.poisson(3)
        det.learn_one({"sold": sold, "removed": sold, "gate": sold, "unmatched": 0})
    normal = [
        det.score_one({"sold": s, "removed": s, "gate": s, "unmatched": 0}) for s in (2, 3, 4)
    ]
    odd = det.score_one({"sold": 0, "removed": 9, "gate": 9, "unmatched": 9})
    assert odd > max(normal)


def test_wholesale_spikes_do_not_make_the_correction_diverge():
    rng = np.random.default_rng(4)
    c = OnlineCorrection()
    for _ in range(300):
        for s in range(30):
            spike = 200.0 if rng.random() < 0.05 else 0.0  # one customer orders 200 typical days
            c.learn_one(f"s{s}", 1.0, rng.poisson(1.0) + spike)
    assert all(0.0 <= c.predict_one(f"s{s}", 1.0) <= 1.0 + c.clip for s in range(30))


def test_level_correction_keeps_the_mean_of_skewed_demand_where_residual_learning_sinks():
    """Mostly zero days and a 20-unit order one day in twenty: the mean is 1, as forecast. The
    level correction stays near 1 on average over SKUs; the residual learner (clipped, Huber)
    learns the quiet day and pulls the forecast to a tenth of it."""
    rng = np.random.default_rng(5)
    level, residual = LevelCorrection(), OnlineCorrection()
    for _ in range(300):
        for s in range(30):
            actual = 20.0 if rng.random() < 0.05 else 0.0
            level.learn_one(f"s{s}", 1.0, actual)
            residual.learn_one(f"s{s}", 1.0, actual)
    skus = [f"s{s}" for s in range(30)]
    assert 0.8 < np.mean([level.predict_one(s, 1.0) for s in skus]) < 1.25
    assert np.mean([residual.predict_one(s, 1.0) for s in skus]) < 0.5
    lo, hi = level.bounds
    assert all(lo <= level.factor_one(s) <= hi for s in skus)  # one order moves it, boundedly


def test_level_correction_refuses_settings_that_cannot_work():
    with pytest.raises(ValueError, match="bounds"):
        LevelCorrection(bounds=(1.2, 2.0))
    with pytest.raises(ValueError, match="fading"):
        LevelCorrection(fading=0.0)


def test_undo_puts_river_back_bit_for_bit_and_it_learns_on_the_same():
    """An undo point then a close's learning then undo: every SKU's factor is the one of a copy
    that never learnt that close, and stays equal to it through the days that follow (a SKU
    first seen after the undo point is forgotten whole)."""
    import copy

    rng = np.random.default_rng(7)
    c = LevelCorrection()
    skus = [f"S{i}" for i in range(50)]
    for _ in range(20):
        for s in skus[:40]:
            c.learn_one(s, central=float(rng.gamma(2.0)), actual=float(rng.poisson(2.0)))
    kept = copy.deepcopy(c)
    c.undo_point()
    for s in skus:  # ten of them new
        c.learn_one(s, central=float(rng.gamma(2.0)), actual=float(rng.poisson(5.0)))
    c.undo()
    assert [c.factor_one(s) for s in skus] == [kept.factor_one(s) for s in skus]
    for _ in range(10):
        for s in skus:
            central, actual = float(rng.gamma(2.0)), float(rng.poisson(2.0))
            c.learn_one(s, central, actual)
            kept.learn_one(s, central, actual)
    assert [c.factor_one(s) for s in skus] == [kept.factor_one(s) for s in skus]
    c.undo()  # no undo point open: nothing
    assert [c.factor_one(s) for s in skus] == [kept.factor_one(s) for s in skus]


def test_a_pickled_correction_predicts_without_river_and_learns_on_bit_for_bit():
    """A snapshot keeps River's means as numbers: loading it and predicting imports no River
    (a restart's start), and the SKUs then learn on exactly as the original does."""
    import pickle
    import subprocess
    import sys

    rng = np.random.default_rng(3)
    c = LevelCorrection(warmup=2)
    skus = [f"S{i}" for i in range(30)]
    for _ in range(12):
        for s in skus:
            c.learn_one(s, central=float(rng.gamma(2.0)), actual=float(rng.poisson(2.0)))
    blob = pickle.dumps(c)
    days = [[(float(rng.gamma(2.0)), float(rng.poisson(3.0))) for _ in skus] for _ in range(5)]
    probe = (
        "import pickle, sys\n"
        f"c = pickle.loads({blob!r})\n"
        f"factors = [c.factor_one(s) for s in {skus!r}]\n"
        "river_at_predict = 'river' in sys.modules\n"
        f"for day in {days!r}:\n"
        f"    for s, (central, actual) in zip({skus!r}, day):\n"
        "        c.learn_one(s, central, actual)\n"
        f"print(repr((river_at_predict, factors, [c.factor_one(s) for s in {skus!r}])))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    river_at_predict, factors, after = eval(out)
    assert not river_at_predict
    assert factors == [c.factor_one(s) for s in skus]
    for day in days:
        for s, (central, actual) in zip(skus, day, strict=True):
            c.learn_one(s, central, actual)
    assert after == [c.factor_one(s) for s in skus]


def test_undo_after_a_restore_puts_back_the_restored_means():
    import pickle

    c = LevelCorrection(warmup=1)
    c.learn_one("A", central=1.0, actual=3.0)
    restored = pickle.loads(pickle.dumps(c))
    restored.undo_point()
    restored.learn_one("A", central=1.0, actual=0.0)
    restored.learn_one("B", central=1.0, actual=9.0)
    restored.undo()
    assert (restored.predict_one("A", 1.0), restored.predict_one("B", 1.0)) == (2.0, 1.0)


def test_a_close_teaches_every_sku_in_one_call_as_river_would():
    """``learn_many`` (a close's day of every SKU, the censored ones skipped) leaves every
    SKU's factor where River's own means, fed the same days, put it; an undo puts it back."""
    import copy

    from river import stats

    rng = np.random.default_rng(11)
    c = LevelCorrection(warmup=3)
    skus = [f"S{i}" for i in range(300)]
    river: dict[str, tuple] = {}
    seen: dict[str, int] = {}
    for day in range(30):
        present = skus[: 100 + 5 * day]
        central = (rng.gamma(1.5, size=len(present)) * (rng.random(len(present)) > 0.1)).tolist()
        actual = (
            rng.poisson(2.0, len(present)) * rng.choice([0.0, 1.0, 9.0], len(present))
        ).tolist()
        skip = {s for s in present if rng.random() < 0.2}
        if day == 29:
            kept = copy.deepcopy(c)
            c.undo_point()
        assert c.learn_many(present, central, actual, skip) == len(present) - len(skip)
        if day == 29:
            break
        for sku, x_c, x_a in zip(present, central, actual, strict=True):
            if sku not in skip:
                pair = river.setdefault(sku, (stats.EWMean(c.fading), stats.EWMean(c.fading)))
                pair[0].update(max(x_a, 0.0))
                pair[1].update(max(x_c, 0.0))
                seen[sku] = seen.get(sku, 0) + 1
        want = [_river_factor(*river[s], seen[s], c) if s in river else 1.0 for s in skus]
        assert [c.factor_one(s) for s in skus] == want
    c.undo()
    assert [c.factor_one(s) for s in skus] == [kept.factor_one(s) for s in skus]


def _river_factor(sold, forecast, seen: int, c: LevelCorrection) -> float:
    """``LevelCorrection``'s factor computed over River means held apart."""
    if seen < c.warmup:
        return 1.0
    k, lo, hi = c.shrink, *c.bounds
    if forecast.get() + k <= 0:
        return 1.0
    return min(max((sold.get() + k) / (forecast.get() + k), lo), hi)


@pytest.mark.parametrize("shrink", [0.5, 0.0])
def test_predict_many_gives_predict_ones_very_values(shrink):
    """What the day close corrects every SKU with, in one pass: bit for bit ``predict_one``
    of each SKU, warming up or not, clipped at either bound, a zero forecast mean with no
    shrink, negative, zero, signed-zero and NaN central forecasts."""
    rng = np.random.default_rng(7)
    c = LevelCorrection(shrink=shrink, warmup=3)
    skus = [f"s{i}" for i in range(40)]
    for day in range(6):
        for i, sku in enumerate(skus[: 30 - 3 * day]):  # the later SKUs learn fewer days
            level = (0.0, 1.0, 2.0, 9.0)[i % 4]  # 0 sold and 0 forecast: no evidence at all
            ratio = (0.1, 0.7, 1.3, 6.0)[(i // 4) % 4]
            c.learn_one(sku, central=level, actual=level * ratio * rng.gamma(5.0, 0.2))
    central = rng.gamma(1.0, 3.0, len(skus)) - 0.5
    central[:6] = [0.0, -0.0, np.nan, -np.inf, np.inf, -1.0]
    want = [c.predict_one(sku, x) for sku, x in zip(skus, central.tolist(), strict=True)]
    got = c.predict_many(skus, central)
    assert np.array_equal(got, np.array(want), equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    factors = {c.factor_one(s) for s in skus}
    assert {0.5, 2.0, 1.0} < factors  # both bounds, 1.0 and between
