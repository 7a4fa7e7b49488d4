"""The envelope every outgoing message shares: schema version, ids, store, SKU, times, version.

Each kind (an alert, a conflict, the gateway's state, ...) adds its own fields to ``Message``.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from edge_runtime.messages.message_ids import new_message_id

SCHEMA_VERSION = 1
"""Bumped on any incompatible change; additive fields keep the number."""

GZIP_MAGIC = b"\x1f\x8b"


def _now() -> datetime:
    return datetime.now(UTC)


def _to_utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


UtcTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
]
"""Every time of every message: taken with any offset, sent in UTC as ``+00:00`` (the form the
API's stock times use), so one instant always reads the same whichever event or clock it came
from."""


class Message(BaseModel):
    """Fields every outgoing message carries.

    >>> from edge_runtime.messages import GatewayState
    >>> m = GatewayState(store_id="S1", status="online", model_version="rules-1")
    >>> m.to_dict()["schema"], m.kind, m.retain
    (1, 'state', True)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    TOPIC: ClassVar[str] = ""
    retain: ClassVar[bool] = False
    compressed: ClassVar[bool] = False  # the wire payload is gzip(JSON), for the WAN uplink

    schema_version: int = Field(
        SCHEMA_VERSION, alias="schema", description="schema version of this payload"
    )
    kind: str = Field(description="message kind; also fixes the topic")
    message_id: str = Field(
        default_factory=new_message_id,
        description="unique id (UUID); consumers de-duplicate on it. A decision (alert, "
        "conflict) keeps its id across gateway restarts: a UUID-5 of store, SKU, kind and the "
        "event that started it (see decision_id)",
    )
    store_id: str = Field(description="the store whose gateway sent it")
    sku: str | None = Field(None, description="the SKU it is about (null for store-level kinds)")
    event_time: UtcTime | None = Field(
        None, description="event time (ISO-8601, UTC, +00:00) of the event that caused it"
    )
    created_at: UtcTime = Field(
        default_factory=_now, description="when the gateway created the message (UTC)"
    )
    model_version: str = Field(description="decision policy / model bundle version that decided")
    cause_event_id: str | None = Field(
        None, description="event_id of the event that triggered it (traceability)"
    )

    def topic(self, prefix: str) -> str:
        """The MQTT topic for this message under ``prefix``: ``{prefix}/{store}/{suffix}``."""
        return f"{prefix}/{self.store_id}/{self.TOPIC}"

    def to_json(self) -> bytes:
        """The wire payload (compact JSON, aliases: the field ``schema_version`` is ``schema``)."""
        return self.__pydantic_serializer__.to_json(self, by_alias=True)

    def to_payload(self) -> bytes:
        """What goes on the wire: the JSON, gzip-compressed for kinds marked ``compressed``."""
        data = self.to_json()
        return gzip.compress(data, 6, mtime=0) if self.compressed else data

    def to_dict(self) -> dict[str, Any]:
        """The payload as a JSON-compatible dict (what the API returns)."""
        return self.model_dump(mode="json", by_alias=True)
