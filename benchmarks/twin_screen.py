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

Usage: ``python benchmarks/twin_screen.py --json var/bench/twin_screen.json [--engine]
[--windows 1 2 3] [--no-test] [--only NAME ...] [--reuse-traces] [--refresh-days K]``:
``--refresh-days`` replays the engine with the centre's bundle retrained every ``K`` days
(``twin.model_refresh``); ``--windows`` screens on
validation windows further back (each engine on a bundle trained only before its window, cached
in var/bench), and a rule goes to a full run only if it gains on every one; ``--reuse-traces``
reads the engine's tables recorded by an earlier run instead of replaying the engine again (a
screen of table rules then takes minutes, not a quarter of an hour).
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
from twin.model_refresh import ModelRefresh  # noqa: E402
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
        self.empty = [no_empty] * len(self.days)  # per day: the shelves that closed empty

    def close(self, sold: np.ndarray, empty: np.ndarray) -> None:
        """One replayed day: what sold, and which shelves closed empty."""
        day = np.where(np.isnan(self.days[-1]) & (sold <= 0), np.nan, sold.astype(np.float64))
        self.days.append(close_levels(self.level, day, empty))
        self.empty.append(empty)

    def matrix(self, days: int = UnitsHistory().days) -> np.ndarray:
        """The last ``days`` closed days, a row per SKU."""
        return np.array(self.days[-days:]).T


# A level rule: (replay, mean (SKUs x horizons), history) -> factor per SKU on the mean.
Level = Callable[["TableReplay", np.ndarray, np.ndarray], np.ndarray]
# A stock rule: (replay, state, mean) -> the on-hand stock the decision sees.
Stock = Callable[["TableReplay", StoreState, np.ndarray], np.ndarray]
# A buffer rule: (history, every_days, mean (SKUs x horizons)) -> the safety buffer per SKU.
Buffer = Callable[[np.ndarray, float, np.ndarray], np.ndarray]


class TableReplay:
    """The gateway's decision policy on recorded forecast tables (``GatewayPolicy.trace``),
    with the marginal buffer at ``every_days`` on :class:`GatewayHistory`. ``level``,
    ``stock``, ``buffer`` and ``history`` (a subclass's ``close``) are what a candidate
    changes."""

    name = "table_replay"

    def __init__(
        self,
        trace: dict,
        every_days: float,
        level: Level | None = None,
        stock: Stock | None = None,
        buffer: Buffer | None = None,
    ):
        self.trace, self.every_days, self.level, self.stock = trace, every_days, level, stock
        self.buffer = buffer

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
        if self.buffer is None:
            buffer = buffer_exceeded_every(history, self.every_days)
        else:
            buffer = self.buffer(history, self.every_days, mean)
        table = DailyForecasts(self.skus, self.panel.dates[state.day], mean[:, None, :],
                               p90[:, None, :], buffer)  # fmt: skip
        on_hand = state.on_hand if self.stock is None else self.stock(self, state, mean)
        return self.decisions.orders(table, on_hand, state.on_order)


def record(
    panel, windows, config, bundle: str, every_days: float, refresh: ModelRefresh | None = None
) -> dict[str, dict]:
    """The deployed engine's forecast table at every close, per window (panel order); with
    ``refresh``, the centre's new bundle swapped in every ``refresh.every_days``."""
    out = {}
    for window, (a, b) in windows.items():
        policy = GatewayPolicy(bundle, buffer_every_days=every_days, refresh=refresh)
        trained = len(refresh.seconds) if refresh else 0
        t0 = time.perf_counter()
        run = simulate(panel, policy, config, a, b)
        out[window] = {
            "trace": policy.trace, "metrics": run.metrics(), "orders": run.orders,
            "engine_seconds": round(time.perf_counter() - t0, 1), "swaps": policy.swaps,
            "training_seconds": refresh.seconds[trained:] if refresh else [],
        }  # fmt: skip
    return out


def recorded(panel, window: str, span, config, bundle: Path, args, refresh=None) -> dict:
    """:func:`record` for one window, or its pickle from an earlier run with ``--reuse-traces``
    (keyed by the window, the bundle and ``every_days``; the engine's code is not in the key, so
    reuse only while the engine is unchanged)."""
    import pickle

    a, b = span
    key = f"{panel.dates[a]}_{panel.dates[b - 1]}_{bundle.name}_{args.every_days:g}"
    key += f"_refresh{refresh.every_days}" if refresh else ""
    key += "_river_reset" if refresh and not refresh.keep_correction else ""
    path = ROOT / "var" / "bench" / "twin_screen_traces" / f"{key}.pkl"
    if args.reuse_traces and path.exists():
        return pickle.loads(path.read_bytes())
    out = record(panel, {window: span}, config, str(bundle), args.every_days, refresh)[window]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def reductions(curves: dict, reference: dict, at: dict | None = None) -> dict[str, float | None]:
    """Per window: 1 - lost units interpolated at min/max's inventory / min/max's lost units;
    at ``at[window]``'s inventory instead where given (:func:`inventory_at`).

    >>> curve = [(30.0, 100.0, 60.0), (60.0, 200.0, 40.0)]
    >>> reductions({"w": curve}, {"w": (150.0, 50.0)})
    {'w': 0.0}
    >>> reductions({"w": curve}, {"w": (300.0, 60.0)}, {"w": 100.0})  # min/max's off the curve
    {'w': 0.0}
    """
    out = {}
    for window, points in curves.items():
        inventory, lost = reference[window]
        point = interpolate_lost(points, (at or {}).get(window, inventory))
        out[window] = None if point is None else 1.0 - point / lost
    return out


