"""FastAPI dependencies shared by the routers: the runtime, the settings and the metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.metrics import ApiMetrics
from api.runtime import Runtime
from api.settings import ApiSettings


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def _metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
MetricsDep = Annotated[ApiMetrics, Depends(_metrics)]
