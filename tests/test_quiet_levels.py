"""State changes that provably decide nothing are not decided (``edge_runtime.decide.quiet_levels``):
the same messages, ids included, with and without the skip, for a SKU driven across every
threshold one sale at a time, and no quiet level under which the policy would have acted."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.decide.forecast_policy import (
    DailyForecasts,
    DecisionSettings,
    ForecastDecisionPolicy,
)
from edge_runtime.decide.quiet_levels import QuietLevels
from edge_runtime.gateway import Gateway
from edge_runtime.store.state_columns import StateColumns
from tests.test_gateway_model import config, ev

SETTINGS = DecisionSettings(lead_time_days=2.0, review_days=1.0, min_change=0.1, hysteresis=0.05)


def _table(means: list[float], buffer: bool) -> DailyForecasts:
    n = len(means)
    mean = np.repeat(np.asarray(means, dtype=np.float64), 9 * 3).reshape(n, 9, 3)
    buf = np.linspace(0.0, 6.0, n).astype(np.float32) if buffer else None
    return DailyForecasts([f"K{i}" for i in range(n)], np.datetime64("2026-01-01"), mean,
                          1.8 * mean, buf)  # fmt: skip


def _events() -> list[dict]:
    """K0 and K1 restocked, sold down to nothing one unit at a time, restocked (the receipt
    closes the open order) and sold down again; K2 well stocked throughout."""
    out = [ev("r0", "K0", "receipt", 30, 10, 8), ev("r1", "K1", "receipt", 12, 10, 8),
           ev("r2", "K2", "receipt", 200, 10, 8)]  # fmt: skip
    for n in range(30):
        out.append(ev(f"a{n}", "K0", "sale", 1, 10, 9 + n // 6, n % 6 * 10))
        out.append(ev(f"c{n}", "K2", "sale", 1, 10, 9 + n // 6, n % 6 * 10 + 1))
        if n < 12:
            out.append(ev(f"b{n}", "K1", "sale", 1, 10, 9 + n // 6, n % 6 * 10 + 2))
    out += [ev("r3", "K0", "receipt", 9, 10, 15), ev("r4", "K1", "receipt", 25, 10, 15)]
    for n in range(9):
        out.append(ev(f"d{n}", "K0", "sale", 1, 10, 16, n * 5))
        out.append(ev(f"e{n}", "K1", "sale", 3, 10, 16, n * 5 + 1))
    return out


def _run(tmp_path, skip: bool, grouped: bool, buffer: bool) -> tuple[list[dict], int]:
    policy = ForecastDecisionPolicy("S1", _table([2.0, 0.7, 3.0], buffer), "m1", settings=SETTINGS)
    if not skip:
        policy.deciding = lambda steps, safety_buffer: steps
    decided = []
    real = policy.decide
    policy.decide = lambda states, *a: decided.append(len(states)) or real(states, *a)
    with Gateway(config(tmp_path / f"{skip}-{grouped}-{buffer}"), policy=policy) as gw:
        events = _events()
        if grouped:
            gw.ingest(events, "pos")
        else:
            for e in events:
                gw.ingest(e, "pos")
        got = [
            {k: v for k, v in m.items() if k != "created_at"}
            for m in gw.recent_messages(limit=1000)
            if m["kind"] in ("stockout", "replenishment")
        ]
    return got, sum(decided)


@pytest.mark.parametrize("buffer", [False, True])
@pytest.mark.parametrize("grouped", [False, True])
def test_the_skip_sends_the_same_messages_and_decides_fewer_changes(tmp_path, grouped, buffer):
    got, decided = _run(tmp_path, True, grouped, buffer)
    want, decided_all = _run(tmp_path, False, grouped, buffer)
    kinds = {m["kind"] for m in want}
    assert kinds == {"stockout", "replenishment"} and len(want) >= 6
    assert got == want  # message ids too: derived from what was decided
    assert decided < decided_all - 30  # K2's sales and the well-stocked part of the others


@pytest.mark.parametrize("buffer", [False, True])
def test_no_quiet_level_hides_a_decision(buffer):
    """Every SKU of a random table at every ATP from 0 to 60, with and without an open order:
    where the levels say quiet, the policy's review publishes and changes nothing."""
    rng = np.random.default_rng(7)
    means = [*rng.gamma(0.8, 3.0, 300).tolist(), 0.0, 1e-9]
    table = _table(means, buffer)
    table.p90[:] = table.mean * rng.uniform(1.0, 3.0, (len(means), 1, 1))
    table = DailyForecasts(table.skus, table.first_close, table.mean, table.p90, table.buffer)
    levels = QuietLevels(table, SETTINGS)
    when = "2026-01-10T12:00:00+01:00"
    quiet_seen = 0
    for order_open in (False, True):
        for atp in range(61):
            policy = ForecastDecisionPolicy("S1", table, "m1", settings=SETTINGS)
            if order_open:
                policy.restore_orders({s: (5.0, None) for s in table.skus})
            quiet = [levels.quiet(s, float(atp), when, order_open) for s in table.skus]
            skus = [s for s, q in zip(table.skus, quiet, strict=True) if q]
            quiet_seen += len(skus)
            states = StateColumns([*skus], np.full(len(skus), float(atp)), lambda i: None)
            assert policy.review(states, {}, when) == []
            assert policy.take_episode_changes() == {} and policy.take_order_changes() == {}
    assert quiet_seen > 10_000
    assert not levels.quiet("K0", 1e9, "2026-01-09T23:00:00+01:00", True)  # a closed day's


def test_a_new_forecast_table_moves_the_levels():
    """A close (``use``) brings new forecasts: a change quiet under the old table is decided
    under the new one, and a SKU under alert is always decided."""
    from types import SimpleNamespace

    from edge_runtime.store.stock import SkuState

    policy = ForecastDecisionPolicy("S1", _table([0.5, 0.5], False), "m1", settings=SETTINGS)
    step = (SimpleNamespace(sku="K0", event_time="2026-01-10T12:00:00+01:00"), SkuState("K0", 10))
    assert policy.deciding([step], 0) == []
    policy.use(_table([6.0, 6.0], False), "m2")
    assert policy.deciding([step], 0) == [step]
    policy.use(_table([0.5, 0.5], False), "m3")
    policy.restore_alerts({"K0": 0.6})
    assert policy.deciding([step], 0) == [step]
