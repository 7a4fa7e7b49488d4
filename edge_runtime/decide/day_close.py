"""The day-close re-score: every SKU's demand forecast in one batched ONNX call, River-corrected.

At each store day's close (and at start-up, and right after a bundle swap) the gateway hands its
:class:`~edge_runtime.forecast.daily_sales.DailySales` to :meth:`DayCloseModel.rescore`:

1. the feature rows of every SKU with history for horizons ``1..forecast_days`` from the last
   closed day (``feature_store.streaming.feature_matrix``, the training definitions, for all
   SKUs at once),
   scored in **one** ``Scorer.demand`` call (mean, P50, P90 per row, in units);
2. the River online correction (``edge_runtime.forecast.online.LevelCorrection``) learns from each closed
   day's actual units against what the previous re-score forecast for that day, in units of the
   SKU's typical day (``feature_store.spec.SCALE_FEATURE + SCALE_OFFSET``), and shifts each SKU's
   forecast (all horizons, mean and P90 alike) by what its level factor adds to the next day;
3. the result is a one-close :class:`~edge_runtime.decide.forecast_policy.DailyForecasts` table: what the
   decision policy and the API's ``/v1/predictions`` read until the next close.

>>> DayCloseModel.__name__
'DayCloseModel'
"""

from __future__ import annotations

import threading

import numpy as np

from edge_runtime.decide.forecast_policy import DailyForecasts
from edge_runtime.decide.service_level import buffer_exceeded_every
from edge_runtime.forecast.daily_sales import DailySales, DayUnits
from edge_runtime.forecast.demand_distribution import floored_forecast
from edge_runtime.forecast.online import ForecastCorrection, LevelCorrection
from edge_runtime.forecast.scoring import Scorer
from feature_store.spec import MAX_HORIZON, SCALE_FEATURE, SCALE_OFFSET, index
from models.bundle import Bundle, BundleError


