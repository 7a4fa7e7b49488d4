"""Event ingest over HTTP: the same parser, validation and dead-letter store as MQTT ingest.

The body is handed raw to the runtime (``Gateway.ingest(payload, "api")``), so every event, valid
or not, is judged exactly as it would be on ``shelfcast/{store}/events/{source}``. The OpenAPI
request schema is generated from ``edge_runtime.store.events``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import WRITE, require_writer
from api.body_limit import read_capped
from api.deps import MetricsDep, RuntimeDep
from api.errors import BodyTooLarge, responses
from api.runtime import Runtime
from api.schemas import IngestResponse, RejectionOut
from edge_runtime.messages import Problem
from edge_runtime.store.events import MAX_EVENTS_PER_PAYLOAD, MAX_PAYLOAD_BYTES
from edge_runtime.store.ledger import IngestResult

router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=[Depends(require_writer)])

SOURCE = "api"  # stored with each dead letter: where the payload came from
MAX_REASONS = 100  # a 20,000-event batch of junk must not produce a 20,000-entry response


def _body(schema: dict, description: str) -> dict:
    return {
        **WRITE,
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        },
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
            RejectionOut(
                reason=r.reason,
                field=r.field,
                index=r.index,
                problems=[Problem(field=f, reason=why) for f, why in r.all_problems()],
            )
            for r in result.rejections[:MAX_REASONS]
        ],
        conflicts=len(result.conflicts),
    )
    return JSONResponse(body.model_dump(), status_code=status)


async def _ingest(
    request: Request, runtime: Runtime, metrics, single: bool
) -> tuple[IngestResult, bool]:
    """Read (capped), ingest, count. Returns the result and whether the body was too large."""
    try:
        body = await read_capped(request, MAX_PAYLOAD_BYTES)
        too_large = False
    except BodyTooLarge as err:
        body, too_large = err.head, True
    if single and _is_array(body):
        # One event was promised: judge the array as one item, which the parser refuses with
        # "an event must be a JSON object, got list" and dead-letters, instead of storing it.
        body = b"[" + body + b"]"
    if too_large:
        result = await run_in_threadpool(runtime.ingest, body, SOURCE)
    else:  # concurrent requests share a durable transaction (api/group_commit.py)
        result = await request.app.state.committer.submit(body)
    metrics.count_ingest(result.accepted, result.duplicates, result.rejected)
    return result, too_large


def _is_array(body: bytes) -> bool:
    return body.lstrip(b" \t\r\n")[:1] == b"["


@router.post(
    "",
    summary="ingest one event",
    response_model=IngestResponse,
    responses=_INGEST_RESPONSES,
    openapi_extra=_body(_event_ref(), "one edge event"),
)
async def ingest_one(request: Request, runtime: RuntimeDep, metrics: MetricsDep):
    """Store one event durably (idempotent on ``event_id``); 422 names what was wrong."""
    result, too_large = await _ingest(request, runtime, metrics, single=True)
    if too_large:
        return _response(result, 413)
    return _response(result, 422 if result.rejected else 200)


@router.post(
    "/batch",
    summary="ingest a batch of events",
    response_model=IngestResponse,
    responses=_INGEST_RESPONSES,
    openapi_extra=_body(
        {
            "oneOf": [
                {
                    "type": "array",
                    "maxItems": MAX_EVENTS_PER_PAYLOAD,
                    "items": {"description": "an EdgeEvent; anything else is dead-lettered"},
                },
                _event_ref(),
            ]
        },
        f"as on MQTT: a JSON array of up to {MAX_EVENTS_PER_PAYLOAD} events, each judged on "
        "its own (invalid ones are dead-lettered, the rest stored), or one event",
    ),
)
async def ingest_batch(request: Request, runtime: RuntimeDep, metrics: MetricsDep):
    """Store the valid events of a batch in one transaction; invalid ones are dead-lettered.

    An array answers 200 even when some of its events were rejected (their reasons are listed
    with their index); 422 when the payload as a whole was refused (not JSON, too many events)
    or a single event sent here was.
    """
    result, too_large = await _ingest(request, runtime, metrics, single=False)
    if too_large:
        return _response(result, 413)
    whole = any(r.field == "payload" or r.index is None for r in result.rejections)
    return _response(result, 422 if whole else 200)
