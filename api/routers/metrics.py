"""Prometheus exposition of the gateway's metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.auth import require_reader
from api.deps import MetricsDep
from api.errors import responses

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    dependencies=[Depends(require_reader)],
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **responses(401, 403),
    },
    summary="Prometheus metrics",
)
def metrics(m: MetricsDep) -> Response:
    body, content_type = m.render()
    return Response(body, media_type=content_type)
