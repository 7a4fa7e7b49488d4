"""The FastAPI app of a gateway: ``create_app(gateway)``.

>>> import tempfile, os
>>> from fastapi.testclient import TestClient
>>> from edge_runtime.store.ledger import Ledger
>>> from api.runtime import LedgerRuntime
>>> tmp = tempfile.TemporaryDirectory()
>>> ledger = Ledger(os.path.join(tmp.name, "ledger.sqlite"), "S1")
>>> app = create_app(LedgerRuntime(ledger), ApiSettings(token="test-token-1"))
>>> TestClient(app).get("/health").json()["status"]
'ok'
>>> ledger.close(); tmp.cleanup()
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import __version__
from api.auth import WRITE_MARK
from api.body_limit import BodyLimit
from api.errors import install_error_handlers
from api.group_commit import GroupCommitter
from api.metrics import ApiMetrics
from api.routers import (
    alerts,
    api_docs,
    bundle,
    dashboard,
    events,
    health,
    metrics,
    predictions,
    sales,
    stock,
)
from api.runtime import Runtime, runtime_for
from api.settings import ApiSettings
from edge_runtime.ingest.event_schema import event_schema

_SELF_LIMITED = ("/v1/events", "/v1/bundle")  # these read their body with their own limit


def _as_runtime(gateway: Any) -> Runtime:
    return gateway if isinstance(gateway, Runtime) else runtime_for(gateway)


def create_app(gateway: Any, settings: ApiSettings | None = None) -> FastAPI:
    """The API over ``gateway`` (an ``edge_runtime.gateway.Gateway`` or an ``api.runtime`` adapter).

    ``settings`` default to the environment (``SHELFCAST_API_TOKEN``, ``SHELFCAST_API_READS_OPEN``).
    """
    runtime = _as_runtime(gateway)
    settings = settings or ApiSettings.from_env()
    app = FastAPI(
        title="shelfcast gateway API",
        version=__version__,
        description=(
            f"Stock, event ingest, forecasts and alerts of store {runtime.store_id!r}. "
            "Writes need the gateway's bearer token; reads too when the gateway closes them."
        ),
        docs_url=None,  # api.routers.api_docs serves /docs and /redoc with local assets
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.metrics = ApiMetrics(runtime.stats)
    app.state.committer = GroupCommitter(runtime.ingest, source=events.SOURCE)
    install_error_handlers(app)

    def limit_for(path: str) -> int | None:
        return None if path.startswith(_SELF_LIMITED) else settings.max_json_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)
    routers = [health, stock, events, alerts, bundle, metrics, dashboard, api_docs]
    if runtime.can_forecast:  # sales beside forecasts come with them
        routers[3:3] = [predictions, sales]
    for module in routers:
        app.include_router(module.router)
    api_docs.mount_assets(app)
    dashboard.mount_assets(app)
    app.openapi = lambda: _openapi(app, runtime.store_id, settings.reads_open)
    return app


def _strip_examples(component: dict[str, Any]) -> None:
    """Model docstrings carry runnable examples; the published description is the prose only."""
    description = component.get("description")
    if description and ">>>" in description:
        component["description"] = description.split(">>>", 1)[0].strip()


def _openapi(app: FastAPI, store_id: str, reads_open: bool) -> dict[str, Any]:
    """The generated schema plus the event schema derived from ``edge_runtime.store.events``.

    Security requirements follow the configuration: with reads open, only writes declare the
    bearer token, so the published schema says exactly what a client must send.
    """
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["EdgeEvent"] = event_schema(
            store_id
        )
        for component in schema["components"]["schemas"].values():
            _strip_examples(component)
        if reads_open:
            for operations in schema["paths"].values():
                for operation in operations.values():
                    if operation.get(WRITE_MARK) != "write":
                        operation.pop("security", None)
        app.openapi_schema = schema
    return app.openapi_schema