def inventory_at(baseline: dict, reference: dict, engine: dict) -> dict[str, float]:
    """The windows whose min/max inventory the baseline's curve over the grid does not reach
    (the autumn of 2010: min/max, following the run-up to Christmas, holds more than the engine
    does at ``N`` = 100), each with the engine replay's own inventory: candidates are compared
    there, a figure that ranks them but is no reduction at min/max's inventory.

    >>> curve = [(30.0, 100.0, 60.0), (60.0, 200.0, 40.0)]
    >>> engine = {"w": {"avg_inventory_units": 120.0}, "v": {"avg_inventory_units": 130.0}}
    >>> inventory_at({"w": curve, "v": curve}, {"w": (300.0, 60.0), "v": (150.0, 50.0)}, engine)
    {'w': 120.0}
    """
    return {
        w: engine[w]["avg_inventory_units"]
        for w, points in baseline.items()
        if interpolate_lost(points, reference[w][0]) is None
    }


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


def shares_from_trailing(weight: float, days: int = 91, clip: float | None = SPIKE) -> Level:
    """The store's level as the model forecasts it, shared out over its SKUs by their trailing
    (clipped) means: each SKU's level blended with its trailing mean times the store-wide ratio
    of the model's level to the trailing means, so the store total stays the model's (a trailing
    mean lags a season; the model has its year-back features) and only the split moves."""

    def level(replay, mean, h):
        w = h[:, -days:]
        if clip is not None:
            w = np.minimum(w, clip * _mean_of(h, 91)[:, None])
        return _split_store_level(mean.mean(axis=1), _mean_of(w, days), weight)

    return level


def shares_a_year_ago(weight: float, days: int = 28) -> Level:
    """The store's level as the model forecasts it, shared out over its SKUs by their shares
    of the store's sales in the ``days`` after the same day a year ago (SKUs without them keep
    the model's level)."""

    def level(replay, mean, h):
        t = replay.day
        ago = replay.panel.units[:, t - 364 + 1 : t - 364 + 1 + days].mean(axis=1)
        return _split_store_level(mean.mean(axis=1), ago, weight)

    return level


def _split_store_level(model: np.ndarray, shares: np.ndarray, weight: float) -> np.ndarray:
    """The factor on each SKU's level that moves it ``weight`` of the way towards ``shares``
    scaled to the model's store total (SKUs missing either keep the model's level)."""
    both = (shares > 0) & (model > 0)
    ratio = model[both].sum() / max(shares[both].sum(), 1e-9)
    new = (1.0 - weight) * model + weight * shares * ratio
    return np.where(both, new / np.maximum(model, 1e-9), 1.0)


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


