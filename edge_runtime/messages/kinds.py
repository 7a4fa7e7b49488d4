"""Every kind of message the gateway sends, and how a received payload becomes its class.

>>> from edge_runtime.messages import GatewayState
>>> parse_message(GatewayState(store_id="S1", status="online", model_version="m").to_json()).kind
'state'
"""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from edge_runtime.messages.dead_letter import DeadLetter
from edge_runtime.messages.decisions import (
    AnomalyAlert,
    ConflictMessage,
    ReplenishmentAlert,
    StockoutAlert,
)
from edge_runtime.messages.envelope import GZIP_MAGIC, Message
from edge_runtime.messages.gateway_state import GatewayState
from edge_runtime.messages.uplink_deltas import UplinkDeltas

KINDS: tuple[type[Message], ...] = (
    StockoutAlert,
    ReplenishmentAlert,
    AnomalyAlert,
    ConflictMessage,
    GatewayState,
    UplinkDeltas,
    DeadLetter,
)
AnyMessage = Annotated[
    StockoutAlert
    | ReplenishmentAlert
    | AnomalyAlert
    | ConflictMessage
    | GatewayState
    | UplinkDeltas
    | DeadLetter,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyMessage)


def parse_message(payload: bytes | str | dict[str, Any]) -> Message:
    """Parse a received payload (plain or gzip JSON) into its message class."""
    if isinstance(payload, dict):
        return _ADAPTER.validate_python(payload)
    if isinstance(payload, bytes) and payload[:2] == GZIP_MAGIC:
        payload = gzip.decompress(payload)
    return _ADAPTER.validate_json(payload)
