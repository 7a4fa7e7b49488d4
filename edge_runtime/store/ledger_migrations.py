"""Forward migrations of the ledger's SQLite file, one step per schema version.

A gateway upgraded in place must open the state directory its previous version wrote: the file
names its schema in ``meta`` and the ledger runs every step from there to
:data:`SCHEMA_VERSION`, in one transaction (a crash leaves the old schema, migrated again at the
next start). A file of a newer schema than this code knows is refused: going back is not a
migration.

Steps:

- ``1`` -> ``2``: open orders get a table of their own (``open_orders``), filled once from the
  outbox by the rule the gateway applied at every start before: a SKU's newest model-driven
  replenishment trigger is open unless a receipt of the SKU came at or after its time. The
  event-log archive's base states (``stock_base``) get their table.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> _ = conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
...                        "INSERT INTO meta VALUES ('schema', '1');" + TABLES)
>>> migrate(conn, "1", where="example")
'2'
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime

from edge_runtime.store import alert_episode_table, outbox, uplink_baseline, uplink_cursor
from edge_runtime.store.stock import STATE_FIELDS

SCHEMA_VERSION = "2"

# Tables added after schema 1 (created, empty, by every open; a migration fills them).
TABLES = f"""
CREATE TABLE IF NOT EXISTS open_orders (
    sku TEXT PRIMARY KEY,
    quantity REAL NOT NULL,
    order_id TEXT
);
CREATE TABLE IF NOT EXISTS stock_base ({", ".join(STATE_FIELDS)}, PRIMARY KEY (sku));
"""
# Tables the outbox, the decisions and the uplinks keep, defined in their own modules. Their
# owners created them on first use before the ledger did, with these same definitions, so a
# schema-2 file may hold them already: nothing to migrate, and an older gateway still opens it.
TABLES += outbox.SCHEMA + alert_episode_table.SCHEMA + uplink_baseline.SCHEMA + uplink_cursor.SCHEMA

# The rules policy's replenishment messages were never open orders (schema 1's rule).
_RULES_VERSION_AT_SCHEMA_1 = "rules-1"


class MigrationError(RuntimeError):
    """The file's schema is unknown or newer than this code: one line naming both.

    >>> import sqlite3
    >>> try:
    ...     migrate(sqlite3.connect(":memory:"), "3", where="ledger.sqlite")
    ... except MigrationError as err:
    ...     print(err)
    ledger.sqlite has ledger schema '3', which is newer than this code; this code reads '2'
    """


def _open_orders_from_outbox(conn: sqlite3.Connection) -> None:
    """Schema 1 kept open orders only in the outbox's replenishment payloads: read them once."""
    has_outbox = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
    ).fetchone()
    if not has_outbox:
        return
    latest: dict[str, dict] = {}
    for (payload,) in conn.execute(
        "SELECT payload FROM outbox WHERE kind = 'replenishment' ORDER BY seq DESC"
    ):
        m = json.loads(payload)
        if m.get("sku") and m.get("model_version") != _RULES_VERSION_AT_SCHEMA_1:
            latest.setdefault(m["sku"], m)  # newest first
    if not latest:  # nothing to re-open (the outbox may just have been created, empty)
        return
    received = dict(
        conn.execute("SELECT sku, max(ts_us) FROM events WHERE type = 'receipt' GROUP BY sku")
    )
    rows = []
    for sku, m in latest.items():
        at_us = datetime.fromisoformat(m["event_time"]).timestamp() * 1e6
        if at_us >= received.get(sku, -1):  # a receipt closed orders published before it
            rows.append((sku, float(m["recommended_qty"]), m.get("order_id")))
    conn.executemany("INSERT OR REPLACE INTO open_orders VALUES (?, ?, ?)", rows)


STEPS: dict[str, tuple[str, Callable[[sqlite3.Connection], None]]] = {
    "1": ("2", _open_orders_from_outbox),
}


def migrate(conn: sqlite3.Connection, found: str | None, where: str) -> str:
    """Bring the file on ``conn`` (at schema ``found``) to :data:`SCHEMA_VERSION` inside the
    caller's transaction; returns the new version. ``where`` names the file in errors."""
    version = found
    while version != SCHEMA_VERSION:
        if version not in STEPS:
            newer = version is not None and version.isdigit() and int(version) > int(SCHEMA_VERSION)
            why = "is newer than this code" if newer else "is unknown"
            raise MigrationError(
                f"{where} has ledger schema {version!r}, which {why}; "
                f"this code reads {SCHEMA_VERSION!r}"
            )
        version, step = STEPS[version][0], STEPS[version][1]
        step(conn)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (version,))
    return version