def _survival(ordered: np.ndarray, valid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per row of ``ordered`` (each row sorted, its ``valid`` values first), the share of
    values above each threshold in ``t`` (rows x thresholds), with the empirical CDF linear
    between order statistics (the inverse of ``np.quantile``'s linear interpolation)."""
    n, d = ordered.shape
    last = np.maximum(valid - 1, 1)[:, None].astype(np.float64)
    top = np.take_along_axis(ordered, np.maximum(valid - 1, 0)[:, None], axis=1)
    span = float(np.nanmax(ordered, initial=0.0)) + 2.0
    vals = np.where(np.arange(d)[None, :] < valid[:, None], ordered, top + 1.0)
    offset = np.arange(n, dtype=np.float64)[:, None] * span * 2.0
    flat = (vals + offset).ravel()
    tt = np.clip(t, 0.0, top)
    k = np.searchsorted(flat, (tt + offset).ravel(), side="right").reshape(t.shape)
    k = k - np.arange(n)[:, None] * d  # values <= t in the row
    lo = np.clip(k - 1, 0, d - 1)
    hi = np.clip(k, 0, d - 1)
    v_lo = np.take_along_axis(vals, lo, axis=1)
    v_hi = np.take_along_axis(vals, hi, axis=1)
    gap = np.where(v_hi > v_lo, v_hi - v_lo, 1.0)
    pos = np.where(k <= 0, 0.0, lo + np.clip((tt - v_lo) / gap, 0.0, 1.0))
    pos = np.where(k >= valid[:, None], last, np.minimum(pos, last))
    return np.where(valid[:, None] > 1, 1.0 - pos / last, 0.0)


def _solved_buffer(history: np.ndarray, every_days: float, steps: np.ndarray) -> np.ndarray:
    """Per SKU, ``b`` with the mean over ``steps`` (SKUs x nodes) of ``P(X > b + step)`` equal
    to each smoothing rate over ``every_days`` (bisection), averaged over the rates: the
    engine's smoothed quantile when every step is 0."""
    from edge_runtime.decide.service_level import SMOOTHING_RATES

    units = np.asarray(history, dtype=np.float64)
    ordered = np.sort(units, axis=1)
    valid = np.count_nonzero(~np.isnan(units), axis=1)
    top = np.nan_to_num(np.nanmax(np.where(valid[:, None] > 0, units, 0.0), axis=1))
    top = top + np.maximum(-steps.min(axis=1), 0.0)
    out = np.zeros(units.shape[0])
    for rate in SMOOTHING_RATES:
        target = min(rate / every_days, 1.0)
        lo, hi = np.zeros(units.shape[0]), top.copy()
        for _ in range(36):
            mid = 0.5 * (lo + hi)
            over = _survival(ordered, valid, mid[:, None] + steps).mean(axis=1) > target
            lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
        out += hi
    return np.where(valid == 0, 0.0, out / len(SMOOTHING_RATES))


def cycle_buffer(cycle_days: int, share: float = 1.0) -> Buffer:
    """The marginal buffer with the review cycle's own stock counted: on the ``j``-th last day
    of a cycle the shelf holds ``b + j x share x`` the forecast's mean day, so one more unit
    saves a sale on days whose demand exceeds that (``j = 1 .. cycle_days``). ``share`` 0 is
    the engine's rule."""

    def buffer(history, every_days, mean):
        m = np.maximum(mean.mean(axis=1), 0.0)
        steps = share * np.arange(1, cycle_days + 1)[None, :] * m[:, None]
        return _solved_buffer(history, every_days, steps)

    return buffer


def level_error_buffer(spread: float, days: int = 9, nodes: int = 7) -> Buffer:
    """The marginal buffer with the forecast's level error counted: the shelf at a cycle's
    end holds ``b + e``, ``e`` the error of the ``days`` the order covers, normal with standard
    deviation ``spread`` x their forecast (equal-weight normal quantiles). ``b`` makes the mean
    over ``e`` of ``P(X > b + e)`` equal each smoothing rate over ``every_days``: steady SKUs,
    whose busy day is small beside the level's error, hold more; wholesale SKUs as before."""
    from scipy.stats import norm

    z = norm.ppf((np.arange(nodes) + 0.5) / nodes)

    def buffer(history, every_days, mean):
        sigma = spread * np.maximum(mean[:, :days].sum(axis=1), 0.0)
        return _solved_buffer(history, every_days, -sigma[:, None] * z[None, :])

    return buffer


class P90Calibrated(TableReplay):
    """The level moved by how often each SKU's in-stock days exceeded their day-ahead P90 in
    the replay so far: a rank signal (a wholesale day counts once, whatever its size), unlike
    River's ratio of units. The rate is shrunk to 0.1 over ``prior`` days; the factor is
    ``(rate / 0.1) ^ power``, clipped to 0.8-1.25. Trading days only (the store sold something)."""

    def __init__(
        self, trace: dict, every_days: float, power: float, prior: float = 14.0, pooled=False
    ):
        super().__init__(trace, every_days, level=self._factor)
        self.power, self.prior, self.pooled = power, prior, pooled

    def prepare(self, panel, start, config) -> None:
        super().prepare(panel, start, config)
        self.seen = np.zeros(panel.n_skus)
        self.over = np.zeros(panel.n_skus)

    def observe(self, state: StoreState) -> None:
        super().observe(state)
        sold = state.sales[:, -1]
        made = self.trace.get(state.day - 1)
        if made is None or sold.sum() <= 0:
            return
        counted = ~shelf_empty(state.on_hand) | (sold > made[1][:, 0])
        self.seen += counted
        self.over += counted & (sold > made[1][:, 0])

    def _factor(self, replay, mean, h) -> np.ndarray:
        target = 0.1
        if self.pooled and self.seen.sum() > 0:  # relative to the store's own rate
            target = max(self.over.sum() / self.seen.sum(), 0.01)
        rate = (self.over + target * self.prior) / (self.seen + self.prior)
        return np.clip((rate / target) ** self.power, 0.8, 1.25)


def level_over_closes(closes: int) -> Level:
    """The level averaged over the last ``closes`` closes' forecasts of the same coming days:
    each earlier table's forecast of the days it shares with today's, over today's forecast of
    them, averaged with today's (1); the level's day-to-day noise averaged out."""

    def level(replay, mean, h):
        ratios = [np.ones(mean.shape[0])]
        for j in range(1, closes):
            earlier = replay.trace.get(replay.day - j)
            if earlier is None or j >= mean.shape[1]:
                break
            now = mean[:, : mean.shape[1] - j].sum(axis=1)
            then = earlier[0][:, j:].sum(axis=1)
            ratios.append(np.where(now > 0, then / np.maximum(now, 1e-9), 1.0))
        return np.mean(ratios, axis=0)

    return level


def coverage(days: float) -> Level:
    """The order covers ``days`` of the forecast (its first whole days, part of the next)
    instead of lead time + review period."""

    def level(replay, mean, h):
        whole = int(days)
        cover = (
            mean[:, :whole].sum(axis=1) + (days - whole) * mean[:, min(whole, mean.shape[1] - 1)]
        )
        total = mean.sum(axis=1)
        return np.where(total > 0, cover / np.maximum(total, 1e-9), 1.0)

    return level


def level_dispersion(power: float) -> Level:
    """Each SKU's level raised to ``power`` relative to the store's mean level, the store
    total kept: below 1 the levels move towards each other, above 1 apart."""

    def level(replay, mean, h):
        m = mean.mean(axis=1)
        pos = m > 0
        if not pos.any():
            return np.ones(m.shape[0])
        ref = np.exp(np.log(m[pos]).mean())
        new = np.where(pos, ref * (np.maximum(m, 1e-9) / ref) ** power, 0.0)
        new *= m.sum() / max(new.sum(), 1e-9)
        return np.where(pos, new / np.maximum(m, 1e-9), 1.0)

    return level


def large_days(history: np.ndarray) -> np.ndarray:
    """Per SKU, the days of ``history`` above ``SPIKE`` x its last 91 days' mean."""
    usual = _mean_of(history, 91)[:, None]
    return (np.nan_to_num(history) > SPIKE * usual).sum(axis=1)


def steady_extra(max_large: int, days: float) -> Buffer:
    """The engine's buffer plus ``days`` of the forecast's mean day for the steady SKUs (at
    most ``max_large`` large days in the buffer's year): their lost units come from the level
    over the cycle, not from one large day."""

    def buffer(history, every_days, mean):
        b = buffer_exceeded_every(history, every_days)
        steady = large_days(history) <= max_large
        return b + np.where(steady, days * np.maximum(mean.mean(axis=1), 0.0), 0.0)

    return buffer


def run_buffer(days: int, less: float) -> Buffer:
    """The engine's smoothed quantile read off the year's ``days``-day demand sums, less
    ``less`` x (``days`` - 1) of the forecast's mean day: the end of a cycle faces a run of
    days, and large days cluster."""

    def buffer(history, every_days, mean):
        h = np.asarray(history, dtype=np.float64)
        runs = sum(h[:, k : h.shape[1] - days + 1 + k] for k in range(days))
        b = buffer_exceeded_every(runs, max(every_days / days, 1.5))  # runs overlap
        return np.maximum(b - less * (days - 1) * np.maximum(mean.mean(axis=1), 0.0), 0.0)

    return buffer


def banded_buffer(rates: tuple[float, ...]) -> Buffer:
    """The engine's smoothed quantile over another band of exceedance rates (x ``1/N``): the
    mean of the year's plain quantiles at those rates (``np.nanquantile``'s linear rule, the
    engine's; the engine's own band gives the engine's buffer)."""

    def buffer(history, every_days, mean):
        h = np.asarray(history, dtype=np.float64)
        has = ~np.isnan(h).all(axis=1)
        out = np.zeros(h.shape[0])
        for rate in rates:
            q = max(1.0 - rate / every_days, 0.0)
            out[has] += np.nanquantile(h[has], q, axis=1)
        return np.maximum(out / len(rates), 0.0)

    return buffer


HAZARD_EDGES = (3, 7, 14, 28, 63)  # days-since-last-large-day buckets: 1-3, 4-7, ..., 64+


def large_day_hazard(history: np.ndarray, ahead: int = 9, prior: float = 20.0) -> np.ndarray:
    """Per SKU, how much more (or less) likely a large day (above ``SPIKE`` x the 91 days'
    mean before it) is in the next ``ahead`` days than the SKU's own rate over ``history``
    says, given the days since its last large day: the store's pooled ratio of observed to
    expected large days per bucket of days-since (:data:`HAZARD_EDGES`; never: its own
    bucket), read off the same history, shrunk to 1 by ``prior`` expected days."""
    h = np.nan_to_num(np.asarray(history, dtype=np.float64))
    n, d = h.shape
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(h, axis=1)], axis=1)
    big = np.zeros((n, d), dtype=bool)
    if d <= 91 + ahead:
        return np.ones(n)
    usual = (cs[:, 91:d] - cs[:, : d - 91]) / 91.0  # mean of the 91 days before day t
    big[:, 91:] = (h[:, 91:] > SPIKE * usual) & (usual > 0)
    rate = big[:, 91:].mean(axis=1)
    since = np.full((n, d), np.inf)
    run = np.full(n, np.inf)
    for t in range(d):
        run = np.where(big[:, t], 0.0, run + 1.0)
        since[:, t] = run  # 0: day t itself was large
    bucket = np.where(np.isinf(since), len(HAZARD_EDGES) + 1,
                      np.searchsorted(HAZARD_EDGES, since + 1.0, side="left"))  # fmt: skip
    bc = np.concatenate([np.zeros((n, 1)), np.cumsum(big, axis=1)], axis=1)
    ts = np.arange(91, d - ahead)
    obs = bc[:, ts + 1 + ahead] - bc[:, ts + 1]
    exp = np.broadcast_to(ahead * rate[:, None], obs.shape)
    k = bucket[:, ts].ravel()
    nb = len(HAZARD_EDGES) + 2
    o = np.bincount(k, weights=obs.ravel(), minlength=nb)
    e = np.bincount(k, weights=exp.ravel(), minlength=nb)
    ratio = (o + prior) / (e + prior)
    return ratio[bucket[:, -1]]


