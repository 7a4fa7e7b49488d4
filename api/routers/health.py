"""Liveness (``/health``: the process answers) and readiness (``/ready``: it can do its job)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import RuntimeDep
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="liveness")
def health(runtime: RuntimeDep) -> Health:
    from api import __version__

    return Health(store_id=runtime.store_id, version=__version__)


@router.get(
    "/ready",
    response_model=Readiness,
    summary="readiness",
    responses={503: {"model": Readiness, "description": "a required part is not usable"}},
)
def ready(runtime: RuntimeDep):
    checks = runtime.checks()
    ok = bool(checks) and all(
        v.startswith("ok") or v.startswith("optional") for v in checks.values()
    )
    body = Readiness(ready=ok, checks=checks)
    return body if ok else JSONResponse(body.model_dump(), status_code=503)
