"""Moving old events from the ledger's log into the archive, an hour of event time at a time.

What may leave the log (``Ledger.archive_events`` applies it under the ledger's lock):

- only events older than the ingest bound ``max_late_days`` behind the ledger clock: no event
  that can still be accepted is older, so a SKU's archived events all precede (in event-time
  order, the fold order) every event still in the log or yet to come, and folding the archived
  ones once into a base state (``stock_base``) and the rest on top gives the state a fold of the
  whole log gives;
- only events logged before the position the restart snapshots cover (``keep_from``): a start
  reads the events after a snapshot's position and checks the event at it, so those stay;
  and never an hour that is not complete below that line.

Each unit (consecutive hours of one UTC day, up to ``UNIT_ROWS`` events) is one append to the
day's archive file and one transaction (base states, the events and the unit's conflicts out,
the archive mark cleared); see ``edge_runtime.store.event_archive`` for the crash rule.

>>> plan_units([(10, 1, 50, 40), (11, 51, 90, 40), (24, 91, 99, 9)], rows_per_unit=60)
[Unit(day='1970-01-01', t0_us=36000000000, t1_us=39600000000, lo=1, hi=50, rows=40), \
Unit(day='1970-01-01', t0_us=39600000000, t1_us=43200000000, lo=51, hi=90, rows=40), \
Unit(day='1970-01-02', t0_us=86400000000, t1_us=90000000000, lo=91, hi=99, rows=9)]
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.events import LEDGER_TYPES
from edge_runtime.store.stock import STATE_FIELDS, SkuState, apply
from edge_runtime.store.store_failure import write_transaction

HOUR_US = 3_600_000_000
UNIT_ROWS = 50_000  # events per transaction: the ledger is locked for about this many deletes
_COLUMNS = ("seq", "event_id", "sku", "type", "qty", "ts_us", "event_time", "source",
            "order_id", "unit_price", "reason", "received_us")  # fmt: skip
_UNIT_ROWS_SQL = (
    f"SELECT {', '.join(_COLUMNS)} FROM events"
    " WHERE seq BETWEEN ? AND ? AND ts_us >= ? AND ts_us < ? ORDER BY seq"
)
_UPSERT_BASE = f"INSERT OR REPLACE INTO stock_base VALUES ({', '.join('?' * len(STATE_FIELDS))})"
_MARK = "archive_mark"


@dataclass(frozen=True)
class Unit:
    """Events of event time in ``[t0_us, t1_us)`` (all of one UTC day) at log positions
    ``lo..hi``: archived together.

    >>> unit = plan_units([(10, 1, 50, 40), (11, 51, 90, 40)], rows_per_unit=100)[0]
    >>> unit.day, (unit.lo, unit.hi), unit.rows  # two hours, few rows: archived as one unit
    ('1970-01-01', (1, 90), 80)
    """

    day: str
    t0_us: int
    t1_us: int
    lo: int
    hi: int
    rows: int


def _day(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).date().isoformat()


def plan_units(hours: list[tuple[int, int, int, int]], rows_per_unit: int = UNIT_ROWS) -> list:
    """Units from ``(hour, min seq, max seq, count)`` per hour of event time, oldest first:
    consecutive hours of a day joined while they stay within ``rows_per_unit`` events."""
    units: list[Unit] = []
    for hour, lo, hi, n in hours:
        last = units[-1] if units else None
        if (
            last is not None
            and last.day == _day(hour)
            and last.t1_us == hour * HOUR_US
            and last.rows + n <= rows_per_unit
        ):
            units[-1] = Unit(last.day, last.t0_us, (hour + 1) * HOUR_US,
                             min(last.lo, lo), max(last.hi, hi), last.rows + n)  # fmt: skip
        else:
            units.append(Unit(_day(hour), hour * HOUR_US, (hour + 1) * HOUR_US, lo, hi, n))
    return units


def archivable_units(conn: sqlite3.Connection, before_us: int, keep_from: int) -> list[Unit]:
    """The units of events older than ``before_us`` that may leave the log, given that events
    at positions ``keep_from`` and later stay (see the module docstring)."""
    tail = conn.execute("SELECT min(ts_us) FROM events WHERE seq >= ?", (keep_from,)).fetchone()
    if tail[0] is not None:
        before_us = min(before_us, tail[0])
    before_us -= before_us % HOUR_US  # whole hours only
    hours = conn.execute(
        f"SELECT ts_us / {HOUR_US} AS h, min(seq), max(seq), count(*) FROM events"
        " WHERE ts_us < ? GROUP BY h ORDER BY h",
        (before_us,),
    ).fetchall()
    return plan_units(hours)


def recover(conn: sqlite3.Connection, archive: EventArchive) -> None:
    """Undo an archive append whose transaction never committed (a crash between the two)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_MARK,)).fetchone()
    if row is None:
        return
    mark = json.loads(row[0])
    archive.cut(mark["day"], mark["size"])
    with write_transaction(conn):
        conn.execute("DELETE FROM meta WHERE key = ?", (_MARK,))


def move_unit(
    conn: sqlite3.Connection, archive: EventArchive, unit: Unit, safety_buffer: int
) -> tuple[dict[str, list[int]], list[str]]:
    """Archive one unit; returns the log positions of its ledger events, per SKU, and the ids
    of all its events."""
    rows = conn.execute(_UNIT_ROWS_SQL, (unit.lo, unit.hi, unit.t0_us, unit.t1_us)).fetchall()
    if not rows:
        return {}, []
    with write_transaction(conn):
        mark = json.dumps({"day": unit.day, "size": archive.size(unit.day)})
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_MARK, mark))
    archive.append(unit.day, (dict(zip(_COLUMNS, r, strict=True)) for r in rows))
    by_sku: dict[str, list[tuple]] = {}
    for r in rows:
        if r[3] in LEDGER_TYPES:
            by_sku.setdefault(r[2], []).append(r)
    with write_transaction(conn):
        conn.executemany(_UPSERT_BASE, [_folded(conn, sku, rs, safety_buffer).row()
                                        for sku, rs in by_sku.items()])  # fmt: skip
        conn.execute(
            "DELETE FROM events WHERE seq BETWEEN ? AND ? AND ts_us >= ? AND ts_us < ?",
            (unit.lo, unit.hi, unit.t0_us, unit.t1_us),
        )
        conn.execute("DELETE FROM conflicts WHERE ts_us < ?", (unit.t1_us,))
        conn.execute("DELETE FROM meta WHERE key = ?", (_MARK,))
    return {sku: [r[0] for r in rs] for sku, rs in by_sku.items()}, [r[1] for r in rows]


def base_state(conn: sqlite3.Connection, sku: str) -> SkuState | None:
    """The SKU's state folded from its archived events (None: none archived)."""
    row = conn.execute("SELECT * FROM stock_base WHERE sku = ?", (sku,)).fetchone()
    return SkuState(*row) if row is not None else None


def _folded(conn: sqlite3.Connection, sku: str, rows: list[tuple], buffer: int) -> SkuState:
    """The SKU's base state with ``rows`` folded on, in event-time order (their conflicts
    were reported when they were logged)."""
    state = base_state(conn, sku) or SkuState(sku)
    for r in sorted(rows, key=lambda r: (r[5], r[1])):
        apply(state, r[3], r[4], r[5], r[1], r[8], buffer, [])
    return state
