"""Recent alerts and conflicts, newest first, filtered by kind, SKU and time.

Items are the messages the gateway published on MQTT, as stored in its outbox: one schema
(``edge_runtime.messages``) for MQTT, this API and the docs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter

from api.auth import require_reader
from api.deps import RuntimeDep
from api.errors import responses
from api.schemas import AlertKind, AlertMessage, AlertPage
from edge_runtime.events import MAX_SKU_LEN

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
