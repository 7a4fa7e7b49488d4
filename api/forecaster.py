"""Forecasts at the gateway from the installed bundle and the ledger's own sales history.

For each SKU asked about, the daily units sold (sales and fulfilments minus returns and voids,
by the local calendar day of each event's time) are read from the ledger's event log up to the
last closed day (the day before the ledger clock's), folded into a
``feature_store.streaming.SeriesState`` (the one definition of every feature, identical to the
batch side training used), and the rows for horizons 1..H of all SKUs are scored in one batched
ONNX Runtime call (``edge_runtime.scoring.Scorer``). Mean and P90 per day are averaged over the
horizon; stock-out risk is added by the caller on current available-to-promise.

>>> math.ceil(2.5), MAX_HORIZON
(3, 28)
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge_runtime.scoring import Scorer
from feature_store.spec import MAX_HORIZON
from feature_store.streaming import SeriesState
from models.bundle import Bundle

_SIGN = {"sale": 1, "fulfilment": 1, "return": -1, "void": -1}
_HISTORY_DAYS = 400  # covers the longest feature window (91 days) and days_since_sale's cap
_CHUNK = 500


class LedgerForecaster:
    """Scores a bundle's ``demand`` model on daily sales read from the ledger file.

    >>> LedgerForecaster.__name__
    'LedgerForecaster'
    """

    def __init__(self, ledger_path: Path, bundle: Bundle):
        self.scorer = Scorer.from_bundle(bundle)
        self.model_version = bundle.model_version
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            f"file:{ledger_path}?mode=ro", uri=True, check_same_thread=False
        )

    def _daily(self, skus: list[str], close: np.datetime64) -> dict[str, dict[str, float]]:
        first = str(close - _HISTORY_DAYS)
        out: dict[str, dict[str, float]] = defaultdict(dict)
        with self._lock:
            for i in range(0, len(skus), _CHUNK):
                chunk = skus[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    "SELECT sku, substr(event_time, 1, 10) AS day, type, sum(qty) FROM events"
                    f" WHERE sku IN ({marks}) AND substr(event_time, 1, 10) BETWEEN ? AND ?"
                    " GROUP BY sku, day, type",
                    (*chunk, first, str(close)),
                )
                for sku, day, kind, qty in rows:
                    days = out[sku]
                    days[day] = days.get(day, 0.0) + _SIGN.get(kind, 0) * float(qty)
        return out

    def forecast(
        self, skus: list[str], horizon_days: float, clock_day: np.datetime64
    ) -> dict[str, tuple[float, float]]:
        """``sku -> (mean per day, P90 per day)`` over the horizon, for SKUs with history."""
        close = np.datetime64(clock_day, "D") - 1
        horizons = list(range(1, min(MAX_HORIZON, math.ceil(horizon_days)) + 1))
        daily = self._daily(list(dict.fromkeys(skus)), close)
        known = [s for s in dict.fromkeys(skus) if daily.get(s)]
        if not known:
            return {}
        blocks = [_series(daily[s], close).feature_rows(close, horizons) for s in known]
        mean, _, p90 = self.scorer.demand(np.vstack(blocks))
        h = len(horizons)
        mean = np.maximum(mean.reshape(len(known), h), 0.0).mean(axis=1)
        p90 = np.maximum(p90.reshape(len(known), h).mean(axis=1), mean)
        return {s: (float(m), float(p)) for s, m, p in zip(known, mean, p90, strict=True)}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _series(days: dict[str, float], close: np.datetime64) -> SeriesState:
    """The SKU's state after folding every day from its first day with an event to ``close``."""
    state = SeriesState()
    day = np.datetime64(min(days), "D")
    while day <= close:
        state.close_day(max(days.get(str(day), 0.0), 0.0))
        day += 1
    return state
