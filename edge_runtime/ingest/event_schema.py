"""The JSON schema of one edge event, built from ``edge_runtime.store.events`` (the one definition).

The hand-written parser is the validator; this schema describes the same rules for readers:
the API's OpenAPI document and the AsyncAPI document of the MQTT contract both carry it.

>>> sorted(event_schema("S1")["required"])[:3]
['event_id', 'event_time', 'qty']
"""

from __future__ import annotations

from typing import Any

from edge_runtime.store import events as ev
from edge_runtime.store.plausibility import DEFAULT as BOUNDS


def event_schema(store_id: str | None = None) -> dict[str, Any]:
    """JSON schema of one edge event, from the constants of ``edge_runtime.store.events``."""

    def text(limit: int) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": limit}

    props: dict[str, Any] = {
        "event_id": text(ev.MAX_ID_LEN) | {"description": "idempotency key, unique per store"},
        "store_id": text(64) | ({"enum": [store_id]} if store_id else {}),
        "sku": text(ev.MAX_SKU_LEN),
        "type": {"type": "string", "enum": sorted(ev.EVENT_TYPES)},
        "qty": {
            "type": "number",
            "minimum": -BOUNDS.max_qty,
            "maximum": BOUNDS.max_qty,
            "description": "units; the bound is the gateway's [ingest] max_qty (default shown)",
        },
        "event_time": {
            "type": "string",
            "format": "date-time",
            "description": "with offset; not before [ingest] earliest_event_time "
            f"({BOUNDS.earliest_event_time}), at most [ingest] max_ahead_s "
            f"({BOUNDS.max_ahead_s:g} s) ahead of the gateway's clock, within [ingest] "
            "max_late_days behind and max_jump_days ahead of the ledger's latest event",
        },
        "source": {"type": "string", "enum": sorted(ev.SOURCES)},
        "order_id": text(ev.MAX_ID_LEN),
        "unit_price": {"type": "number", "minimum": 0},
        "reason": text(ev.MAX_REASON_LEN),
    }
    return {
        "title": "EdgeEvent",
        "type": "object",
        "properties": props,
        "required": list(ev.REQUIRED),
        "additionalProperties": False,
    }
