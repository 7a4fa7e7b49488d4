"""The last store-day close's scoring, kept in the derived-state snapshot for the next start.

A start with a model bundle used to re-score every SKU before consuming anything: the feature
matrix, the demand and anomaly models in ONNX Runtime, the River correction. That scoring is a
function of the closed days (fixed once closed: late events join the open day), the River
correction (which learns only at a close, just before its re-score) and the model. So the
snapshot keeps what the last close produced, with the model it came from, and a start whose
sales series end at that same close, for the same SKUs, under the same model, takes it as it
is; any other start (a day closed in the log after the snapshot, another bundle, another
``forecast_days``) re-scores as before.

>>> ScoredClose.__name__
'ScoredClose'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edge_runtime.decide.day_close import DayCloseModel
from edge_runtime.decide.forecast_policy import DailyForecasts
from edge_runtime.forecast.daily_sales import DailySales
from edge_runtime.watch.anomaly_scores import AnomalyScores
from models.bundle import MANIFEST


@dataclass(frozen=True)
class ScoredClose:
    """What a close's re-score made (``model_key``: :func:`model_key` of the model that made
    it): the forecasts decisions use, the model's uncorrected ones and SKU scales (what the next
    close learns from), and the anomaly model's scores (None: the bundle has no anomaly model)."""

    model_key: str
    forecasts: DailyForecasts
    central: DailyForecasts
    central_scale: np.ndarray
    anomaly: AnomalyScores | None


def model_key(model: DayCloseModel) -> str:
    """The model's identity for its scores: the bundle's signed manifest (every file's digest)
    and the settings the re-score depends on."""
    manifest = hashlib.sha256((model.bundle.path / MANIFEST).read_bytes()).hexdigest()
    return f"{manifest}|{model.horizons}|{model.buffer_every_days}"


def take(
    model: DayCloseModel, key: str, forecasts: DailyForecasts | None, anomaly
) -> ScoredClose | None:
    """The model's last re-score as it stands, when it is whole (None: nothing to keep);
    ``forecasts`` with every horizon (``DayCloseModel.whole``)."""
    central = model.whole_central()
    if forecasts is None or central is None or central.first_close != forecasts.first_close:
        return None
    return ScoredClose(key, forecasts, central, model.central_scale, anomaly)


def restore(scored: ScoredClose | None, model: DayCloseModel, key: str, sales: DailySales):
    """The kept forecasts and anomaly scores, with ``model`` set as after that re-score, when
    they are what a re-score of ``sales`` would make now; else None (re-score)."""
    if scored is None or scored.model_key != key:
        return None
    forecasts = scored.forecasts
    if sales.last_closed is None or forecasts.first_close != sales.last_closed:
        return None
    if forecasts.skus != sales.skus() or scored.central.skus != forecasts.skus:
        return None
    wants_anomaly = "anomaly" in model.scorer.models
    if wants_anomaly != (scored.anomaly is not None):
        return None
    if scored.anomaly is not None and scored.anomaly.day != str(sales.last_closed):
        return None
    model.central, model.central_scale = scored.central, scored.central_scale
    model.pending = None  # every horizon was kept
    if scored.anomaly is not None:
        scored.anomaly.bind(model.scorer)  # its SKUs not scored yet are scored when asked
    return forecasts, scored.anomaly
