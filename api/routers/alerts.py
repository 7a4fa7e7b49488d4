"""Recent alerts and conflicts, newest first, filtered by kind, SKU and time.

Items are the messages the gateway published on MQTT, as stored in its outbox: one schema
(``edge_runtime.messages``) for MQTT, this API and the docs. ``/v1/alerts/stream`` sends the
same messages as server-sent events while they are written (``api.event_stream``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Header, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from api.auth import require_reader
from api.deps import RuntimeDep
from api.errors import responses
from api.event_stream import BACKLOG_MAX, alert_events
from api.schemas import AlertKind, AlertMessage, AlertPage
from edge_runtime.store.events import MAX_SKU_LEN

router = APIRouter(
    prefix="/v1/alerts",
    tags=["alerts"],
    dependencies=[Depends(require_reader)],
    responses=responses(401, 403, 422),
)

_ALERT = TypeAdapter(AlertMessage)
KINDS: tuple[str, ...] = get_args(AlertKind)


@router.get("", response_model=AlertPage, summary="recent alerts")
def recent_alerts(
    runtime: RuntimeDep,
    kind: Annotated[AlertKind | None, Query(description="only this kind")] = None,
    sku: Annotated[str | None, Query(min_length=1, max_length=MAX_SKU_LEN)] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            description="created at or after (ISO-8601 with offset)",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    """The newest ``limit`` alerts matching every filter given."""
    after = _parse_since(since) if since is not None else None
    found = []
    for k in (kind,) if kind else KINDS:
        found += [_ALERT.validate_json(p) for p in runtime.alerts(k, sku, limit)]
    if after is not None:
        found = [m for m in found if m.created_at >= after]
    found.sort(key=_newest_first)
    return AlertPage(items=found[:limit])


_STREAM = {
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "string",
                "description": "SSE: `event: alert` (id = outbox position, data = an "
                "AlertMessage as JSON) and `event: ledger` (data = "
                '{"last_event_seq": n}, sent when events arrived)',
            }
        }
    },
}


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: _STREAM},
    summary="live alerts (server-sent events)",
)
async def alert_stream(
    runtime: RuntimeDep,
    backlog: Annotated[
        int, Query(ge=0, le=BACKLOG_MAX, description="newest alerts to send first")
    ] = 50,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, description="resume after this alert (SSE reconnects send it)"),
    ] = None,
) -> StreamingResponse:
    """Alerts and conflicts as they are written, then a ``ledger`` event whenever stock may
    have changed; it runs until the client disconnects. Reconnecting with ``Last-Event-ID``
    sends what was missed instead of the backlog."""
    return StreamingResponse(
        alert_events(runtime, last_event_id, backlog),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _parse_since(text: str) -> datetime:
    # Parsed here, not by pydantic: its lax mode would take "0.5" as a Unix time.
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        msg = f"since={text!r} is not an ISO-8601 date-time with an offset"
        raise RequestValidationError(
            [{"loc": ("query", "since"), "msg": msg, "type": "value_error"}]
        )
    return when


def _newest_first(message) -> tuple[float, str]:
    created: datetime = message.created_at
    return (-created.timestamp(), message.message_id)
