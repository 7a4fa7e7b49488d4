"""The ledger rules: how one SKU's stock follows from its events, folded in event-time order.

A SKU's state is a pure function of the *set* of its events: they are applied in event-time
order (ties broken by ``event_id``), whatever order they arrived in. So duplicates and late
events never change the result, and a cycle count is never double-corrected by an event that
happened before it but arrived after it (that event is folded in before the count, and the
count's shrink/gain absorbs it).

Rules per event type (``q`` = qty):

- sale: on_hand -= q. return, void: on_hand += q (they reverse their sale; ``sold`` goes down).
- receipt, transfer_in: on_hand += q. transfer_out, damage: on_hand -= q. adjustment: on_hand += q
  (signed).
- reservation: granted = min(q, available); reserved += granted. reservation_release: reserved -= q
  (never below 0). fulfilment: reserved units leave: reserved -= min(q, reserved), on_hand -= q.
- cycle_count: on_hand := q; the difference to the book is recorded as shrink (fewer) or gain.

Last-unit contention rule: **the physical event wins, the newest promise loses.** A sale (or any
event in which units physically leave) is a fact and is always applied; a reservation is a
promise and is granted only up to available-to-promise (``on_hand - reserved - safety_buffer``).
When units physically leave that were reserved, reservations are cut to what is on hand. Each
case writes a ``Conflict`` (``reservation_short``, ``reserved_units_gone``), and a sale beyond
the book (on_hand falling below 0) writes ``sold_beyond_book`` once per episode: nothing is oversold silently, and
available-to-promise is never negative.

>>> s = SkuState("A")
>>> conflicts = []
>>> for kind, qty, t in [("receipt", 2, 1), ("reservation", 1, 2), ("sale", 2, 3)]:
...     apply(s, kind, qty, t, f"e{t}", "o1", 0, conflicts)
>>> s.on_hand, s.reserved, [c.kind for c in conflicts]
(0, 0, ['reserved_units_gone'])
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from edge_runtime.store.confidence import confidence, updated_discrepancy

STATE_FIELDS = (
    "sku",
    "on_hand",
    "reserved",
    "sold",
    "received",
    "shipped",
    "damaged",
    "adjusted",
    "fulfilled",
    "shrink",
    "gain",
    "counts",
    "last_count_us",
    "discrepancy",
    "first_us",
    "last_us",
    "last_id",
    "events",
)


@lru_cache(maxsize=1 << 16)
def iso_utc(ts_us: int | None) -> str | None:
    """Microseconds since the epoch as ISO-8601 UTC (``None`` stays ``None``).

    Cached: every decided state change formats its SKU's last event and count times, and
    events of one receipt or invoice share their time (formatting was ~10 % of a batch)."""
    if ts_us is None:
        return None
    return datetime.fromtimestamp(ts_us / 1_000_000, UTC).isoformat()


@dataclass(slots=True)
class SkuState:
    """The folded book state of one SKU (what the ``stock`` table stores, field for field).

    >>> SkuState("A").on_hand
    0
    """

    sku: str
    on_hand: int = 0
    reserved: int = 0
    sold: int = 0  # sales minus returns and voids
    received: int = 0  # receipts and transfers in
    shipped: int = 0  # transfers out
    damaged: int = 0
    adjusted: int = 0  # net signed adjustments
    fulfilled: int = 0
    shrink: int = 0  # units missing at cycle counts
    gain: int = 0  # units found at cycle counts
    counts: int = 0
    last_count_us: int | None = None
    discrepancy: float = 0.0
    first_us: int | None = None
    last_us: int = -(2**62)  # event time of the latest folded event: the fold-order key
    last_id: str = ""
    events: int = 0

    def row(self) -> tuple:
        # Spelled out: this runs for every changed SKU of every commit (a genexpr over
        # STATE_FIELDS cost ~10 % of ingest time).
        return (
            self.sku,
            self.on_hand,
            self.reserved,
            self.sold,
            self.received,
            self.shipped,
            self.damaged,
            self.adjusted,
            self.fulfilled,
            self.shrink,
            self.gain,
            self.counts,
            self.last_count_us,
            self.discrepancy,
            self.first_us,
            self.last_us,
            self.last_id,
            self.events,
        )

    def copy(self) -> SkuState:
        return SkuState(*self.row())

    def available(self, safety_buffer: int) -> int:
        """Available-to-promise: on hand less reserved less the safety buffer, never below 0."""
        free = self.on_hand - self.reserved - safety_buffer
        return free if free > 0 else 0


@dataclass(slots=True, frozen=True)
class Conflict:
    """A contention or book error found while folding; published on ``.../conflicts``.

    >>> Conflict("A", "e9", "reservation_short", "o1", 3, 1, 2, 1, 1, 0).shortfall
    2
    """

    sku: str
    event_id: str
    kind: str  # reservation_short | reserved_units_gone | sold_beyond_book
    order_id: str | None
    requested: int
    granted: int
    shortfall: int
    on_hand: int
    reserved: int
    ts_us: int

    @property
    def event_time(self) -> str:
        return iso_utc(self.ts_us)

    def row(self) -> tuple:
        return (
            self.sku,
            self.event_id,
            self.kind,
            self.order_id,
            self.requested,
            self.granted,
            self.shortfall,
            self.on_hand,
            self.reserved,
            self.ts_us,
        )


@dataclass(slots=True, frozen=True)
class StockState:
    """What callers see of a SKU: book stock, available-to-promise and confidence.

    >>> StockState.of(SkuState("A", on_hand=5, reserved=2), safety_buffer=1, as_of_us=0).available
    2
    """

    sku: str
    on_hand: int
    reserved: int
    safety_buffer: int
    available: int
    confidence: float
    last_count_time: str | None
    last_event_time: str | None
    shrink: int
    gain: int
    sold: int
    received: int
    damaged: int
    events: int

    @classmethod
    def of(cls, s: SkuState, safety_buffer: int, as_of_us: int) -> StockState:
        # Why a draft: a frozen dataclass's __init__ sets each field through
        # object.__setattr__, and even the slots' own setters called as functions cost two to
        # three times a plain attribute store; this runs for every SKU at every store day's
        # close and for every decided state change. The draft has StockState's very slots, so
        # it becomes one by a change of class (no copy), frozen from then on.
        state = _StockStateDraft()
        state.sku = s.sku
        state.on_hand = s.on_hand
        state.reserved = s.reserved
        state.safety_buffer = safety_buffer
        state.available = s.available(safety_buffer)
        state.confidence = confidence(s.last_count_us, s.first_us, s.discrepancy, as_of_us)
        state.last_count_time = iso_utc(s.last_count_us)
        state.last_event_time = iso_utc(s.last_us) if s.events else None
        state.shrink = s.shrink
        state.gain = s.gain
        state.sold = s.sold
        state.received = s.received
        state.damaged = s.damaged
        state.events = s.events
        state.__class__ = cls
        return state


class _StockStateDraft:
    """A ``StockState`` being filled in by ``StockState.of``: the same slots, writable."""

    __slots__ = StockState.__slots__


def _settle(s: SkuState, before: int, event_id: str, order_id, qty: int, ts_us: int, out: list):
    """Units left physically: reservations may not exceed what is on hand any more, and the
    book going below zero is reported once per episode (not on every later sale)."""
    cover = s.on_hand if s.on_hand > 0 else 0
    if s.reserved > cover:
        short = s.reserved - cover
        s.reserved = cover
        out.append(
            Conflict(
                s.sku,
                event_id,
                "reserved_units_gone",
                order_id,
                qty,
                qty,
                short,
                s.on_hand,
                s.reserved,
                ts_us,
            )
        )
    if s.on_hand < 0 <= before:
        out.append(
            Conflict(
                s.sku,
                event_id,
                "sold_beyond_book",
                order_id,
                qty,
                qty,
                -s.on_hand,
                s.on_hand,
                s.reserved,
                ts_us,
            )
        )


def apply(
    s: SkuState,
    kind: str,
    qty: int,
    ts_us: int,
    event_id: str,
    order_id: str | None,
    safety_buffer: int,
    conflicts: list[Conflict],
) -> None:
    """Fold one ledger event into ``s`` (the caller keeps event-time order); conflicts appended."""
    before = s.on_hand
    if s.first_us is None:
        s.first_us = ts_us
    s.last_us = ts_us
    s.last_id = event_id
    s.events += 1
    if kind == "sale":
        s.on_hand -= qty
        s.sold += qty
    elif kind == "return" or kind == "void":
        s.on_hand += qty
        s.sold -= qty
        return
    elif kind == "receipt" or kind == "transfer_in":
        s.on_hand += qty
        s.received += qty
        return
    elif kind == "reservation":
        free = s.available(safety_buffer)
        granted = qty if qty <= free else free
        s.reserved += granted
        if granted < qty:
            conflicts.append(
                Conflict(
                    s.sku,
                    event_id,
                    "reservation_short",
                    order_id,
                    qty,
                    granted,
                    qty - granted,
                    s.on_hand,
                    s.reserved,
                    ts_us,
                )
            )
        return
    elif kind == "reservation_release":
        s.reserved -= qty if qty <= s.reserved else s.reserved
        return
    elif kind == "fulfilment":
        s.reserved -= qty if qty <= s.reserved else s.reserved
        s.on_hand -= qty
        s.fulfilled += qty
    elif kind == "transfer_out":
        s.on_hand -= qty
        s.shipped += qty
    elif kind == "damage":
        s.on_hand -= qty
        s.damaged += qty
    elif kind == "adjustment":
        s.on_hand += qty
        s.adjusted += qty
        if qty > 0:
            return
    elif kind == "cycle_count":
        diff = qty - s.on_hand
        s.discrepancy = updated_discrepancy(s.discrepancy, s.counts, qty, s.on_hand)
        s.counts += 1
        s.last_count_us = ts_us
        s.on_hand = qty
        if diff < 0:
            s.shrink -= diff
        else:
            s.gain += diff
            return
    else:
        raise ValueError(f"event type {kind!r} does not change the ledger")
    # Units physically left (or a count found fewer): settle contention with reservations.
    if s.reserved > s.on_hand or s.on_hand < 0 <= before:
        _settle(s, before, event_id, order_id, qty, ts_us, conflicts)


def fold(
    sku: str, rows, safety_buffer: int, start: SkuState | None = None
) -> tuple[SkuState, list[Conflict]]:
    """Fold ``(type, qty, ts_us, event_id, order_id)`` rows of one SKU, sorting them by event time,
    onto a copy of ``start`` (the state of the SKU's earlier events, archived) or a new state.

    >>> s, _ = fold("A", [("cycle_count", 5, 10, "c"), ("sale", 1, 5, "s")], 0)
    >>> s.on_hand, s.shrink
    (5, 0)
    """
    state = start.copy() if start is not None else SkuState(sku)
    conflicts: list[Conflict] = []
    for row in sorted(rows, key=lambda r: (r[2], r[3])):
        apply(state, row[0], row[1], row[2], row[3], row[4] if len(row) > 4 else None,
              safety_buffer, conflicts)  # fmt: skip
    return state, conflicts
