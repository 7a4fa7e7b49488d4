"""Demand forecast and stock-out prediction for one SKU or a batch of SKUs."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from api.auth import require_reader
from api.deps import MetricsDep, RuntimeDep, SkuPath
from api.errors import responses
from api.schemas import DEFAULT_HORIZON_DAYS, Forecast, PredictionBatch, PredictionRequest

router = APIRouter(
    prefix="/v1/predictions",
    tags=["predictions"],
    dependencies=[Depends(require_reader)],
    responses=responses(401, 403, 422, 503),
)

Horizon = Annotated[float, Query(gt=0, le=90, description="forecast horizon in days")]


def _score(runtime, metrics, what: str, skus: list[str], horizon: float):
    started = time.perf_counter()
    items, unknown = runtime.forecast(skus, horizon)
    metrics.scoring_latency.labels(what=what).observe(time.perf_counter() - started)
    return items, unknown


@router.get("/{sku:path}", response_model=Forecast, responses=responses(404), summary="one SKU")
def predict_one(
    sku: SkuPath,
    runtime: RuntimeDep,
    metrics: MetricsDep,
    horizon_days: Horizon = DEFAULT_HORIZON_DAYS,
) -> Forecast:
    """Forecast of daily demand over the horizon and the probability of a stock-out in it.

    Served from the moment a model bundle is in use: a SKU the ledger knows that no store day's
    close has scored yet answers 200 with ``status`` ``no_history`` (no demand figures; stock-out
    probability 1 at ATP zero). 404: neither the ledger nor the model knows the SKU; 503: no
    bundle is loaded (the rules decide)."""
    items, unknown = _score(runtime, metrics, "single", [sku], horizon_days)
    if unknown or not items:
        raise HTTPException(404, f"SKU {sku!r} is unknown to the ledger and the model")
    return Forecast(**items[0])


@router.post(
    "",
    response_model=PredictionBatch,
    responses=responses(400),  # a body that is not decodable JSON text
    summary="a batch of SKUs",
)
def predict_batch(
    request: PredictionRequest, runtime: RuntimeDep, metrics: MetricsDep
) -> PredictionBatch:
    """Forecasts for up to 1,000 SKUs scored in one batch; unknown SKUs are listed apart, SKUs
    without a closed day yet are items with ``status`` ``no_history``."""
    items, unknown = _score(runtime, metrics, "batch", request.skus, request.horizon_days)
    return PredictionBatch(items=[Forecast(**i) for i in items], unknown_skus=unknown)
