"""A SKU's recent daily sales beside the model's daily forecast: forecasts against sales.

The sales are the series the gateway's model forecasts from (``Gateway.recent_sales``); the
forecast is the prediction routes' own (``Runtime.forecast``), asked for each horizon up to the
days the model scored and turned back into one value per day.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.auth import require_reader
from api.deps import RuntimeDep
from api.errors import Unavailable, responses
from api.runtime import Runtime
from api.schemas import DEFAULT_HORIZON_DAYS, DailyUnits, DayForecast, Forecast, SalesView
from edge_runtime.store.events import MAX_SKU_LEN
from feature_store.spec import MAX_WINDOW

router = APIRouter(
    prefix="/v1/sales",
    tags=["sales"],
    dependencies=[Depends(require_reader)],
    responses=responses(401, 403, 422, 503),
)

Sku = Annotated[str, Path(min_length=1, max_length=MAX_SKU_LEN, description="the SKU")]
Days = Annotated[
    int, Query(ge=1, le=MAX_WINDOW, description="closed days of sales to return, newest last")
]


@router.get("/{sku}", response_model=SalesView, responses=responses(404), summary="one SKU")
def sales_view(sku: Sku, runtime: RuntimeDep, days: Days = 28) -> SalesView:
    """Net units sold per day on the last ``days`` closed days and the open day so far, with
    the daily forecast from the open day on (empty, with the reason, when there is none)."""
    found = runtime.recent_sales(sku, days)
    if found is None:
        raise HTTPException(404, f"SKU {sku!r} has no sales series in store {runtime.store_id!r}")
    open_text, closed, open_units = found
    open_day = date.fromisoformat(open_text)
    first = open_day - timedelta(days=len(closed))
    history = [DailyUnits(date=first + timedelta(days=i), units=u) for i, u in enumerate(closed)]
    view = SalesView(sku=sku, open_day=open_day, open_units=open_units, days=history)
    try:
        view.forecast, view.outlook = daily_forecast(runtime, sku, open_day)
    except Unavailable as err:
        view.forecast_problem = str(err)
    if view.outlook is None and view.forecast_problem is None:
        view.forecast_problem = f"the model has no forecast for SKU {sku!r} yet"
    return view


def daily_forecast(
    runtime: Runtime, sku: str, open_day: date
) -> tuple[list[DayForecast], Forecast | None]:
    """One forecast per day from the open day on, and the default-horizon prediction.

    A prediction over ``h`` days carries the daily mean (and P90) averaged over those days, so
    the total over ``h`` days less the total over ``h - 1`` is day ``h``'s own value.
    """
    items, _ = runtime.forecast([sku], 1.0)
    if not items or items[0]["mean_daily"] is None:  # unknown, or no close has scored it yet
        return [], None
    scored = items[0]["scored_days"] or 1
    out, mean_before, p90_before = [], 0.0, 0.0
    for h in range(1, scored + 1):
        item = items[0] if h == 1 else runtime.forecast([sku], float(h))[0][0]
        mean_total, p90_total = item["mean_daily"] * h, item["p90_daily"] * h
        mean = max(mean_total - mean_before, 0.0)
        day = open_day + timedelta(days=h - 1)
        out.append(DayForecast(date=day, mean=mean, p90=max(p90_total - p90_before, mean)))
        mean_before, p90_before = mean_total, p90_total
    outlook, _ = runtime.forecast([sku], DEFAULT_HORIZON_DAYS)
    return out, Forecast(**outlook[0])
