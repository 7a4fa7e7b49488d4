"""FastAPI dependencies shared by the routers: the runtime, the settings, the metrics, and the
SKU path parameter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from api.metrics import ApiMetrics
from api.runtime import Runtime
from api.settings import ApiSettings
from edge_runtime.store.events import MAX_SKU_LEN

# A route ending in this parameter is declared "/{sku:path}": any SKU the ingest accepts can be
# read back, "/" included (the path converter takes the rest of the path; other reserved
# characters are percent-encoded by the client as usual).
SkuPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_SKU_LEN,
        description="the SKU, percent-encoded where needed ('/' may stay as it is)",
    ),
]


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def _metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
MetricsDep = Annotated[ApiMetrics, Depends(_metrics)]
