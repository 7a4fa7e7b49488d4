"""How far the hub link has forwarded the outbox, kept in the ledger's file (``jetstream_cursor``).

The link (``edge_runtime.transport.jetstream_uplink``) moves its cursor only after JetStream
acknowledged the rows up to it; a crash re-sends from the saved cursor and the stream drops the
repeats. It reads and writes on a connection of its own (it runs on its own thread, beside the
ledger's writer), and may open a file whose ledger has not started yet, so it creates its table
itself too (the ledger also creates it with its other tables).

>>> cursor = UplinkCursor(":memory:")
>>> cursor.load()
0
>>> cursor.save(42); cursor.load()
42
>>> cursor.close()
"""

from __future__ import annotations

import sqlite3

from edge_runtime.store.state_file import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS jetstream_cursor (name TEXT PRIMARY KEY, seq INTEGER);
"""
HUB = "hub"  # the one cursor a gateway keeps (the table allows a link per name)


class UplinkCursor:
    """The ``jetstream_cursor`` table on its own connection to the file at ``path``.

    >>> cursor = UplinkCursor(":memory:")
    >>> cursor.save(42); cursor.save(7, name="audit")  # one position per named link
    >>> cursor.load(), cursor.load("audit"), cursor.load("other")
    (42, 7, 0)
    >>> cursor.close()
    """

    def __init__(self, path: str):
        # The cursor only spares re-sending: a write lost with the power is a duplicate, dropped.
        self._conn = connect(path, "synchronous=NORMAL")
        self._conn.execute(SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        """The cursor's connection (the link reads the outbox on it too)."""
        return self._conn

    def load(self, name: str = HUB) -> int:
        """The saved outbox position (0: nothing forwarded yet)."""
        row = self._conn.execute("SELECT seq FROM jetstream_cursor WHERE name = ?", (name,))
        found = row.fetchone()
        return found[0] if found else 0

    def save(self, seq: int, name: str = HUB) -> None:
        """Store ``seq`` as the forwarded position (committed at once)."""
        self._conn.execute("INSERT OR REPLACE INTO jetstream_cursor VALUES (?, ?)", (name, seq))

    def close(self) -> None:
        self._conn.close()
