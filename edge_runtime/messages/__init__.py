"""The one schema of every message the gateway sends: MQTT payloads, API responses and docs/messages.md.

Every outgoing message is JSON with a ``schema`` version, a unique ``message_id`` (consumers
de-duplicate on it: delivery is at-least-once; a decision's id is derived from what it decided,
:func:`decision_id`, so it stays the same across gateway restarts), ``kind``, ``store_id``,
``sku``, ``event_time`` (the event time of what caused it), ``model_version`` and, for alerts,
the numbers behind the decision.

A module per concept: ``envelope`` (the fields every message carries), ``message_ids``,
``reason_codes``, a module per kind (``decisions``: alerts and conflicts; ``gateway_state``,
``dead_letter``, ``uplink_deltas``), ``kinds`` (every kind, parsing), ``hub_subjects`` and
``reservation_result`` (what gateway and hub exchange over JetStream), ``consumer_docs``.
Callers import from the package.

>>> from datetime import datetime, timezone
>>> alert = StockoutAlert(store_id="S1", sku="A-1", event_time=datetime(2026, 1, 5, 9, 30,
...     tzinfo=timezone.utc), model_version="rules-1", probability=1.0, horizon_hours=0.0,
...     atp=0, on_hand=0, reserved=0, reason_codes=["ATP_ZERO"])
>>> alert.topic("shelfcast")
'shelfcast/S1/alerts/stockout'
>>> parse_message(alert.to_json()).sku
'A-1'

``python -m edge_runtime.messages`` prints the consumer documentation;
``python -m edge_runtime.messages docs/messages.md`` rewrites that page's generated section.
"""

from edge_runtime.messages.consumer_docs import MARKERS, consumer_docs, write_docs
from edge_runtime.messages.dead_letter import DeadLetter, Problem
from edge_runtime.messages.decisions import (
    Alert,
    AnomalyAlert,
    ConflictMessage,
    Evidence,
    ReplenishmentAlert,
    StockoutAlert,
    decision_message_id,
)
from edge_runtime.messages.envelope import GZIP_MAGIC, SCHEMA_VERSION, Message, UtcTime
from edge_runtime.messages.gateway_state import GatewayState
from edge_runtime.messages.hub_subjects import (
    BUNDLE_STORE,
    HUB_SUBJECT_KIND,
    INSTALL,
    RESERVATION,
    RESERVATION_RESULT,
    ROLLOUT_REPORT,
    hub_subject,
)
from edge_runtime.messages.kinds import KINDS, AnyMessage, parse_message
from edge_runtime.messages.message_ids import DECISION_NAMESPACE, decision_id, new_message_id
from edge_runtime.messages.reason_codes import Reason, ReasonCode
from edge_runtime.messages.reservation_result import ReservationResult
from edge_runtime.messages.uplink_deltas import DELTA_COLUMNS, UplinkDeltas

__all__ = [
    "BUNDLE_STORE",
    "DECISION_NAMESPACE",
    "DELTA_COLUMNS",
    "GZIP_MAGIC",
    "HUB_SUBJECT_KIND",
    "INSTALL",
    "KINDS",
    "MARKERS",
    "RESERVATION",
    "RESERVATION_RESULT",
    "ROLLOUT_REPORT",
    "SCHEMA_VERSION",
    "Alert",
    "AnomalyAlert",
    "AnyMessage",
    "ConflictMessage",
    "DeadLetter",
    "Evidence",
    "GatewayState",
    "Message",
    "Problem",
    "Reason",
    "ReasonCode",
    "ReplenishmentAlert",
    "ReservationResult",
    "StockoutAlert",
    "UplinkDeltas",
    "UtcTime",
    "consumer_docs",
    "decision_id",
    "decision_message_id",
    "hub_subject",
    "new_message_id",
    "parse_message",
    "write_docs",
]
