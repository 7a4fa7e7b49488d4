"""Replenishment policies the digital twin compares on the same real demand.

- :class:`MinMaxPolicy`: the classic rule from historical averages (what most stores run today).
- :class:`OrderUpToPolicy`: the gateway's own decision policy (order-up-to with safety stock
  over lead time plus review period, packs, capacity, open orders; run through
  ``twin.gateway_engine.EngineDecisions``) driven by another :class:`Forecaster`, e.g. the
  best statsforecast baseline (:class:`StatsForecastForecaster`). shelfcast itself is the
  gateway's own day close, ``twin.gateway_engine.GatewayPolicy``.
- :class:`MarginalOrderUpToPolicy`: the same with each SKU's buffer sized by marginal
  analysis (``edge_runtime.decide.service_level``): the single-day demand exceeded once every N days.

All work on arrays over SKUs.

>>> import numpy as np
>>> from twin.store import DemandPanel, StoreConfig, simulate
>>> panel = DemandPanel.from_arrays("s", ["a"], np.datetime64("2024-01-01") + np.arange(70),
...                                 [[3.0] * 70])
>>> run = simulate(panel, OrderUpToPolicy(MovingAverageForecaster(), z=1.3), start=35)
>>> round(run.metrics()["fill_rate"], 2)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from edge_runtime.decide.forecast_policy import DailyForecasts
from edge_runtime.decide.service_level import buffer_exceeded_every
from edge_runtime.decide.stockout import stockout_risk
from edge_runtime.forecast.demand_distribution import Z90
from twin.gateway_engine import EngineDecisions
from twin.store import DemandPanel, StoreConfig, StoreState, sku_parameters


class Forecaster(Protocol):
    """Daily demand forecast per SKU for the next ``horizon`` days: (mean, p90), each (n, horizon).

    >>> from twin.store import DemandPanel, simulate
    >>> class Flat:  # any object with these three members
    ...     name = "flat"
    ...     def prepare(self, panel, start, config):
    ...         pass
    ...     def forecast(self, state, horizon):
    ...         mean = np.full((len(state.on_hand), horizon), 3.0)
    ...         return mean, 1.5 * mean
    >>> panel = DemandPanel.from_arrays("s", ["a"], np.datetime64("2024-01-01") + np.arange(70),
    ...                                 [[3.0] * 70])
    >>> run = simulate(panel, OrderUpToPolicy(Flat(), z=1.0), start=35)
    >>> run.policy, run.metrics()["fill_rate"]
    ('order_up_to[flat]', 1.0)
    """

    name: str

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None: ...

    def forecast(self, state: StoreState, horizon: int) -> tuple[np.ndarray, np.ndarray]: ...


def trailing(sales: np.ndarray, days: int) -> np.ndarray:
    """The last ``days`` columns of a sales history (fewer at the very start)."""
    return sales[:, max(0, sales.shape[1] - days) :]


@dataclass
class MinMaxPolicy:
    """Classic min/max from historical averages, recomputed at every review.

    ``avg`` = mean daily sales over the last ``history_days``; ``min`` = ``avg * (L + R +
    safety_days)``; ``max`` = ``min + avg * R``. At a review, when the inventory position is at
    or below ``min``, order up to ``max``.

    >>> MinMaxPolicy(safety_days=3).name
    'minmax'
    """

    safety_days: float = 3.0
    history_days: int = 91
    name: str = "minmax"

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        """Nothing to fit: the rule reads the trailing history at each review."""

    def order(self, state: StoreState) -> np.ndarray:
        avg = trailing(state.sales, self.history_days).mean(axis=1)
        lead, review = state.config.lead_time, state.config.review_period
        lo = avg * (lead + review + self.safety_days)
        hi = lo + avg * review
        pos = state.position
        return np.where(pos <= lo, hi - pos, 0.0)


class _ForecastDriven:
    """What both order-up-to policies share: the forecaster's lifecycle and the stock-out
    prediction (the edge's own ``stockout_risk`` on the same forecast)."""

    forecaster: Forecaster
    name: str
    label: ClassVar[str] = "order_up_to"

    def _auto_name(self) -> str:
        return f"{self.label}[{self.forecaster.name}]"

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        auto = self.name == self._auto_name()
        self.forecaster.prepare(panel, start, config)
        if auto:  # the forecaster may name itself once fitted (e.g. the chosen baseline)
            self.name = self._auto_name()
        pack, capacity, _ = sku_parameters(panel, start, config)
        self._skus = [str(s) for s in panel.skus]
        self._dates = panel.dates
        self._decisions = EngineDecisions(
            panel.store_id, self._skus, config, pack, capacity, getattr(self, "z", 1.645)
        )

    def receive(self, arrived: np.ndarray) -> None:
        """Receipts close the gateway policy's open orders."""
        self._decisions.receive(arrived)

    def _orders(self, state: StoreState, buffer: np.ndarray | None) -> np.ndarray:
        """The gateway's decisions on this forecast (over its protection days) at today's close."""
        mean, p90 = self.forecaster.forecast(state, self._decisions.protection_days)
        table = DailyForecasts(
            self._skus, self._dates[state.day], mean[:, None, :], p90[:, None, :], buffer
        )
        return self._decisions.orders(table, state.on_hand, state.on_order)

    def observe(self, state: StoreState) -> None:
        if hasattr(self.forecaster, "observe"):
            self.forecaster.observe(state)

    def stockout_probability(
        self, state: StoreState, arrivals: np.ndarray, horizon: int
    ) -> np.ndarray:
        """P(the shelf empties within ``horizon`` days): the edge's own ``stockout_risk`` on this
        forecast, counting orders due in that window as stock (optimistic about their timing)."""
        mean, p90 = self.forecaster.forecast(state, horizon)
        stock = state.on_hand + arrivals[:, :horizon].sum(axis=1)
        return stockout_risk(mean.mean(axis=1), p90.mean(axis=1), stock, horizon).probability


@dataclass
class OrderUpToPolicy(_ForecastDriven):
    """The edge runtime's own order-up-to rule (``edge_runtime.decide.replenishment``) on a forecast.

    The forecaster supplies daily mean and P90 over lead time + review period; their average
    gives the rule's daily mean, and the daily sigma comes from the edge's demand distribution
    (``edge_runtime.forecast.demand_distribution.daily_sigma``). ``z`` is the service-level factor.

    >>> OrderUpToPolicy(MovingAverageForecaster(), z=1.645).name
    'order_up_to[moving_average]'
    """

    forecaster: Forecaster
    z: float = 1.645
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self._auto_name()

    def order(self, state: StoreState) -> np.ndarray:
        return self._orders(state, None)


@dataclass
class MarginalOrderUpToPolicy(_ForecastDriven):
    """The edge's order-up-to rule with marginal-analysis buffers
    (``edge_runtime.decide.replenishment.order_quantities_with_buffer`` and
    ``edge_runtime.decide.service_level.buffer_exceeded_every``).

    ``S = forecast mean over lead time + review period + b``, ``b`` the single-day demand the
    SKU's last ``history_days`` of observed sales exceeded once every ``every_days`` days.
    ``every_days`` is the one parameter (more days, more stock).

    >>> import numpy as np
    >>> from twin.store import DemandPanel, simulate
    >>> lumpy = np.where(np.arange(200) % 20 == 0, 60.0, 3.0)
    >>> panel = DemandPanel.from_arrays("s", ["a"], np.datetime64("2024-01-01") + np.arange(200),
    ...                                 [lumpy])
    >>> runs = [simulate(panel, MarginalOrderUpToPolicy(MovingAverageForecaster(), n), start=150)
    ...         for n in (10, 30)]
    >>> [r.metrics()["lost_units"] for r in runs]
    [57.0, 0.0]
    """

    forecaster: Forecaster
    every_days: float = 50.0
    history_days: int = 364
    name: str = ""
    label: ClassVar[str] = "marginal_order_up_to"

    def __post_init__(self) -> None:
        self.name = self.name or self._auto_name()

    def order(self, state: StoreState) -> np.ndarray:
        buffer = buffer_exceeded_every(trailing(state.sales, self.history_days), self.every_days)
        return self._orders(state, buffer)


@dataclass
class MovingAverageForecaster:
    """Mean of the last ``days`` days, flat over the horizon; P90 from the same days' spread.

    >>> MovingAverageForecaster(days=28).name
    'moving_average'
    """

    days: int = 28
    name: str = "moving_average"

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        """Nothing to fit."""

    def forecast(self, state: StoreState, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        recent = trailing(state.sales, self.days)
        mean = recent.mean(axis=1)
        p90 = mean + Z90 * recent.std(axis=1)
        return np.repeat(mean[:, None], horizon, 1), np.repeat(p90[:, None], horizon, 1)


@dataclass
class ClairvoyantLevelForecaster:
    """A reference, not a forecaster a store could run: told each SKU's true mean demand over
    the next ``days`` days (uncensored), it forecasts that level flat. Driving the marginal rule,
    it shows what a perfect few-week level forecast is worth, without knowing which day demand
    lands on.

    ``spike_clip`` makes it the *base-level* reference: each future day counts at most
    ``spike_clip`` times the SKU's mean observed sales over the last 91 days (at least 0.5 a
    day). It is then told the coming weeks' ordinary demand exactly (seasonal ramps included) but
    not the size of the rare large orders, which is all a forecast from sales history can hope
    to know of them.

    >>> import numpy as np
    >>> from twin.store import DemandPanel, StoreState, StoreConfig
    >>> p = DemandPanel.from_arrays("s", ["a"], np.datetime64("2024-01-01") + np.arange(6),
    ...                             [[9.0, 0, 0, 4, 0, 2]])
    >>> f = ClairvoyantLevelForecaster(days=3); f.prepare(p, 1, StoreConfig())
    >>> s = StoreState(2, np.zeros(1), np.zeros(1), p.units[:, :3], np.ones(1), np.full(1, 99.0),
    ...                StoreConfig())
    >>> f.forecast(s, 2)[0].tolist()
    [[2.0, 2.0]]
    >>> base = ClairvoyantLevelForecaster(days=3, spike_clip=1.0); base.prepare(p, 1, StoreConfig())
    >>> base.name, base.forecast(s, 1)[0].tolist()  # the 4-unit day counts as 3 (the 91-day mean)
    ('clairvoyant_base_level', [[1.6666666666666667]])
    """

    days: int = 28
    spike_clip: float | None = None
    name: str = ""
    _units: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        default = "clairvoyant_level" if self.spike_clip is None else "clairvoyant_base_level"
        self.name = self.name or default

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        """Keep the panel's true demand (the future this reference is told)."""
        self._units = panel.units

    def forecast(self, state: StoreState, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        ahead = self._units[:, state.day + 1 : state.day + 1 + self.days]
        if not ahead.shape[1]:  # the data's last day: no future left to be told
            mean = p90 = trailing(state.sales, self.days).mean(axis=1)
        else:
            if self.spike_clip is not None:
                usual = np.maximum(trailing(state.sales, 91).mean(axis=1), 0.5)
                ahead = np.minimum(ahead, self.spike_clip * usual[:, None])
            mean = ahead.mean(axis=1)
            p90 = mean + Z90 * ahead.std(axis=1)
        return np.repeat(mean[:, None], horizon, 1), np.repeat(p90[:, None], horizon, 1)


# The statsforecast candidates: seasonal naive, exponential smoothing (plain and weekly-seasonal)
# and the intermittent-demand methods. AutoETS is available ("auto_ets") but not a default: it
# costs ~30 s per refit of 200 series on one core, and the twin refits at every review.
BASELINE_CANDIDATES = ("seasonal_naive", "ses", "seasonal_es", "croston", "tsb", "adida")


def _baseline_model(name: str, season: int):
    from statsforecast import models as sm

    makers = {
        "seasonal_naive": lambda: sm.SeasonalNaive(season_length=season),
        "auto_ets": lambda: sm.AutoETS(season_length=season),
        "croston": lambda: sm.CrostonOptimized(),
        "tsb": lambda: sm.TSB(alpha_d=0.2, alpha_p=0.2),
        "adida": lambda: sm.ADIDA(),
        "ses": lambda: sm.SimpleExponentialSmoothingOptimized(),
        "seasonal_es": lambda: sm.SeasonalExponentialSmoothingOptimized(season_length=season),
        "window_average": lambda: sm.WindowAverage(window_size=28),
    }
    if name not in makers:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(makers)}")
    return makers[name]()


def statsforecast_predict(
    history: np.ndarray, names: tuple[str, ...], horizon: int, season: int = 7
) -> dict[str, np.ndarray]:
    """Fit each named statsforecast model on every row of ``history`` and forecast ``horizon``
    days: name -> (n, horizon) array of means (clipped at zero)."""
    import pandas as pd
    from statsforecast import StatsForecast

    n, t = history.shape
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(n), t),
            "ds": np.tile(np.arange(t), n),
            "y": history.reshape(-1),
        }
    )
    models = [_baseline_model(name, season) for name in names]
    for model, name in zip(models, names, strict=True):
        model.alias = name
    fc = StatsForecast(models=models, freq=1, n_jobs=1).forecast(df=frame, h=horizon)
    fc = fc.sort_values(["unique_id", "ds"])
    return {
        name: np.maximum(fc[name].to_numpy(dtype=np.float64).reshape(n, horizon), 0.0)
        for name in names
    }


