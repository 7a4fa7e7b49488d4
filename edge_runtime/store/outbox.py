"""The durable outbox: outgoing messages wait in SQLite until the broker acknowledges them.

paho-mqtt's own queue lives in memory (and drops messages when full), so every message is first
written here, in the same SQLite file and, where possible, in the same transaction as the ledger
change that caused it. The transport publishes pending rows in ``seq`` order (so messages about
one SKU keep their order), and marks them sent when the broker's PUBACK arrives. A crash between
publish and PUBACK sends the message again after restart: consumers de-duplicate on
``message_id``.

>>> import tempfile, os
>>> from edge_runtime.messages import GatewayState
>>> tmp = tempfile.TemporaryDirectory()
>>> box = Outbox(os.path.join(tmp.name, "ledger.sqlite"), prefix="shelfcast")
>>> [row.topic for row in box.put([GatewayState(store_id="S1", status="online", model_version="m")])]
['shelfcast/S1/state']
>>> box.depth(), box.mark_sent([box.pending(10)[0].seq]), box.depth()
(1, 1, 0)
>>> box.close(); tmp.cleanup()
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from edge_runtime.messages import GZIP_MAGIC, Message
from edge_runtime.store.ledger_queries import outbox_payloads
from edge_runtime.store.state_file import connect
from edge_runtime.store.store_failure import write_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    sku TEXT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, seq);
"""
# A decision's id is derived from what it decided (``messages.decision_id``): one made again
# (its events redelivered after a crash) is already here, sent or waiting, and is not repeated.
_INSERT = (
    "INSERT OR IGNORE INTO outbox (message_id, kind, sku, topic, payload, retain, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PRUNE_CHUNK = 5000  # rows deleted per transaction by ``prune``
_CHUNK = 500  # SQLite's bound-parameter limit is far above this; keeps statements small


def plain_payload(payload: bytes) -> bytes:
    """A stored payload as JSON: gzip ones (the uplink's) decompressed, others unchanged."""
    return gzip.decompress(payload) if payload[:2] == GZIP_MAGIC else payload


class OutboxRow(NamedTuple):
    """One stored message, ready to publish.

    >>> from edge_runtime.messages import GatewayState
    >>> box = Outbox(":memory:")
    >>> row = box.put([GatewayState(store_id="S1", status="online", model_version="m")])[0]
    >>> row.seq, row.topic, row.retain, row.kind
    (1, 'shelfcast/S1/state', True, 'state')
    >>> box.close()
    """

    seq: int
    message_id: str
    topic: str
    payload: bytes
    retain: bool
    sku: str | None
    kind: str = ""  # the message's kind (metrics count created messages by it)


class Outbox:
    """Outgoing messages in the SQLite file at ``path`` (normally the ledger's file).

    ``put(messages, conn=ledger_connection)`` joins the caller's open transaction (commit is the
    caller's); without ``conn`` it writes and commits on the outbox's own connection. Only one
    thread should call the writing methods at a time (the gateway's worker does).

    >>> from edge_runtime.messages import GatewayState
    >>> box = Outbox(":memory:", prefix="chain")
    >>> conn = box.connection
    >>> conn.execute("BEGIN")  # doctest: +ELLIPSIS
    <sqlite3.Cursor object at ...>
    >>> _ = box.put([GatewayState(store_id="S1", status="online", model_version="m")], conn=conn)
    >>> conn.rollback(); box.depth()  # the caller's transaction rolled back: nothing to send
    0
    >>> box.close()
    """

    def __init__(self, path: str | os.PathLike[str], prefix: str = "shelfcast"):
        self.path = str(path)
        self.prefix = prefix
        # Puts on this connection (uplink) must survive power loss; `mark_sent` relaxes it.
        self._conn = connect(self.path, "journal_mode=WAL", "synchronous=FULL")
        # The ledger creates the table with its others; this lets an outbox open a file whose
        # ledger has not started yet (idempotent).
        self._conn.executescript(SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        """The outbox's own connection (the uplink commits its baseline with its messages)."""
        return self._conn

    @staticmethod
    def create_schema(conn: sqlite3.Connection) -> None:
        """Create the outbox table on another connection to the same file (idempotent)."""
        conn.executescript(SCHEMA)

    def put(
        self, messages: Iterable[Message], conn: sqlite3.Connection | None = None
    ) -> list[OutboxRow]:
        """Store ``messages``; returns the rows (with their ``seq``) in publish order. A message
        whose ``message_id`` is stored already is skipped (not returned)."""
        if conn is not None:  # the caller's transaction: its commit, its rollback
            return self._insert(conn.cursor(), messages)
        with write_transaction(self._conn):
            return self._insert(self._conn.cursor(), messages)

    def _insert(self, cur: sqlite3.Cursor, messages: Iterable[Message]) -> list[OutboxRow]:
        now = time.time()
        rows = []
        for m in messages:
            topic = m.topic(self.prefix)
            payload = m.to_payload()
            cur.execute(_INSERT, (m.message_id, m.kind, m.sku, topic, payload, int(m.retain), now))
            if cur.rowcount == 0:
                continue  # the same decision is stored already
            row = OutboxRow(cur.lastrowid, m.message_id, topic, payload, m.retain, m.sku, m.kind)
            rows.append(row)
        return rows

    def pending(self, limit: int = 1000, after_seq: int = 0) -> list[OutboxRow]:
        """Unsent rows with ``seq > after_seq``, oldest first."""
        cur = self._conn.execute(
            "SELECT seq, message_id, topic, payload, retain, sku FROM outbox "
            "WHERE sent_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [OutboxRow(s, m, t, bytes(p), bool(r), k) for s, m, t, p, r, k in cur]

    def mark_sent(self, seqs: Sequence[int], by_kind: Counter[str] | None = None) -> int:
        """Mark rows acknowledged by the broker; returns how many changed and, when ``by_kind``
        is given, adds them to it by message kind. ``StoreError`` when the disk refuses: nothing
        is marked, and the caller keeps the seqs to mark later."""
        changed: Counter[str] = Counter()
        now = time.time()
        cur = self._conn.cursor()
        # No fsync for this commit: losing a mark re-sends a message, which consumers de-duplicate.
        cur.execute("PRAGMA synchronous=NORMAL")
        try:
            with write_transaction(self._conn):
                for i in range(0, len(seqs), _CHUNK):
                    chunk = list(seqs[i : i + _CHUNK])
                    marks = ",".join("?" * len(chunk))
                    cur.execute(
                        f"UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND seq IN ({marks})"
                        " RETURNING kind",
                        (now, *chunk),
                    )
                    changed.update(kind for (kind,) in cur.fetchall())
        finally:
            cur.execute("PRAGMA synchronous=FULL")  # outside any transaction: cannot fail
        if by_kind is not None:  # only once committed: a refused write counts nothing
            by_kind.update(changed)
        return changed.total()

    def depth(self) -> int:
        """Messages waiting for the broker."""
        return self._conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]

    def recent(
        self, kind: str | None = None, sku: str | None = None, limit: int = 100
    ) -> list[bytes]:
        """JSON of the newest messages, newest first, optionally of one kind and SKU (gzip
        uplink payloads are returned decompressed)."""
        return [plain_payload(p) for p in outbox_payloads(self._conn, kind, sku, limit)]

    def prune(
        self,
        keep_sent: int = 100_000,
        sent_before: float | None = None,
        upto_seq: int | None = None,
        require_sent: bool = True,
    ) -> int:
        """Delete delivered rows; returns how many. Delivered: marked sent (unless
        ``require_sent`` is False: nothing publishes them, MQTT is off) and at or below
        ``upto_seq`` when given (the hub link's cursor). Of those, every one created before
        ``sent_before`` (POSIX s) goes, and all but the newest ``keep_sent``. Pending rows
        are never deleted. In transactions of a few thousand rows: publishing goes on between."""
        done = ["1"]
        args: list = []
        if require_sent:
            done.append("sent_at IS NOT NULL")
        if upto_seq is not None:
            done.append("seq <= ?")
            args.append(upto_seq)
        where = " AND ".join(done)
        row = self._conn.execute(
            f"SELECT seq FROM outbox WHERE {where} ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (*args, keep_sent),
        ).fetchone()
        beyond = row[0] if row else 0  # rows at or below it are not among the newest keep_sent
        old = "seq <= ?" if sent_before is None else "(seq <= ? OR created_at < ?)"
        old_args = [beyond] if sent_before is None else [beyond, sent_before]
        sql = (
            f"DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE {where} AND {old}"
            f" ORDER BY seq LIMIT {_PRUNE_CHUNK})"
        )
        deleted = 0
        while True:
            with write_transaction(self._conn):
                n = self._conn.execute(sql, (*args, *old_args)).rowcount
            deleted += n
            if n < _PRUNE_CHUNK:
                return deleted

    def close(self) -> None:
        self._conn.close()