def hazard_buffer(power: float) -> Buffer:
    """The marginal buffer with each SKU's exceedance rate scaled by :func:`large_day_hazard`
    ^ ``power``: a unit of buffer saves a sale when a large day comes before the next
    delivery, and that is likelier soon after a large day (wholesale orders cluster) and
    rarer after months without one, so at the same inventory the buffer moves to where the
    next cycle's large day is likelier."""

    def buffer(history, every_days, mean):
        m = large_day_hazard(history) ** power
        out = np.empty(history.shape[0])
        for i in range(history.shape[0]):
            out[i] = buffer_exceeded_every(history[i : i + 1], max(every_days * m[i], 1.01))[0]
        return out

    return buffer


def steady_rate(max_large: int, k: float) -> Buffer:
    """The marginal buffer at ``k`` x ``every_days`` for the steady SKUs (at most
    ``max_large`` large days in the buffer's year): a single day's quantile undercounts what
    one more unit saves when a SKU's shortfalls come from the level over the cycle rather
    than one large day (measured: their lost units saved per unit of inventory are about twice
    the others' at the engine's ``N``)."""

    def buffer(history, every_days, mean):
        steady = large_days(history) <= max_large
        return np.where(steady, buffer_exceeded_every(history, every_days * k),
                        buffer_exceeded_every(history, every_days))  # fmt: skip

    return buffer


