"""shelfcast's own forecast inside the twin: the bundle's ONNX demand model plus River's online
correction, exactly the pieces a store gateway runs.

Each day the forecaster rebuilds the feature-store features (``feature_store.batch``, the one
definition of every feature) from the store's *observed sales* up to that day's close, scores
horizons 1..H with the bundle's ``demand`` model through the gateway's ONNX scoring
(``edge_runtime.scoring.Scorer``) (mean and P90 per day), and
shifts each SKU's forecast by the River correction (``edge_runtime.online.LevelCorrection``),
which learns from yesterday's one-day-ahead forecast and today's sales. Days that closed with
an empty shelf are censored (sales < demand): River does not learn from them, and the features
see the larger of the day's sales and its forecast (demand unconstraining), so a stock-out does
not teach the model that demand fell.

>>> EdgeModelForecaster.__name__
'EdgeModelForecaster'
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shelfcast.twin import DemandPanel, StoreConfig, StoreState

_WINDOW = 366  # covers every feature window (longest: days_since_sale, capped at 365)


@dataclass
class EdgeModelForecaster:
    """Forecast from a model bundle's ONNX demand model, corrected online with River.

    ``online=False`` turns the River correction off (to measure what it adds);
    ``unconstrain=False`` feeds the features raw (censored) sales on stock-out days.

    >>> EdgeModelForecaster("var/bundle", online=False).name
    'shelfcast_onnx'
    """

    bundle_path: str | Path
    online: bool = True
    unconstrain: bool = True
    name: str = ""
    model_version: str = ""
    train_end: str | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    # day index -> (mean, p90) arrays (n_skus, horizons) as corrected and used that day
    trace: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or ("shelfcast_onnx+river" if self.online else "shelfcast_onnx")

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None:
        """Load and verify the bundle, open an ONNX Runtime session; warn if the replay overlaps
        the bundle's training data (the replay should be held-out weeks)."""
        from edge_runtime.scoring import Scorer
        from feature_store.spec import FEATURE_STORE_VERSION
        from models.bundle import load_bundle

        bundle = load_bundle(self.bundle_path, FEATURE_STORE_VERSION)
        self.model_version = bundle.model_version
        self._scorer = Scorer.from_bundle(bundle)  # the gateway's own ONNX scoring
        self.train_end = _train_end(bundle.metadata)
        if self.train_end and np.datetime64(self.train_end, "D") >= panel.dates[start]:
            warnings.warn(
                f"bundle {self.bundle_path} was trained on data up to {self.train_end}, "
                f"which overlaps the replay from {panel.dates[start]}: not a held-out test",
                stacklevel=2,
            )
        self._panel = panel
        seen = panel.units[:, :start] > 0
        # River learns on each SKU's errors in units of its typical day (one store-wide model
        # must not be dominated by the few SKUs that sell in the hundreds).
        self._scale = np.maximum(panel.units[:, max(0, start - 91) : start].mean(axis=1), 1.0)
        self._first = np.where(seen.any(axis=1), np.argmax(seen, axis=1), start)
        self._skus = [str(s) for s in panel.skus]
        self._correction = _new_correction() if self.online else None
        self._yesterday: np.ndarray | None = None
        self._yesterday_day = -2
        self._expected = np.zeros(panel.n_skus)
        self._lifted: dict[int, np.ndarray] = {}
        self._cache = {}
        self.trace = {}

    def observe(self, state: StoreState) -> None:
        """Learn from today's sales against yesterday's one-day-ahead forecast (uncensored only)."""
        if self._yesterday_day != state.day - 1:
            return  # no one-day-ahead forecast was made yesterday
        out = state.on_hand <= 0
        if self.unconstrain and out.any():
            # The shelf ran empty: today's sales understate demand. Features see the larger of
            # sales and what was expected, so a stock-out does not talk the forecast down.
            sold = state.sales[:, -1]
            self._lifted[state.day] = np.where(out, np.maximum(sold, self._expected), sold)
        if self._correction is None:
            return
        sold = state.sales[:, -1] / self._scale
        central = self._yesterday / self._scale
        learn = self._correction.learn_one
        for i in np.flatnonzero(state.on_hand > 0):
            learn(self._skus[i], float(central[i]), float(sold[i]))

    def forecast(self, state: StoreState, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        mean, p90 = self._central(state, max(horizon, 14))
        self._yesterday, self._yesterday_day = mean[:, 0], state.day
        if self._correction is not None:
            predict = self._correction.predict_one
            central = mean[:, 0] / self._scale
            shift = np.array(
                [predict(s, float(c)) - float(c) for s, c in zip(self._skus, central, strict=True)]
            )
            shift *= self._scale
            mean = np.maximum(mean + shift[:, None], 0.0)
            p90 = np.maximum(p90 + shift[:, None], mean)
        self._expected = mean[:, 0]
        self.trace[state.day] = (mean, p90)  # what the gateway would have used that day
        return mean[:, :horizon], p90[:, :horizon]

    def _central(self, state: StoreState, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """The bundle model's mean and P90 for horizons 1..``horizon`` from today's close."""
        key = state.day
        if key in self._cache and self._cache[key][0].shape[1] >= horizon:
            return self._cache[key]
        from feature_store.batch import Panel, close_features, forecast_rows

        lo = max(0, state.day + 1 - _WINDOW)
        units = state.sales[:, lo:].astype(np.float64, copy=True)
        for day, lifted in self._lifted.items():
            if day >= lo:
                units[:, day - lo] = lifted
        before = (np.arange(lo, state.day + 1)[None, :]) < self._first[:, None]
        units[before] = np.nan  # a series starts at its first sale, as in training
        price = None
        if self._panel.price_daily is not None:  # as in training: the day's price, carried forward
            price = self._panel.price_daily[:, lo : state.day + 1]
        elif self._panel.price is not None:
            price = np.repeat(self._panel.price[:, None], units.shape[1], axis=1)
        panel = Panel(
            keys=[(self._panel.store_id, s) for s in self._skus],
            start=self._panel.dates[lo],
            units=units,
            price=price,
        )
        close = close_features(panel)
        X, series, h = forecast_rows(panel, close, units.shape[1] - 1, range(1, horizon + 1))
        mean_rows, _, p90_rows = self._scorer.demand(X)
        n = len(self._skus)
        mean, p90 = np.zeros((n, horizon)), np.zeros((n, horizon))
        mean[series, h - 1] = mean_rows
        p90[series, h - 1] = p90_rows
        self._cache = {key: (mean, p90)}
        return mean, p90


def _new_correction():
    from edge_runtime.online import LevelCorrection

    return LevelCorrection()


def _train_end(metadata: dict) -> str | None:
    """The last day of training data a bundle's metadata records, under the names training uses."""
    for key in ("train_end", "training_end", "data_end"):
        if metadata.get(key):
            return str(metadata[key])[:10]
    rng = metadata.get("training_data_range") or metadata.get("training_data") or {}
    if isinstance(rng, dict):
        for key in ("end", "to", "last", "max"):
            if rng.get(key):
                return str(rng[key])[:10]
    if isinstance(rng, list | tuple) and len(rng) == 2:
        return str(rng[1])[:10]
    return None