class DayCloseModel:
    """A verified bundle's demand model plus the store's online correction (see module doc).

    ``correction`` is kept across bundle swaps by the gateway: what the store learnt about its
    own errors is about the store, and re-learns quickly if the new model errs differently.
    """

    def __init__(
        self,
        bundle: Bundle,
        forecast_days: int = 7,
        threads: int = 1,
        correction: ForecastCorrection | None = None,
        buffer_every_days: float = 0.0,
        sessions: dict | None = None,
        decide_days: int | None = None,
    ):
        if "demand" not in bundle.models:
            raise BundleError(f"bundle {bundle.path} has no demand model; it has {bundle.models}")
        self.bundle = bundle
        self.model_version = bundle.model_version
        # ``sessions``: the verification's own, reused rather than opened a second time.
        self.scorer = Scorer.from_bundle(bundle, threads=threads, sessions=sessions)
        self.horizons = list(range(1, min(int(forecast_days), MAX_HORIZON) + 1))
        # Horizons scored at the close (what decisions read); the others when first asked for.
        n_h = len(self.horizons)
        self.decide_days = n_h if decide_days is None else max(1, min(int(decide_days), n_h))
        self.pending: LaterHorizons | None = None  # the last re-score's other horizons
        self.correction = correction or LevelCorrection()
        self.buffer_every_days = buffer_every_days  # > 1: marginal buffers with each re-score
        self.central: DailyForecasts | None = None  # last uncorrected forecast (to learn from)
        self.central_scale = np.ones(0)  # each of its SKUs' typical day, in units
        self._scale_col = index(SCALE_FEATURE)

    def learn(self, closed: list[tuple[np.datetime64, DayUnits]]) -> int:
        """Learn from the actual units of newly closed days; returns how many SKU-days. A SKU
        whose shelf closed the day empty (``DayUnits.censored``) is not learnt from that day:
        its figure is an estimate, and central training gives such a day no weight either."""
        central = self.central
        if central is None:
            return 0
        days = [int((day - central.first_close).astype(int)) for day, _ in closed]
        if self.pending is not None and max(days, default=0) > central.mean.shape[2]:
            central = self.pending.whole()[0]  # days beyond the horizons decisions read
        learnt = 0
        skus, scale = central.skus, self.central_scale
        for h, (_, units) in zip(days, closed, strict=True):
            if not 1 <= h <= central.mean.shape[2]:
                continue
            # Every SKU's pair in one division each (the same float64 quotients as one by one).
            forecast = (central.mean[:, 0, h - 1] / scale).tolist()
            get = units.get
            sold = np.fromiter((get(s, 0.0) for s in skus), np.float64, len(skus))
            learnt += self.correction.learn_many(
                skus, forecast, (sold / scale).tolist(), units.censored
            )
        return learnt

    def rescore(self, sales: DailySales) -> DailyForecasts | None:
        """Forecasts of every SKU with a closed day, as of ``sales.last_closed``."""
        close = sales.last_closed
        skus = sales.skus()
        if close is None or not skus:
            return None
        n, h, k = len(skus), len(self.horizons), self.decide_days
        X = sales.panel.feature_matrix(close, self.horizons)  # every SKU, in ``skus`` order
        X = X.reshape(n, h, X.shape[1])
        scale = X[:, 0, self._scale_col].astype(np.float64) + SCALE_OFFSET
        # One batched ONNX Runtime call on the horizons decisions read.
        mean, p90 = _units(self.scorer, X[:, :k])
        self.central = DailyForecasts(skus, close, mean[:, None, :], p90[:, None, :])
        self.central_scale = scale
        shift = self._shift(skus, mean[:, 0], scale)
        buffer = None
        if self.buffer_every_days > 1:
            history = sales.history.matrix(skus)
            buffer = buffer_exceeded_every(history, self.buffer_every_days)
        table = _corrected(self.central, shift, buffer)
        self.pending = None if k == h else LaterHorizons(self.scorer, X[:, k:], self.central,
                                                         table, shift)  # fmt: skip
        return table

    def whole(self, table: DailyForecasts | None) -> DailyForecasts | None:
        """``table`` with every horizon (the API's, the snapshot's): the last re-score's other
        horizons scored now when ``table`` is that re-score's and they are not yet."""
        pending = self.pending
        if pending is not None and table is pending.table:
            return pending.whole()[1]
        return table

    def whole_central(self) -> DailyForecasts | None:
        """The last uncorrected forecast with every horizon (what a snapshot keeps)."""
        pending = self.pending
        if pending is not None and self.central is pending.central:
            return pending.whole()[0]
        return self.central

    def _shift(self, skus: list[str], first: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Per-SKU shift in units: the River correction of the next day's forecast."""
        return self.correction.predict_many(skus, first / scale) * scale - first


def _units(scorer: Scorer, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and P90 in units, (SKUs, horizons), of feature rows ``X`` (SKUs, horizons, features)."""
    n, h = X.shape[:2]
    mean, _, p90 = scorer.demand(X.reshape(n * h, X.shape[2]))
    return floored_forecast(
        mean.reshape(n, h).astype(np.float64), p90.reshape(n, h).astype(np.float64)
    )


def _corrected(
    central: DailyForecasts, shift: np.ndarray, buffer: np.ndarray | None
) -> DailyForecasts:
    """The forecast decisions use: each SKU's central one moved by River's ``shift``."""
    mean, p90 = floored_forecast(
        central.mean + shift[:, None, None], central.p90 + shift[:, None, None]
    )
    return DailyForecasts(central.skus, central.first_close, mean, p90, buffer)


class LaterHorizons:
    """A re-score's horizons beyond those decisions read: their feature rows, scored the first
    time the whole table is asked for (the API, a snapshot, River after a gap of days).

    Why: decisions read the first ``decide_days`` horizons only (lead time + review period),
    and scoring a store's every SKU for all ``forecast_days`` was most of a close's model
    time. The model scores each row on its own, so scoring them later gives the same values.
    Safe to call from another thread (the API's): one scoring, under a lock.
    """

    def __init__(self, scorer: Scorer, X: np.ndarray, central: DailyForecasts,
                 table: DailyForecasts, shift: np.ndarray):  # fmt: skip
        self.scorer, self.central, self.table = scorer, central, table
        self._rows, self._shift = np.ascontiguousarray(X), shift
        self._lock = threading.Lock()
        self._whole: tuple[DailyForecasts, DailyForecasts] | None = None

    def whole(self) -> tuple[DailyForecasts, DailyForecasts]:
        """The central forecast and the corrected table with every horizon."""
        with self._lock:
            if self._whole is None:
                mean, p90 = _units(self.scorer, self._rows)
                c = self.central
                central = DailyForecasts(
                    c.skus, c.first_close,
                    np.concatenate([c.mean, mean[:, None, :]], axis=2),
                    np.concatenate([c.p90, p90[:, None, :]], axis=2),
                )  # fmt: skip
                self._whole = central, _corrected(central, self._shift, self.table.buffer)
                self._rows = None
            return self._whole