def tail_quantiles(
    history: np.ndarray, every_days: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per SKU (rows), the quantiles the engine's buffer averages (SKUs x
    :data:`SMOOTHING_RATES`): the single-day demand exceeded on a share ``rate / every_days`` of
    the days, each day (column) counted with its weight in ``weights`` (None: all 1). A day's
    exceedance is the weight of the days above it over the weight of all but the smallest day,
    linear between days: with equal weights ``np.quantile``'s linear rule, so the mean over the
    rates is then :func:`buffer_exceeded_every` (a test checks it).

    >>> h = np.array([[8.0, 0, 2, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 2, 0, 8]])
    >>> tail_quantiles(h, 4.0).round(2).tolist()  # the same days in another order
    [[2.0, 1.17, 0.0, 0.0, 0.0], [2.0, 1.17, 0.0, 0.0, 0.0]]
    >>> tail_quantiles(h, 4.0, np.exp(-np.arange(9)[::-1] / 4)).round(2).tolist()  # recent count
    [[0.0, 0.0, 0.0, 0.0, 0.0], [5.07, 3.85, 2.14, 0.74, 0.0]]
    """
    from edge_runtime.decide.service_level import SMOOTHING_RATES

    h = np.asarray(history, dtype=np.float64)
    n, d = h.shape
    order = np.argsort(h, axis=1, kind="stable")  # NaN last
    x = np.take_along_axis(h, order, axis=1)
    missing = np.isnan(x)
    valid = d - missing.sum(axis=1)
    w = np.ones((n, d)) if weights is None else np.broadcast_to(weights, (n, d))
    w = np.where(missing, 0.0, np.take_along_axis(w, order, axis=1))
    below = np.cumsum(w, axis=1) - w[:, :1]  # weight up to each day, less the smallest's
    span = below[:, -1:]
    u = np.where(missing, np.inf, below / np.where(span > 0, span, 1.0))
    last = np.maximum(valid - 1, 0)[:, None]
    x = np.where(missing, 0.0, x)
    out = np.zeros((n, len(SMOOTHING_RATES)))
    for j, rate in enumerate(SMOOTHING_RATES):
        q = max(1.0 - rate / every_days, 0.0)
        lo = np.clip((u <= q).sum(axis=1, keepdims=True) - 1, 0, None)
        hi = np.minimum(lo + 1, last)
        u_lo, u_hi = (np.take_along_axis(u, i, axis=1) for i in (lo, hi))
        x_lo, x_hi = (np.take_along_axis(x, i, axis=1) for i in (lo, hi))
        with np.errstate(invalid="ignore"):  # a SKU without days: inf - inf
            gap = np.where(u_hi > u_lo, u_hi - u_lo, 1.0)
            frac = np.where(u_hi > u_lo, np.clip((q - u_lo) / gap, 0.0, 1.0), 0.0)
        out[:, j] = (x_lo + (x_hi - x_lo) * frac)[:, 0]
    return np.maximum(np.where(valid[:, None] == 0, 0.0, out), 0.0)


def recency_buffer(tau: float) -> Buffer:
    """The engine's smoothed quantile with each day of the buffer's year weighted by
    ``exp(-age / tau)`` (age 0: the last closed day): a large order of last month counts more
    than one of eleven months ago (the smoothed-buffer record dropped half-lives of 91 and
    182 days, ``tau`` 131 and 263, on one window)."""

    def buffer(history, every_days, mean):
        age = np.arange(history.shape[1])[::-1]
        return tail_quantiles(history, every_days, np.exp(-age / tau)).mean(axis=1)

    return buffer


def lifecycle_buffer(power: float, lo: float, hi: float, net_of_store: bool = False) -> Buffer:
    """The engine's buffer x ``clip(level / year, lo, hi) ^ power``: ``level`` the forecast's
    mean day, ``year`` the SKU's mean day over the buffer's year. A declining SKU's old
    wholesale orders are less likely to recur; ``hi`` 1 only shrinks. ``net_of_store``: the
    ratio over the store's (its SKUs' levels over their years' means, pooled), so that the
    season every SKU shares is not read as a decline."""

    def buffer(history, every_days, mean):
        year = _mean_of(history, history.shape[1])
        level = np.maximum(mean.mean(axis=1), 0.0)
        ratio = np.where(year > 0, level / np.maximum(year, 1e-9), 1.0)
        if net_of_store and (year > 0).any():
            ratio = ratio * year[year > 0].sum() / max(level[year > 0].sum(), 1e-9)
        return buffer_exceeded_every(history, every_days) * np.clip(ratio, lo, hi) ** power

    return buffer


def room_capped(quantiles: np.ndarray, room: np.ndarray) -> np.ndarray:
    """The mean over the buffer's quantiles (SKUs x rates), each capped at ``room``.

    >>> room_capped(np.array([[90.0, 60.0, 30.0, 10.0, 10.0]]), np.array([40.0])).tolist()
    [26.0]
    """
    return np.minimum(quantiles, np.maximum(room, 0.0)[:, None]).mean(axis=1)


class RoomCappedBuffer(TableReplay):
    """Each of the buffer's smoothed quantiles capped at the room the shelf leaves above the
    order's forecast (capacity less the protection days' forecast) before they are averaged.
    Why: the order-up-to level is capped at capacity anyway, so a quantile above the room buys
    no stock for the days it stands for, but averaged in it lifts the buffer of a SKU whose
    large orders outgrow its shelf up to the cap. The gateway knows the capacity (its items)."""

    def __init__(self, trace: dict, every_days: float):
        super().__init__(trace, every_days, buffer=self._buffer)

    def prepare(self, panel, start, config) -> None:
        super().prepare(panel, start, config)
        self.capacity = sku_parameters(panel, start, config)[1]

    def _buffer(self, history, every_days, mean):
        room = self.capacity - mean[:, : self.decisions.protection_days].sum(axis=1)
        return room_capped(tail_quantiles(history, every_days), room)


class CensoredTailHistory(TableReplay):
    """The buffer's history with an empty-shelf day estimated from the SKU's own year: a shelf
    that closed empty having sold ``s`` saw a demand of at least ``s``, so the day counts as the
    mean (``stat`` np.mean) or median of the year's in-stock days of at least ``s``, never below
    the engine's estimate (the in-stock level). Only what the gateway holds: its censored
    flags and its history (the real history before the replay counts as in stock)."""

    def __init__(self, trace: dict, every_days: float, stat: Callable = np.mean):
        super().__init__(trace, every_days)
        self.stat = stat

    def observe(self, state: StoreState) -> None:
        year = self.history.matrix()
        flags = np.array(self.history.empty[-year.shape[1] :]).T
        super().observe(state)
        empty = self.history.empty[-1]
        sold, day = state.sales[:, -1], self.history.days[-1]
        for i in np.flatnonzero(empty):
            row = year[i][~flags[i] & ~np.isnan(year[i])]
            above = row[row >= sold[i]]
            if above.size:
                day[i] = max(day[i], float(self.stat(above)))


class LongerHistory(TableReplay):
    """The buffer reads ``days`` of history instead of the gateway's year."""

    def __init__(self, trace: dict, every_days: float, days: int):
        super().__init__(trace, every_days, buffer=self._buffer)
        self.days = days

    def prepare(self, panel, start, config) -> None:
        super().prepare(panel, start, config)
        self.history = GatewayHistory(panel.units[:, max(0, start - self.days) : start])

    def _buffer(self, history, every_days, mean):
        return buffer_exceeded_every(self.history.matrix(self.days), every_days)


