"""What an edge event is: its types, sources, fields and limits, a validated ``Event``, and a
refused item's ``Rejection``: the one definition the parser (``edge_runtime.store.events``), the
JSON schema, the API and the ledger share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Types that change the ledger, and the sign their `qty` must have.
POSITIVE_TYPES = frozenset(
    {
        "sale",
        "return",
        "void",
        "receipt",
        "transfer_in",
        "transfer_out",
        "reservation",
        "reservation_release",
        "fulfilment",
        "damage",
    }
)
LEDGER_TYPES = POSITIVE_TYPES | {"cycle_count", "adjustment"}
# Sensor readings are stored for anomaly detection but never change the ledger.
SENSOR_TYPES = frozenset({"shelf_weight", "shelf_units", "rfid_shelf", "rfid_exit"})
EVENT_TYPES = LEDGER_TYPES | SENSOR_TYPES
SOURCES = frozenset({"pos", "ecom", "wms", "rfid", "shelf", "count"})
# Reservation-family events must name the order they belong to.
ORDER_TYPES = frozenset({"reservation", "reservation_release", "fulfilment"})

REQUIRED = ("event_id", "store_id", "sku", "type", "qty", "event_time", "source")
OPTIONAL = ("order_id", "unit_price", "reason")
FIELDS = frozenset(REQUIRED + OPTIONAL)

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # one MQTT message or API body, batch included
MAX_EVENTS_PER_PAYLOAD = 20_000
MAX_ID_LEN = 128
MAX_SKU_LEN = 64
MAX_REASON_LEN = 256
MAX_READING = 1_000_000  # sensor readings (grams, units, reads) change no stock: a hard ceiling
# A SKU is read back at GET /v1/stock/{sku}: URL clients resolve these segments away.
DOT_SEGMENTS = frozenset({".", ".."})
RAW_KEEP = 1024  # characters of a rejected payload kept in the dead-letter store


@dataclass(slots=True, frozen=True)
class Event:
    """One validated edge event; ``ts_us`` is its event time in microseconds since the epoch (UTC).

    >>> e = Event("e1", "S1", "A", "sale", 1, "2026-01-05T09:00:00+00:00", 1767603600000000, "pos")
    >>> e.changes_ledger
    True
    """

    event_id: str
    store_id: str
    sku: str
    type: str
    qty: int | float
    event_time: str
    ts_us: int
    source: str
    order_id: str | None = None
    unit_price: float | None = None
    reason: str | None = None
    # Position in the payload it came in (a batch), for the dead letter of a later refusal.
    index: int | None = field(default=None, compare=False, repr=False)

    @property
    def changes_ledger(self) -> bool:
        return self.type in LEDGER_TYPES

    def to_dict(self) -> dict:
        """The event as its JSON object (optional fields only when set)."""
        out = {
            "event_id": self.event_id,
            "store_id": self.store_id,
            "sku": self.sku,
            "type": self.type,
            "qty": self.qty,
            "event_time": self.event_time,
            "source": self.source,
        }
        for name in OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(slots=True, frozen=True)
class Rejection:
    """A payload (or one event of it) that was refused: why, which field, and the raw text.

    >>> Rejection(raw='{"qty": -1}', reason="qty must be > 0 for a sale", field="qty").field
    'qty'
    """

    raw: str
    reason: str
    field: str | None = None
    index: int | None = None  # position in a batch, when the payload was a list
    # Every problem found, as (field, reason), the first being ``field``/``reason``; empty when
    # that one is all (a payload-level refusal, a reused id).
    problems: tuple[tuple[str | None, str], ...] = ()

    def all_problems(self) -> tuple[tuple[str | None, str], ...]:
        """Every problem of the refused item, the first (``field``, ``reason``) included.

        >>> Rejection(raw="{}", reason="missing required field 'sku'", field="sku").all_problems()
        (('sku', "missing required field 'sku'"),)
        """
        return self.problems or ((self.field, self.reason),)


def raw_text(obj: object) -> str:
    """What a dead letter keeps of a refused payload or item: storable text, cut to RAW_KEEP.

    >>> raw_text({"sku": "\\ud800"})
    '{"sku": "\\\\ud800"}'
    """
    if isinstance(obj, bytes | bytearray):
        text = bytes(obj[: RAW_KEEP * 4]).decode("utf-8", "replace")
    elif isinstance(obj, str):  # lone surrogates escaped: SQLite stores only valid text
        text = obj[:RAW_KEEP].encode("utf-8", "backslashreplace").decode("utf-8")
    else:
        try:
            text = json.dumps(obj, default=str)
        except (TypeError, ValueError):
            text = repr(obj)
    return text[:RAW_KEEP]
