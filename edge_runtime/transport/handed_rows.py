"""Outbox rows handed to the hub link in memory by the commits that wrote them, so that a
wake does not cost the link a read of SQLite.

The link's read after another connection's commit is the dear kind: SQLite drops the reader's
page cache when the file changed, so each read (about one a window, fifty a second) fetched
its pages again. The gateway hands the link every row of each commit, in commit order
(``JetStreamUplink.wake``). The outbox's ``seq`` is ``AUTOINCREMENT``: committed rows have
consecutive positions, so the link knows it has seen every row up to ``known_upto``, and
handed rows continuing it without a gap are all there is. Anything else (a gap: rows a path
did not hand over, more rows than fit here, a restart, a failed publish, a wake without rows,
a wait that timed out) sends the link back to SQLite, which sets ``known_upto`` again. A gap
costs a read, never a row.

>>> from edge_runtime.store.outbox import OutboxRow
>>> handed = HandedRows(("uplink",))
>>> handed.take() is None  # nothing known yet: read SQLite
True
>>> handed.known_upto = 4
>>> handed.add([OutboxRow(5, "m5", "t", b"x", False, None, "uplink"),
...             OutboxRow(6, "m6", "t", b"y", False, "A", "dead_letter")])
>>> [r.seq for r in handed.take()], handed.known_upto
([5], 6)
>>> handed.add([OutboxRow(8, "m8", "t", b"z", False, None, "uplink")])
>>> handed.take() is None  # row 7 was not handed over
True
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from edge_runtime.store.hub_outbox_reads import ForwardRow
from edge_runtime.store.outbox import OutboxRow

CAP = 5000  # rows held for the link; beyond (the hub away for long), it reads SQLite again


class HandedRows:
    """Committed rows from the gateway's threads (:meth:`add`, :meth:`need_read`), taken by
    the link's thread (:meth:`take`); ``kinds``: those the link forwards.

    >>> from edge_runtime.store.outbox import OutboxRow
    >>> handed = HandedRows(("uplink",))
    >>> handed.known_upto = 4
    >>> handed.add([OutboxRow(5, "m5", "t", b"x", False, None, "uplink")])
    >>> handed.need_read()  # e.g. a wake without rows: what SQLite holds is unknown
    >>> handed.take() is None, handed.known_upto
    (True, 4)
    """

    def __init__(self, kinds: Sequence[str]):
        self._kinds = frozenset(kinds)
        self._lock = threading.Lock()
        self._rows: list[OutboxRow] = []
        self._read = False  # a wake without rows, or too many rows: read SQLite
        self.known_upto: int | None = None  # the link's thread only: every row up to it seen

    def add(self, rows: Iterable[OutboxRow]) -> None:
        """Rows of one commit, in their order, handed over after the commit."""
        with self._lock:
            if len(self._rows) >= CAP:
                self._rows, self._read = [], True
            else:
                self._rows.extend(rows)

    def need_read(self) -> None:
        """The next :meth:`take` answers None (rows may be in SQLite only)."""
        with self._lock:
            self._rows, self._read = [], True

    def take(self) -> list[ForwardRow] | None:
        """The forwarded kinds' rows after ``known_upto`` (which moves past every row taken),
        or None when only a read of SQLite can say which rows there are."""
        with self._lock:
            rows, self._rows = self._rows, []
            read, self._read = self._read, False
        known = self.known_upto
        if read or known is None:
            return None
        out = []
        for r in rows:
            if r.seq <= known:
                continue  # the last read of SQLite had it
            if r.seq != known + 1:
                return None
            known = r.seq
            if r.kind in self._kinds:
                out.append(ForwardRow(r.seq, r.message_id, r.kind, r.payload, 0.0))
        self.known_upto = known
        return out