class StoreLevel(TableReplay):
    """Every SKU's level times the store's own ratio of in-stock sales to the day-ahead
    forecast over the replay so far (pooled over the SKUs, so a precise store-wide figure,
    not one SKU's wholesale days), each SKU-day clipped at ``clip`` x its forecast, shrunk to 1
    over ``prior`` store-days of forecast, raised to ``power``."""

    def __init__(self, trace: dict, every_days: float, power: float, clip: float = 5.0,
                 prior: float = 3.0, fading: float = 0.1):  # fmt: skip
        super().__init__(trace, every_days, level=self._factor)
        self.power, self.clip, self.prior, self.fading = power, clip, prior, fading

    def prepare(self, panel, start, config) -> None:
        super().prepare(panel, start, config)
        self.sold = self.forecast = 0.0

    def observe(self, state: StoreState) -> None:
        super().observe(state)
        made = self.trace.get(state.day - 1)
        if made is None:
            return
        sold, ahead = state.sales[:, -1], made[0][:, 0]
        if sold.sum() <= 0:
            return  # the store did not trade
        seen = ~shelf_empty(state.on_hand)
        keep = 1.0 - self.fading
        self.sold = keep * self.sold + np.minimum(sold, self.clip * ahead)[seen].sum()
        self.forecast = keep * self.forecast + ahead[seen].sum()

    def _factor(self, replay, mean, h) -> np.ndarray:
        day = mean[:, 0].sum()
        ratio = (self.sold + self.prior * day) / (self.forecast + self.prior * day)
        return np.full(mean.shape[0], np.clip(ratio, 0.8, 1.25) ** self.power)


class TrueDemandHistory(TableReplay):
    """Diagnostic, told the lost units: the buffer's history holds the true demand."""

    def observe(self, state: StoreState) -> None:
        super().observe(state)
        demand = self.panel.units[:, state.day]
        last = self.history.days
        last[-1] = np.where(np.isnan(last[-1]) & (demand <= 0), np.nan, demand)


def candidates(panel: DemandPanel, start: int) -> list[tuple[str, Callable]]:
    """The rules screened (name, (trace, every_days, bundle) -> policy); the first is the
    engine's."""
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
        *[(f"level split by the clipped 91-day means, store total the model's, weight {w:g}",
           shares_from_trailing(w), None) for w in (0.25, 0.5, 1.0)],
        *[(f"level split by the 91-day means, store total the model's, weight {w:g}",
           shares_from_trailing(w, clip=None), None) for w in (0.25, 0.5, 0.75)],
        *[(f"level split by the shares of the 28 days after a year ago, weight {w:g}",
           shares_a_year_ago(w), None) for w in (0.25, 0.5)],
        ("level split by the 182-day means, store total the model's, weight 0.5",
         shares_from_trailing(0.5, days=182, clip=None), None),
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
        (name, lambda tr, n, bundle, lv=lv, st=st: TableReplay(tr, n, lv, st))
        for name, lv, st in rules
    ]
    out += [(f"buffer counting the cycle's stock, share {k:g} of the mean day",
             lambda tr, n, bundle, k=k: TableReplay(tr, n, buffer=cycle_buffer(7, k)))
            for k in (0.25, 0.5, 1.0)]  # fmt: skip
    out += [
        (
            f"level x (P90 exceedance rate / 0.1) ^ {k:g}",
            lambda tr, n, bundle, k=k: P90Calibrated(tr, n, k),
        )
        for k in (0.15, 0.3)
    ]
    out += [(f"level x (P90 exceedance rate / the store's) ^ {k:g}",
             lambda tr, n, bundle, k=k: P90Calibrated(tr, n, k, pooled=True))
            for k in (0.15, 0.3)]  # fmt: skip
    out += [(f"buffer counting the level's error, spread {k:g} of the order's forecast",
             lambda tr, n, bundle, k=k: TableReplay(tr, n, buffer=level_error_buffer(k)))
            for k in (0.1, 0.2, 0.3)]  # fmt: skip
    out += more_candidates()
    out.append(("diagnostic: buffer history = true demand",
                lambda tr, n, bundle: TrueDemandHistory(tr, n)))  # fmt: skip
    return out


