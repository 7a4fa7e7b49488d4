"""Event ingest over HTTP: the same parser, validation and dead-letter store as MQTT ingest.

The body is handed raw to the runtime (``Gateway.ingest(payload, "api")``), so every event, valid
or not, is judged exactly as it would be on ``shelfcast/{store}/events/{source}``. The OpenAPI
request schema is generated from ``edge_runtime.events``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require_writer
from api.body_limit import read_capped
from api.deps import MetricsDep, RuntimeDep
from api.errors import BodyTooLarge, responses
from api.runtime import Runtime
from api.schemas import IngestResponse, RejectionOut
from edge_runtime.events import MAX_EVENTS_PER_PAYLOAD, MAX_PAYLOAD_BYTES
from edge_runtime.ledger import IngestResult

router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=[Depends(require_writer)])

SOURCE = "api"  # stored with each dead letter: where the payload came from
MAX_REASONS = 100  # a 20,000-event batch of junk must not produce a 20,000-entry response


def _body(schema: dict, description: str) -> dict:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _event_ref() -> dict:
    return {"$ref": "#/components/schemas/EdgeEvent"}


_INGEST_RESPONSES = {
    413: {"model": IngestResponse, "description": "payload too large (dead-lettered)"},
    422: {"model": IngestResponse, "description": "rejected (dead-lettered, reasons given)"},
    **responses(401, 403, 503),
}


def _response(result: IngestResult, status: int) -> JSONResponse:
    body = IngestResponse(
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=result.rejected,
        rejections=[
            RejectionOut(reason=r.reason, field=r.field, index=r.index)
            for r in result.rejections[:MAX_REASONS]
        ],
        conflicts=len(result.conflicts),
    )
    return JSONResponse(body.model_dump(), status_code=status)


async def _ingest(request: Request, runtime: Runtime, metrics) -> tuple[IngestResult, bool]:
    """Read (capped), ingest, count. Returns the result and whether the body was too large."""
    try:
        body = await read_capped(request, MAX_PAYLOAD_BYTES)
        too_large = False
    except BodyTooLarge as err:
        body, too_large = err.head, True
    result = await run_in_threadpool(runtime.ingest, body, SOURCE)
    if result.accepted:
        metrics.events_ingested.labels(transport="api").inc(result.accepted)
    if result.duplicates:
        metrics.events_duplicate.labels(transport="api").inc(result.duplicates)
    if result.rejected:
        metrics.events_rejected.labels(transport="api").inc(result.rejected)
    return result, too_large


@router.post(
    "",
    summary="ingest one event",
    response_model=IngestResponse,
    responses=_INGEST_RESPONSES,
    openapi_extra=_body(_event_ref(), "one edge event"),
)
async def ingest_one(request: Request, runtime: RuntimeDep, metrics: MetricsDep):
    """Store one event durably (idempotent on ``event_id``); 422 names what was wrong."""
    result, too_large = await _ingest(request, runtime, metrics)
    if too_large:
        return _response(result, 413)
    return _response(result, 422 if result.rejected else 200)


@router.post(
    "/batch",
    summary="ingest a batch of events",
    response_model=IngestResponse,
    responses=_INGEST_RESPONSES,
    openapi_extra=_body(
        {"type": "array", "items": _event_ref(), "maxItems": MAX_EVENTS_PER_PAYLOAD},
        f"a JSON array of up to {MAX_EVENTS_PER_PAYLOAD} events, each judged on its own",
    ),
)
async def ingest_batch(request: Request, runtime: RuntimeDep, metrics: MetricsDep):
    """Store the valid events of a batch in one transaction; invalid ones are dead-lettered.

    200 even when some events were rejected (their reasons are listed with their index); 422
    only when the payload as a whole was refused (not JSON, too many events).
    """
    result, too_large = await _ingest(request, runtime, metrics)
    if too_large:
        return _response(result, 413)
    whole = any(r.field == "payload" for r in result.rejections)
    return _response(result, 422 if whole else 200)
