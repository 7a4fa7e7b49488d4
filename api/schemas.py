"""Request and response models of the API that are not defined elsewhere.

Stock states are ``edge_runtime.store.stock.StockState`` and alerts are the outgoing messages of
``edge_runtime.messages``: the API reuses those definitions. The event request body is described
by :func:`edge_runtime.ingest.event_schema.event_schema`, built from ``edge_runtime.store.events`` (the one
definition of an event), because
the API hands the raw body to the same parser and dead-letter path MQTT ingest uses.

>>> IngestResponse(accepted=1, duplicates=0, rejected=0).rejected
0
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_runtime.messages import (
    AnomalyAlert,
    ConflictMessage,
    Problem,
    ReplenishmentAlert,
    StockoutAlert,
)
from edge_runtime.store import events as ev
from edge_runtime.store.stock import StockState

AlertMessage = Annotated[
    StockoutAlert | ReplenishmentAlert | AnomalyAlert | ConflictMessage,
    Field(discriminator="kind"),
]
AlertKind = Literal["stockout", "replenishment", "anomaly", "conflict"]
DEFAULT_HORIZON_DAYS = 7.0  # the horizon a prediction covers when the caller names none


class ApiModel(BaseModel):
    """Base of the API's own models: unknown fields are refused, not ignored.

    >>> ApiModel.model_config["extra"]
    'forbid'
    """

    model_config = ConfigDict(extra="forbid")


class Health(ApiModel):
    """Liveness: the process answers.

    >>> Health(store_id="S1", version="0.1.0").status
    'ok'
    """

    status: Literal["ok"] = "ok"
    store_id: str = Field(description="the store this gateway serves")
    version: str = Field(description="shelfcast version")


class Readiness(ApiModel):
    """Readiness: each part of the gateway the API depends on, and whether it is usable.

    >>> Readiness(ready=True, checks={"ledger": "ok"}).ready
    True
    """

    ready: bool = Field(description="true when every required check passes")
    checks: dict[str, str] = Field(description="check name -> 'ok' or what is wrong")


class StockPage(ApiModel):
    """A page of SKU stock states in SKU order.

    >>> StockPage(offset=0, limit=10, total=0, items=[]).total
    0
    """

    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    total: int = Field(ge=0, description="SKUs in the ledger")
    items: list[StockState]


class RejectionOut(ApiModel):
    """Why one payload or event was refused (it is kept in the dead-letter store).

    >>> RejectionOut(reason="qty must be > 0 for sale, got -1", field="qty").field
    'qty'
    """

    reason: str = Field(description="what was wrong")
    field: str | None = Field(None, description="the field at fault, or 'payload'")
    index: int | None = Field(None, description="position in the batch, when it was a batch")
    problems: list[Problem] = Field(
        default_factory=list,
        description="every problem found in the event, the one above first (the same list the "
        "deadletter message on MQTT carries)",
    )


class IngestResponse(ApiModel):
    """What happened to a single event or a batch: each event judged on its own.

    >>> IngestResponse(accepted=1, duplicates=0, rejected=0).conflicts
    0
    """

    accepted: int = Field(ge=0, description="new events stored durably")
    duplicates: int = Field(ge=0, description="events already in the ledger (nothing changed)")
    rejected: int = Field(ge=0, description="events or payloads refused and dead-lettered")
    rejections: list[RejectionOut] = Field(
        default_factory=list, description="reasons, at most the first 100"
    )
    conflicts: int = Field(0, ge=0, description="contention or book conflicts found")


class Forecast(ApiModel):
    """Demand forecast of one SKU over a horizon, with its stock-out risk.

    ``status`` says whether there is a forecast: ``forecast`` (the model scored the SKU at the
    last store day's close) or ``no_history`` (a model is installed but the SKU has no closed
    day yet: a new gateway before its first close, a SKU first seen today). A ``no_history``
    item has no demand figures (null); its stock-out risk is what the stock alone says: 1 with
    ATP at zero (the gateway alerts on it), otherwise null.

    >>> Forecast(sku="A", horizon_days=2, mean_daily=1.5, p90_daily=3, demand_over_horizon=3,
    ...          model_version="m1").stockout_probability is None
    True
    >>> Forecast(sku="B", horizon_days=2, status="no_history", atp=0, stockout_probability=1,
    ...          model_version="m1").mean_daily is None
    True
    """

    sku: str
    horizon_days: float = Field(gt=0)
    status: Literal["forecast", "no_history"] = Field(
        "forecast",
        description="forecast: scored at the last day's close; no_history: a model is loaded "
        "but the SKU has no closed day yet (demand figures null)",
    )
    mean_daily: float | None = Field(
        None, ge=0, description="expected units per day (null: no history yet)"
    )
    p90_daily: float | None = Field(
        None, ge=0, description="90th percentile of units per day (null: no history yet)"
    )
    demand_over_horizon: float | None = Field(
        None, ge=0, description="expected units over the horizon (null: no history yet)"
    )
    atp: float | None = Field(None, description="available-to-promise now (null: SKU unknown)")
    stockout_probability: float | None = Field(
        None,
        ge=0,
        le=1,
        description="P(demand over the horizon >= ATP); without history 1 at ATP zero, else null",
    )
    expected_days_to_stockout: float | None = Field(
        None, ge=0, description="ATP / daily mean; null when no demand is expected or known"
    )
    scored_days: int | None = Field(
        None,
        ge=1,
        description="days ahead the model scored (the gateway's [model] forecast_days); over a "
        "longer horizon the daily mean and P90 of those days are extended",
    )
    model_version: str


class PredictionRequest(ApiModel):
    """A batch of SKUs to forecast.

    >>> PredictionRequest(skus=["A"]).horizon_days
    7.0
    """

    skus: list[Annotated[str, Field(min_length=1, max_length=ev.MAX_SKU_LEN)]] = Field(
        min_length=1, max_length=1000
    )
    horizon_days: float = Field(DEFAULT_HORIZON_DAYS, gt=0, le=90)


class PredictionBatch(ApiModel):
    """Forecasts of a batch, in request order; unknown SKUs are listed, not failed.

    >>> PredictionBatch(items=[]).unknown_skus
    []
    """

    items: list[Forecast]
    unknown_skus: list[str] = Field(default_factory=list)


class AlertPage(ApiModel):
    """Recent alerts and conflicts, newest first (the same JSON as on MQTT).

    >>> AlertPage(items=[]).items
    []
    """

    items: list[AlertMessage]


class BundleInfo(ApiModel):
    """The model bundle in use.

    >>> BundleInfo(loaded=False).models
    []
    """

    loaded: bool
    model_version: str | None = None
    path: str | None = None
    models: list[str] = Field(default_factory=list)
    feature_store_version: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class DailyUnits(ApiModel):
    """Net units sold on one store day (sales and fulfilments less returns and voids).

    >>> DailyUnits(date="2026-03-01", units=4).units
    4.0
    """

    date: dt.date
    units: float = Field(description="net units sold that day")


class DayForecast(ApiModel):
    """The model's forecast of one day's demand.

    >>> DayForecast(date="2026-03-02", mean=3.5, p90=6).p90
    6.0
    """

    date: dt.date
    mean: float = Field(ge=0, description="expected units")
    p90: float = Field(ge=0, description="90th percentile of units")


class SalesView(ApiModel):
    """A SKU's recent daily sales beside the model's daily forecast from the open day on: what
    the store dashboard draws. ``outlook`` is ``GET /v1/predictions/{sku}``'s answer for the
    default horizon; without a model, ``forecast`` is empty and ``forecast_problem`` says why.

    >>> SalesView(sku="A", open_day="2026-03-02", open_units=1, days=[]).forecast
    []
    """

    sku: str
    open_day: dt.date = Field(description="the store day events are being added to")
    open_units: float = Field(description="net units sold on the open day so far")
    days: list[DailyUnits] = Field(description="closed days, oldest first, up to the open day")
    forecast: list[DayForecast] = Field(
        default_factory=list, description="daily forecast, the open day first"
    )
    outlook: Forecast | None = Field(None, description="the prediction over the default horizon")
    forecast_problem: str | None = Field(None, description="why there is no forecast, if none")