def more_candidates() -> list[tuple[str, Callable]]:
    """The second round on three windows (the validation-windows record): the level smoothed
    over closes, the buffer's band and year, the order's coverage, the levels' spread, more
    stock for the steady SKUs, buffers from runs of days, a store-wide level."""
    out: list[tuple[str, Callable]] = []
    out += [(f"level averaged over the last {k} closes' forecasts of the same days",
             lambda tr, n, bundle, k=k: TableReplay(tr, n, level_over_closes(k)))
            for k in (2, 3, 4, 5, 6, 7)]  # fmt: skip
    bands = {
        "narrow 0.71-1.41": (0.5**0.5, 1.0, 2.0**0.5),
        "plain 1": (1.0,),
        "wide 0.35-2.83": tuple(2.0 ** (e / 2) for e in range(-3, 4)),
        "low 0.35-1.41": tuple(2.0 ** (e / 2) for e in range(-3, 2)),
        "high 0.71-2.83": tuple(2.0 ** (e / 2) for e in range(-1, 4)),
    }
    out += [(f"buffer band {name}", lambda tr, n, bundle, r=r: TableReplay(tr, n, buffer=banded_buffer(r)))
            for name, r in bands.items()]  # fmt: skip
    out += [(f"coverage {d:g} days", lambda tr, n, bundle, d=d: TableReplay(tr, n, coverage(d)))
            for d in (8.0, 8.5, 9.5)]  # fmt: skip
    out += [(f"level dispersion power {k:g}",
             lambda tr, n, bundle, k=k: TableReplay(tr, n, level_dispersion(k)))
            for k in (0.9, 0.95, 1.05, 1.1)]  # fmt: skip
    out += [(f"steady SKUs (<= {k} large days) hold {d:g} more mean days",
             lambda tr, n, bundle, k=k, d=d: TableReplay(tr, n, buffer=steady_extra(k, d)))
            for k in (5, 9) for d in (1.0, 2.0, 3.0)]  # fmt: skip
    out += [(f"buffer from {d}-day runs less {k:g} x the other days' mean",
             lambda tr, n, bundle, d=d, k=k: TableReplay(tr, n, buffer=run_buffer(d, k)))
            for d in (2, 3) for k in (1.0, 1.5)]  # fmt: skip
    out += [
        (
            f"level x the store's in-stock sales / forecast, power {k:g}",
            lambda tr, n, bundle, k=k: StoreLevel(tr, n, k),
        )
        for k in (0.3, 0.5, 0.7, 1.0)
    ]
    out += [
        (
            f"level x the store's in-stock sales / forecast, power 0.5, fading {f:g}",
            lambda tr, n, bundle, f=f: StoreLevel(tr, n, 0.5, fading=f),
        )
        for f in (0.05, 0.2)
    ]
    out += [("level x the store's in-stock sales / forecast, power 0.5, no clip",
             lambda tr, n, bundle: StoreLevel(tr, n, 0.5, clip=1e9))]  # fmt: skip
    out += [(f"buffer history {d} days", lambda tr, n, bundle, d=d: LongerHistory(tr, n, d))
            for d in (273, 455, 546)]  # fmt: skip
    out += [(f"buffer rate x large-day hazard ^ {k:g}",
             lambda tr, n, bundle, k=k: TableReplay(tr, n, buffer=hazard_buffer(k)))
            for k in (0.5, 1.0)]  # fmt: skip
    out += [(f"steady SKUs (<= {m} large days) buffer at {k:g} x N",
             lambda tr, n, bundle, m=m, k=k: TableReplay(tr, n, buffer=steady_rate(m, k)))
            for m in (3, 5) for k in (1.5, 2.0, 3.0, 4.0)]  # fmt: skip
    out += [(f"buffer weighted by recency, tau {t} days",
             lambda tr, n, bundle, t=t: TableReplay(tr, n, buffer=recency_buffer(t)))
            for t in (91, 182, 364, 728)]  # fmt: skip
    out += [(f"buffer x lifecycle, clip {lo:g}-{hi:g}, power {p:g}",
             lambda tr, n, bundle, p=p, lo=lo, hi=hi: TableReplay(
                 tr, n, buffer=lifecycle_buffer(p, lo, hi)))
            for lo, hi in ((0.25, 1.0), (0.5, 2.0)) for p in (0.5, 1.0)]  # fmt: skip
    out += [(f"buffer x lifecycle net of the store's, clip {lo:g}-{hi:g}, power {p:g}",
             lambda tr, n, bundle, p=p, lo=lo, hi=hi: TableReplay(
                 tr, n, buffer=lifecycle_buffer(p, lo, hi, net_of_store=True)))
            for lo, hi in ((0.25, 1.0), (0.5, 2.0)) for p in (0.5, 1.0)]  # fmt: skip
    out += [("buffer's quantiles capped at the shelf's room",
             lambda tr, n, bundle: RoomCappedBuffer(tr, n))]  # fmt: skip
    out += [(f"buffer history: an empty shelf's day at the {name} of the year's days above its sales",
             lambda tr, n, bundle, f=f: CensoredTailHistory(tr, n, f))
            for name, f in (("mean", np.mean), ("median", np.median))]  # fmt: skip
    return out


def engine_candidates() -> list[tuple[str, Callable]]:
    """River's correction, varied: these change the forecast, so the whole engine runs (on the
    window's own bundle)."""
    from edge_runtime.forecast.online import LevelCorrection

    class ClippedLevel(LevelCorrection):
        """Learns each day's actual clipped at ``clip`` typical days (no large orders)."""

        def __init__(self, clip: float, **kw):
            super().__init__(**kw)
            self.clip = clip

        def learn_many(self, skus, central, actual, skip=frozenset()):
            clipped = [min(a, self.clip) for a in actual]
            return super().learn_many(skus, central, clipped, skip)

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
         lambda tr, n, bundle, f=f: GatewayPolicy(bundle, buffer_every_days=n, correction=f))
        for name, f in rivers
    ]  # fmt: skip


def validation_windows(panel: DemandPanel, back: list[int], days: int = 56) -> dict:
    """Window ``k`` of ``back``: the ``days`` ending ``(k - 1) x days`` before the test weeks
    (the last ``days`` of the panel); 1 is the benchmark's validation window. Each window's name
    says where it starts. No window reaches the test weeks, and each one's engine runs a bundle
    trained on the days before it (:func:`window_bundle`).

    >>> panel = DemandPanel.from_arrays("s", ["a"], np.datetime64("2011-01-01") + np.arange(300),
    ...                                 np.ones((1, 300)))
    >>> validation_windows(panel, [1, 2])
    {'validation': (188, 244), 'validation 2011-05-13': (132, 188)}
    """
    test0 = panel.n_days - days
    out = {}
    for k in back:
        a = test0 - k * days
        out["validation" if k == 1 else f"validation {panel.dates[a]}"] = (a, a + days)
    return out


