"""The MQTT contract as an AsyncAPI 3.0 document, generated from the message models.

Integrators get a machine-readable contract beside docs/messages.md: a channel per topic (with
its ``{store}`` and ``{source}`` parameters), what the gateway sends and receives, each
payload's JSON schema (from the pydantic models of :mod:`edge_runtime.messages`, and for edge
events :func:`edge_runtime.ingest.event_schema.event_schema`) and an example message per kind, built
from instances of those models. ``docs/asyncapi.json`` is this document; the tests regenerate it
(a stale copy fails) and validate it with the official AsyncAPI parser.

    python -m edge_runtime.asyncapi docs/asyncapi.json

>>> doc = asyncapi_document()
>>> doc["asyncapi"], doc["channels"]["stockout"]["address"]
('3.0.0', 'shelfcast/{store}/alerts/stockout')
>>> doc["operations"]["receiveEvents"]["action"], doc["operations"]["sendDeadletter"]["action"]
('receive', 'send')
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_runtime.build_info import VERSION
from edge_runtime.ingest.dead_letter_topic import dead_letter_message
from edge_runtime.ingest.event_schema import event_schema
from edge_runtime.messages import (
    KINDS,
    SCHEMA_VERSION,
    AnomalyAlert,
    ConflictMessage,
    GatewayState,
    Message,
    ReasonCode,
    ReplenishmentAlert,
    StockoutAlert,
    UplinkDeltas,
)
from edge_runtime.store.events import MAX_EVENTS_PER_PAYLOAD, SOURCES, parse_events

PREFIX = "shelfcast"
REF = "#/components/schemas/{model}"
MQTT_BINDING = "0.2.0"
_T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
_COMMON: dict[str, Any] = {
    "store_id": "S1",
    "model_version": "rules-1",
    "created_at": _T,
    "event_time": _T,
}
_SALE = {
    "event_id": "pos-000123-1",
    "store_id": "S1",
    "sku": "A-1",
    "type": "sale",
    "qty": 2,
    "event_time": "2026-01-05T11:00:00+01:00",
    "source": "pos",
    "unit_price": 3.49,
}


def _example_messages() -> list[Message]:
    """One message of each kind, as the gateway would send it (fixed ids and times, so the
    document is the same on every generation)."""
    refused = {**_SALE, "qty": 0, "event_time": "5 January", "source": "till"}
    [rejection] = parse_events(refused, "S1")[1]
    dead = dead_letter_message(rejection, "S1", "pos", "rules-1")
    return [
        StockoutAlert(
            **_COMMON, message_id="0b8f3c1e-8d8b-5c55-9b55-6b1a3e5f0a01", sku="A-1",
            cause_event_id="pos-000123-1", probability=1.0, horizon_hours=0.0, atp=0,
            on_hand=2, reserved=2, confidence=0.93, reason_codes=[ReasonCode.ATP_ZERO],
            evidence={"reserved": 2},
        ),
        ReplenishmentAlert(
            **_COMMON, message_id="5f7c1a2b-3c4d-5e6f-8a9b-0c1d2e3f4a02", sku="A-1",
            cause_event_id="pos-000123-1", probability=0.31, horizon_hours=72.0,
            recommended_qty=24, reorder_point=9.5, order_up_to=30.5, atp=4, on_hand=6,
            reserved=2, reason_codes=[ReasonCode.BELOW_ORDER_UP_TO],
            evidence={"safety_stock": 6.5, "inventory_position": 4.0, "pack_size": 6},
        ),
        AnomalyAlert(
            **_COMMON, message_id="9a0b1c2d-3e4f-5a6b-8c7d-8e9f0a1b2c03", sku="A-1",
            cause_event_id="rfid-77", anomaly_type="theft", score=0.9, units=2,
            reason_codes=[ReasonCode.EXIT_GATE_WITHOUT_SALE], evidence={"units": 2},
        ),
        ConflictMessage(
            **_COMMON, message_id="c1d2e3f4-a5b6-5c7d-9e8f-0a1b2c3d4e04", sku="A-1",
            cause_event_id="ecom-9", rule="first-committed-wins", winner_event_id="pos-000123-1",
            loser_event_id="ecom-9", qty_requested=3, qty_granted=1,
            reason_codes=[ReasonCode.RESERVATION_SHORT], evidence={"shortfall": 2},
        ),
        GatewayState(
            **{**_COMMON, "event_time": None}, message_id="d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f05",
            status="online", version=VERSION, outbox_depth=0, broker_dropped=0,
        ),
        UplinkDeltas(
            **{**_COMMON, "event_time": None}, message_id="e3f4a5b6-c7d8-4e9f-8a1b-2c3d4e5f6a06",
            window_start=_T, window_end=datetime(2026, 1, 5, 10, 1, tzinfo=UTC), events=3,
            deltas=[("A-1", -2, 0, 2, 0, 3)], exceptions=[("A-1", "stockout", "ATP_ZERO")],
        ),
        dead.model_copy(update={"created_at": _T}),
    ]  # fmt: skip


def _draft07(node: Any) -> Any:
    """Pydantic writes JSON Schema 2020-12; AsyncAPI's default schema format is a superset of
    draft-07, where a tuple is ``items: [...]``. Docstring doctests are cut from descriptions."""
    if isinstance(node, list):
        return [_draft07(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _draft07(v) for k, v in node.items()}
    if "prefixItems" in out:
        out["items"] = out.pop("prefixItems")
        out.setdefault("additionalItems", False)
    text = out.get("description")
    if isinstance(text, str) and ">>>" in text:
        out["description"] = text.split(">>>", 1)[0].strip()
    return out


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for cls in KINDS:
        schema = cls.model_json_schema(by_alias=True, ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[cls.__name__] = schema
    schemas["EdgeEvent"] = event_schema()
    schemas["EdgeEventBatch"] = {
        "title": "EdgeEventBatch",
        "type": "array",
        "items": {"$ref": REF.format(model="EdgeEvent")},
        "minItems": 1,
        "maxItems": MAX_EVENTS_PER_PAYLOAD,
    }
    return _draft07(schemas)


def _kind(cls: type[Message]) -> str:
    return cls.model_fields["kind"].default


def _message(cls: type[Message], example: Message) -> dict[str, Any]:
    doc = (cls.__doc__ or "").strip()
    out: dict[str, Any] = {
        "name": _kind(cls),
        "title": cls.__name__,
        "summary": doc.splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": REF.format(model=cls.__name__)},
        "examples": [{"name": f"{_kind(cls)}-example", "payload": example.to_dict()}],
    }
    if cls.compressed:
        out["description"] = "Sent gzip-compressed (the payload starts with the bytes 1f 8b)."
        out["x-gzip"] = True
    return out


def _store_parameter() -> dict[str, Any]:
    return {"description": "the store id: the gateway's [gateway] store_id", "examples": ["S1"]}


def asyncapi_document(prefix: str = PREFIX) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the gateway's MQTT interface under topic ``prefix``."""
    examples = {m.kind: m for m in _example_messages()}
    channels: dict[str, Any] = {
        "events": {
            "address": f"{prefix}/{{store}}/events/{{source}}",
            "title": "Edge events in",
            "description": "One edge event (a JSON object) or a JSON array of them; the gateway "
            "acknowledges (PUBACK) only once they are durable. Refused events are published on "
            "the deadletters channel with every problem found.",
            "parameters": {
                "store": _store_parameter(),
                "source": {"description": "where the events come from", "enum": sorted(SOURCES)},
            },
            "messages": {
                "event": {"$ref": "#/components/messages/event"},
                "eventBatch": {"$ref": "#/components/messages/eventBatch"},
            },
        }
    }
    operations: dict[str, Any] = {
        "receiveEvents": {
            "action": "receive",
            "title": "Take edge events",
            "channel": {"$ref": "#/channels/events"},
            "messages": [
                {"$ref": "#/channels/events/messages/event"},
                {"$ref": "#/channels/events/messages/eventBatch"},
            ],
            "bindings": {"mqtt": {"qos": 1, "bindingVersion": MQTT_BINDING}},
        }
    }
    messages: dict[str, Any] = {
        "event": {
            "name": "event",
            "title": "EdgeEvent",
            "summary": "One edge event.",
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model="EdgeEvent")},
            "examples": [{"name": "sale", "payload": _SALE}],
        },
        "eventBatch": {
            "name": "eventBatch",
            "title": "EdgeEventBatch",
            "summary": "A batch of edge events, each judged on its own.",
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model="EdgeEventBatch")},
            "examples": [{"name": "batch", "payload": [_SALE, {**_SALE, "event_id": "pos-2"}]}],
        },
    }
    for cls in KINDS:
        kind = _kind(cls)
        messages[kind] = _message(cls, examples[kind])
        channels[kind] = {
            "address": f"{prefix}/{{store}}/{cls.TOPIC}",
            "title": cls.__name__,
            "description": (cls.__doc__ or "").strip().splitlines()[0],
            "parameters": {"store": _store_parameter()},
            "messages": {kind: {"$ref": f"#/components/messages/{kind}"}},
        }
        operations[f"send{kind.capitalize()}"] = {
            "action": "send",
            "title": f"Publish {kind}",
            "channel": {"$ref": f"#/channels/{kind}"},
            "messages": [{"$ref": f"#/channels/{kind}/messages/{kind}"}],
            "bindings": {"mqtt": {"qos": 1, "retain": cls.retain, "bindingVersion": MQTT_BINDING}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "shelfcast store gateway (MQTT)",
            "version": VERSION,
            "description": f"Message schema version {SCHEMA_VERSION}. Every outgoing message is "
            "JSON published with QoS 1, delivered at least once: de-duplicate on message_id. "
            "Times are ISO-8601 in UTC (+00:00); reason codes are the ReasonCode enumeration. "
            "See docs/messages.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "store-broker": {
                "host": "localhost:1883",
                "protocol": "mqtt",
                "description": "the store's Mosquitto, beside the gateway",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": _schemas(), "messages": messages},
    }


def asyncapi_json(prefix: str = PREFIX) -> str:
    """The document as the text ``docs/asyncapi.json`` holds (stable key order, 2-space indent)."""
    return json.dumps(asyncapi_document(prefix), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write the document to the path given, or print it."""
    if argv:
        Path(argv[0]).write_text(asyncapi_json())
    else:
        sys.stdout.write(asyncapi_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
