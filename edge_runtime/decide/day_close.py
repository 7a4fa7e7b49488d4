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

import numpy as np

from edge_runtime.decide.forecast_policy import DailyForecasts
from edge_runtime.decide.service_level import buffer_exceeded_every
from edge_runtime.forecast.daily_sales import DailySales
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
    ):
        if "demand" not in bundle.models:
            raise BundleError(f"bundle {bundle.path} has no demand model; it has {bundle.models}")
        self.bundle = bundle
        self.model_version = bundle.model_version
        # ``sessions``: the verification's own, reused rather than opened a second time.
        self.scorer = Scorer.from_bundle(bundle, threads=threads, sessions=sessions)
        self.horizons = list(range(1, min(int(forecast_days), MAX_HORIZON) + 1))
        self.correction = correction or LevelCorrection()
        self.buffer_every_days = buffer_every_days  # > 1: marginal buffers with each re-score
        self.central: DailyForecasts | None = None  # last uncorrected forecast (to learn from)
        self.central_scale = np.ones(0)  # each of its SKUs' typical day, in units
        self._scale_col = index(SCALE_FEATURE)

    def learn(self, closed: list[tuple[np.datetime64, dict[str, float]]]) -> int:
        """Learn from the actual units of newly closed days; returns how many SKU-days."""
        central = self.central
        if central is None:
            return 0
        learnt = 0
        for day, units in closed:
            h = int((day - central.first_close).astype(int))
            if not 1 <= h <= central.mean.shape[2]:
                continue
            for i, sku in enumerate(central.skus):
                scale = self.central_scale[i]
                actual = units.get(sku, 0.0)
                self.correction.learn_one(sku, central.mean[i, 0, h - 1] / scale, actual / scale)
                learnt += 1
        return learnt

    def rescore(self, sales: DailySales) -> DailyForecasts | None:
        """Forecasts of every SKU with a closed day, as of ``sales.last_closed``."""
        close = sales.last_closed
        skus = sales.skus()
        if close is None or not skus:
            return None
        horizons = self.horizons
        X = sales.panel.feature_matrix(close, horizons)  # every SKU, in ``skus`` order
        mean, _, p90 = self.scorer.demand(X)  # one batched ONNX Runtime call
        n, h = len(skus), len(horizons)
        mean = np.maximum(mean.reshape(n, h).astype(np.float64), 0.0)
        p90 = np.maximum(p90.reshape(n, h).astype(np.float64), mean)
        scale = X[::h, self._scale_col].astype(np.float64) + SCALE_OFFSET
        self.central = DailyForecasts(skus, close, mean[:, None, :], p90[:, None, :])
        self.central_scale = scale
        shift = self._shift(skus, mean[:, 0], scale)
        corrected_mean = np.maximum(mean + shift[:, None], 0.0)
        corrected_p90 = np.maximum(p90 + shift[:, None], corrected_mean)
        buffer = None
        if self.buffer_every_days > 1:
            history = sales.history.matrix(skus)
            buffer = buffer_exceeded_every(history, self.buffer_every_days)
        return DailyForecasts(
            skus, close, corrected_mean[:, None, :], corrected_p90[:, None, :], buffer
        )

    def _shift(self, skus: list[str], first: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Per-SKU shift in units: the River correction of the next day's forecast."""
        predict = self.correction.predict_one
        return np.fromiter(
            (
                predict(sku, c / s) * s - c
                for sku, c, s in zip(skus, first.tolist(), scale.tolist(), strict=True)
            ),
            dtype=np.float64,
            count=len(skus),
        )
