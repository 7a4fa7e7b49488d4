"""An ``event_id`` sent again with different content: no duplicate, a dead letter naming
what differs (at most three fields) against the event it repeats.

Why a search, not a stored digest: the log has no ``event_id`` index (see
``edge_runtime.store.ledger``) and a digest per id would double the id index's memory, while
only repeated ids need their original. Those are searched in the log newest first (a
redelivery repeats recent events), starting near where the last ones were found.

>>> _said("x" * 50)
"'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."
"""

from __future__ import annotations

import sqlite3

from edge_runtime.store.events import Event, Rejection, raw_text
from edge_runtime.store.ledger_schema import CONTENT, RANGE_CONTENT, SEQ_CONTENT, WINDOW_IDS
from edge_runtime.store.stock import iso_utc

REUSED = "event_id reused with different content"
_REUSE_WINDOW = 8192  # log rows searched first for a repeated id: a redelivery is recent
_ID_CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds


class ReusedIds:
    """Finds the repeated ids of a batch whose content differs, on the ledger's connection."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self._hint = 0  # log position near which the last repeated ids were found

    def rejections(self, repeats: list[Event], new: list[Event], next_seq: int) -> list[Rejection]:
        """Rejections for the repeated ids whose content differs from the event they repeat:
        the stored one, or the first of this batch. The rest are true duplicates.

        Why a search, not a stored digest: the log has no ``event_id`` index (see the module
        docstring) and a digest per id would double the id index's memory, while only
        repeated ids need their original. Those are searched in the log newest first (a
        redelivery repeats recent events), starting near where the last ones were found."""
        first = {e.event_id: _content(e) for e in new}
        stored = self._stored_content({e.event_id for e in repeats} - first.keys(), next_seq)
        out = []
        for e in repeats:
            original = first.get(e.event_id) or stored.get(e.event_id)
            content = _content(e)
            if original is None or original == content:
                continue  # a true duplicate (or one logged long ago by an older rule)
            diffs = [
                (n, v, o) for n, v, o in zip(CONTENT, content, original, strict=True) if v != o
            ]
            diffs = [
                (n, iso_utc(v), iso_utc(o)) if n == "ts_us" else (n, v, o) for n, v, o in diffs
            ]
            said = "; ".join(f"{_name(n)} {_said(v)} (stored: {_said(o)})" for n, v, o in diffs[:3])
            out.append(
                Rejection(raw_text(e.to_dict()), f"{REUSED}: {said}", _name(diffs[0][0]), e.index)
            )
        return out

    def _stored_content(self, ids: set[str], next_seq: int) -> dict[str, tuple]:
        """The logged content of ``ids``, searched in windows of the log, newest first."""
        found: dict[str, tuple] = {}
        if not ids:
            return found
        windows = []
        if self._hint:
            windows.append((self._hint - _REUSE_WINDOW, self._hint + _REUSE_WINDOW))
        hi, size = next_seq, _REUSE_WINDOW
        while hi > 1:
            windows.append((max(1, hi - size), hi))
            hi, size = windows[-1][0], size * 4
        at: dict[str, int] = {}  # id -> its log position
        for lo, hi in windows:
            # Ids only, filtered here: cheaper than an IN (...) of thousands of ids in SQL.
            at.update((i, seq) for seq, i in self._conn.execute(WINDOW_IDS, (lo, hi)) if i in ids)
            if len(at) == len(ids):
                break
        if not at:
            return found
        seqs = sorted(at.values())
        if seqs[-1] - seqs[0] < 4 * len(seqs):  # together (a redelivery): one range read
            rows = self._conn.execute(RANGE_CONTENT, (seqs[0], seqs[-1]))
            found.update((r[0], r[1:]) for r in rows if r[0] in at)
        else:
            for k in range(0, len(seqs), _ID_CHUNK):
                chunk = seqs[k : k + _ID_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(SEQ_CONTENT.format(marks), chunk)
                found.update((r[0], r[1:]) for r in rows)
        self._hint = seqs[-1]
        return found


def _content(e: Event) -> tuple:
    return (e.sku, e.type, e.qty, e.ts_us, e.source, e.order_id, e.unit_price, e.reason)


def _name(column: str) -> str:
    return "event_time" if column == "ts_us" else column


def _said(value: object) -> str:
    """A value as a reason shows it (long text cut)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
