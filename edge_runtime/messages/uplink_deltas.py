"""The WAN uplink's message: a window's aggregated stock deltas and exceptions, gzip JSON."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from edge_runtime.messages.envelope import Message, UtcTime

DELTA_COLUMNS = ("sku", "d_on_hand", "d_reserved", "on_hand", "atp", "events")
Num = int | float


class UplinkDeltas(Message):
    """Aggregated stock deltas and exceptions for the central system, gzip-compressed JSON.

    >>> from datetime import datetime, timezone
    >>> from edge_runtime.messages import parse_message
    >>> t0, t1 = (datetime(2026, 1, 5, 9, m, tzinfo=timezone.utc) for m in (0, 15))
    >>> u = UplinkDeltas(store_id="S1", model_version="m", window_start=t0, window_end=t1,
    ...                  events=3, deltas=[("A", -2, 0, 8, 8, 3)])
    >>> payload = u.to_payload()
    >>> payload[:2].hex(), parse_message(payload).deltas  # gzip on the wire
    ('1f8b', [('A', -2, 0, 8, 8, 3)])
    """

    TOPIC: ClassVar[str] = "uplink/deltas"
    compressed: ClassVar[bool] = True
    kind: Literal["uplink"] = Field("uplink", description="message kind; also fixes the topic")
    window_start: UtcTime = Field(description="start of the window (gateway clock, UTC)")
    window_end: UtcTime = Field(description="end of the window (gateway clock, UTC)")
    events: int = Field(description="events applied in the window, all SKUs")
    columns: tuple[str, ...] = Field(DELTA_COLUMNS, description="names of a `deltas` row")
    deltas: list[tuple[str, Num, Num, Num, Num, int]] = Field(
        description="one row per SKU that changed: net change of on-hand and reserved units in "
        "the window, on-hand and ATP at its end, events applied"
    )
    exceptions: list[tuple[str, str, str]] = Field(
        default_factory=list,
        description="alerts and conflicts of the window as [sku, kind, first reason code]; "
        "the full messages went out on their own topics",
    )