@dataclass
class StatsForecastForecaster:
    """The best statsforecast baseline, chosen on weeks just before the replay, refit at every
    review on the trailing ``lookback`` days of sales. P90 = mean + z90 x the trailing 28-day
    standard deviation (statsforecast's intermittent models give no intervals).

    >>> StatsForecastForecaster(candidates=("seasonal_naive",)).name
    'statsforecast'
    """

    candidates: tuple[str, ...] = BASELINE_CANDIDATES
    lookback: int = 182
    select_weeks: int = 4
    season: int = 7
    name: str = "statsforecast"
    chosen: str = ""
    selection: dict[str, float] = field(default_factory=dict)
    _cache: tuple[int, int, np.ndarray] | None = field(default=None, repr=False)

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        """Pick the candidate with the lowest mean RMSSE over weekly origins before ``start``."""
        self._cache = None
        if len(self.candidates) == 1:
            self.chosen = self.candidates[0]
            return
        errors = {name: [] for name in self.candidates}
        for w in range(self.select_weeks, 0, -1):
            origin = start - 7 * w
            hist = panel.units[:, max(0, origin - self.lookback) : origin]
            actual = panel.units[:, origin : origin + 7]
            scale = np.sqrt(np.mean(np.diff(hist, axis=1) ** 2, axis=1))
            keep = scale > 0
            preds = statsforecast_predict(hist, self.candidates, 7, self.season)
            for name, pred in preds.items():
                rmse = np.sqrt(np.mean((pred - actual) ** 2, axis=1))
                errors[name].append(np.mean(rmse[keep] / scale[keep]))
        self.selection = {name: float(np.mean(v)) for name, v in errors.items()}
        self.chosen = min(self.selection, key=self.selection.get)
        self.name = f"statsforecast:{self.chosen}"

    def forecast(self, state: StoreState, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache and self._cache[0] == state.day and self._cache[1] >= horizon:
            mean = self._cache[2][:, :horizon]
        else:
            hist = trailing(state.sales, self.lookback)
            mean = statsforecast_predict(hist, (self.chosen,), horizon, self.season)[self.chosen]
            self._cache = (state.day, horizon, mean)
        spread = trailing(state.sales, 28).std(axis=1)[:, None]
        return mean, mean + Z90 * spread