def window_bundle(frame, panel: DemandPanel, start: int, trees: int) -> Path:
    """The bundle a window's engine runs: trained only on the days before ``start`` (the
    benchmark's own bundle for its validation window, cached beside it for the others)."""
    from benchmarks.twin import bundle_for

    test0 = panel.n_days - 56
    name = (
        "twin_bundle_200" if start == test0 - 56 else f"twin_bundle_200_to_{panel.dates[start - 1]}"
    )
    return bundle_for(frame, panel.dates[start - 1], ROOT / "var" / "bench" / name, trees)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the screening table here")
    parser.add_argument("--every-days", type=float, default=56.25,
                        help="the engine replay's buffer parameter (the benchmark's choice)")  # fmt: skip
    parser.add_argument("--trees", type=int, default=200, help="as benchmarks/twin.py")
    parser.add_argument("--engine", action="store_true", help="also River's variants (slow)")
    parser.add_argument("--windows", type=int, nargs="+", default=[1],
                        help="validation windows, in 56-day steps back from the test weeks (1: "
                        "the benchmark's; 2: the 56 days before it, its own bundle; ...; 5: "
                        "the autumn of 2010, compared at the engine's inventory)")  # fmt: skip
    parser.add_argument("--test", action=argparse.BooleanOptionalAction, default=True,
                        help="also the test weeks (shown, never used to choose)")  # fmt: skip
    parser.add_argument("--only", nargs="+", default=None,
                        help="only the candidates whose name holds one of these (and the baseline)")  # fmt: skip
    parser.add_argument("--reuse-traces", action="store_true",
                        help="reuse the engine's recorded tables of an earlier run (same windows, "
                        "bundles, --every-days; only while the engine's code is unchanged)")  # fmt: skip
    parser.add_argument("--refresh-days", type=int, default=None,
                        help="the engine's replay swaps in a bundle retrained by the centre every "
                        "this many days (twin.model_refresh; default: one bundle per window)")  # fmt: skip
    parser.add_argument("--refresh-reset-river", action="store_true",
                        help="with --refresh-days: River's correction starts afresh with each "
                        "new bundle (a gateway keeps it)")  # fmt: skip
    args = parser.parse_args()
    from training.datasets import online_retail

    t0 = time.perf_counter()
    frame = online_retail(top_skus=200)
    panel = DemandPanel.from_frame(frame)
    test0 = panel.n_days - 56
    windows = validation_windows(panel, args.windows)
    if args.test:
        windows["test"] = (test0, panel.n_days)
    bundles = {w: window_bundle(frame, panel, a if w != "test" else test0 - 56, args.trees)
               for w, (a, _) in windows.items()}  # fmt: skip
    config = StoreConfig()
    reference = {}
    for window, (a, b) in windows.items():
        m = simulate(panel, MinMaxPolicy(MINMAX_REFERENCE), config, a, b).metrics()
        reference[window] = (m["avg_inventory_units"], m["lost_units"])
    refresh = None
    if args.refresh_days:
        refresh = ModelRefresh(frame, args.refresh_days, args.trees,
                               ROOT / "var/bench/twin_refresh", not args.refresh_reset_river)  # fmt: skip
    traces = {w: recorded(panel, w, windows[w], config, bundles[w], args, refresh)
              for w in windows}  # fmt: skip
    first = min(a for a, _ in windows.values())
    todo = candidates(panel, first)
    if args.engine:
        todo += engine_candidates()
    if args.only:
        todo = todo[:1] + [c for c in todo[1:] if any(o in c[0] for o in args.only)]
    rows = []
    for name, make in todo:
        curves = {w: [] for w in windows}
        for n in FINE_GRID:
            for window, (a, b) in windows.items():
                policy = make(traces[window]["trace"], n, str(bundles[window]))
                m = simulate(panel, policy, config, a, b).metrics()
                curves[window].append((n, m["avg_inventory_units"], m["lost_units"]))
        if not rows:  # the baseline: where the windows' figures are read
            at = inventory_at(curves, reference, {w: traces[w]["metrics"] for w in windows})
        rows.append({"candidate": name, **reductions(curves, reference, at), "curves": curves})
        print(f"{name}: " + " / ".join(f"{rows[-1][w]}" for w in windows), flush=True)
    print(markdown(rows, ("candidate", *windows)))
    chosen = [w for w in windows if w != "test"]
    rules = [r for r in rows if not r["candidate"].startswith("diagnostic")]
    agree = [r["candidate"] for r in rules[1:]
             if all(r[w] is not None and r[w] > rules[0][w] for w in chosen)]  # fmt: skip
    result = {
        "benchmark": "twin_screen",
        "machine": machine(),
        "baseline": {w: rows[0][w] for w in windows},
        "better_than_baseline_on_every_validation_window": agree,
        "windows": {w: [str(panel.dates[a]), str(panel.dates[b - 1])] for w, (a, b) in windows.items()},
        "bundles": {w: str(b) for w, b in bundles.items()},
        "engine_every_days": args.every_days,
        "refresh_days": args.refresh_days,
        "refresh_reset_river": args.refresh_reset_river,
        "engine_seconds": {w: traces[w].get("engine_seconds") for w in windows},
        "refresh_training_seconds": {w: traces[w].get("training_seconds") for w in windows},
        "refresh_bundles": {w: traces[w].get("swaps") for w in windows},
        "engine_replay": {w: traces[w]["metrics"] for w in windows},
        "minmax_reference": reference,
        "compared_at_the_engines_inventory": at,
        "grid": FINE_GRID,
        "candidates": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
