"""The floor's minimal store process, for ``benchmarks/hub_floor.py``: one per store, in a
process (and session) of its own, doing only what the store side of the contract makes mandatory.

    python benchmarks/hub_floor_store.py STORE WORK_DIR MQTT_PORT NATS_URL COUNTS.jsonl

One thread, one asyncio loop: paho's client (the gateway's ``LeanClient``: buffered reads, lean
PUBACKs, ``TCP_NODELAY``) runs on the loop's own socket callbacks, QoS 1, persistent session,
manual acknowledgement. What arrives is grouped as the gateway groups it: a group is taken at
once when none was taken in the last ``WINDOW_S``, else when that window ends. Per group: each
payload parsed (JSON, one event or a list), each event inserted in a SQLite file (WAL,
``synchronous=FULL`` as the gateway's ledger; a redelivered event id is not counted again) and
committed (the WAL copied back by the ledger's own ``Checkpointer`` thread, as the gateway
does, not by the committing thread); the new on hand of each SKU it touched published to JetStream on
``shelfcast.<store>.stock`` with ``Nats-Msg-Id`` and the publish acknowledgement awaited (a
failed publish is retried, the group held); then the group's PUBACKs, in one write. At start the
on hand is rebuilt from the file, so a group redelivered after a crash publishes its SKUs again.

No decisions, forecasts, alerts, outbox, heartbeats or gzip. Speaks ``hub_gateway.py``'s stdin
protocol (``ready``; ``drain`` -> ``drained``; ``stock <sku>``; ``quit``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import nats
import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_runtime.store.checkpointer import Checkpointer  # noqa: E402
from edge_runtime.transport.lean_client import LeanClient  # noqa: E402

WINDOW_S = 0.02  # the gateway's uplink window (benchmarks/hub_gateway.py)
COUNT_CHUNK = 1000  # SKUs per message of the opening counts
RETRY_S = 0.2  # a refused JetStream publish is tried again after this


def stock_subject(store: str) -> str:
    return f"shelfcast.{store}.stock"


def events_topic(store: str) -> str:
    return f"shelfcast/{store}/events/pos"


class FloorStore:
    """The ledger file, the MQTT client and the JetStream publisher of one store."""

    def __init__(self, store: str, db: Path, mqtt_port: int, nats_url: str):
        self.store, self.mqtt_port, self.nats_url = store, mqtt_port, nats_url
        self.db = sqlite3.connect(db, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's thread does it
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, type TEXT, "
            "sku TEXT, qty INTEGER, event_time TEXT)"
        )
        self.checkpointer = Checkpointer(db)
        self.on_hand: dict[str, int] = {}
        for kind, sku, qty in self.db.execute("SELECT type, sku, qty FROM events ORDER BY rowid"):
            self._apply(kind, sku, qty)
        self.seq = self.db.execute("SELECT count(*) FROM events").fetchone()[0]  # ids unique
        self.boot = time.time_ns()  # message ids of this start: unique across restarts
        self.inbox: list[tuple[bytes, int]] = []  # (payload, mid) not yet committed
        self.busy = False
        self.last_group = 0.0
        self.nc = self.js = self.client = None
        self.wake: asyncio.Event | None = None
        self.subscribed: asyncio.Event | None = None

    def _apply(self, kind: str, sku: str, qty: int) -> None:
        if kind == "cycle_count":
            self.on_hand[sku] = qty
        elif kind == "sale":
            self.on_hand[sku] = max(0, self.on_hand.get(sku, 0) - qty)

    # --- MQTT on the loop's socket callbacks -------------------------------------------------
    def _connect_mqtt(self) -> None:
        loop = asyncio.get_running_loop()
        c = LeanClient(mqtt.CallbackAPIVersion.VERSION2, client_id=f"floor-{self.store}",
                       clean_session=False, manual_ack=True)  # fmt: skip
        c.on_payload = self._take
        c.on_connect = lambda cl, *_: cl.subscribe(events_topic(self.store), qos=1)
        c.on_subscribe = lambda *_: self.subscribed.set()
        c.on_socket_open = lambda cl, _u, sock: loop.add_reader(sock, cl.loop_read)
        c.on_socket_close = lambda _c, _u, sock: loop.remove_reader(sock)
        c.on_socket_register_write = lambda cl, _u, sock: loop.add_writer(sock, cl.loop_write)
        c.on_socket_unregister_write = lambda _c, _u, sock: loop.remove_writer(sock)
        c.connect("127.0.0.1", self.mqtt_port, keepalive=60)
        self.client = c

    async def _mqtt_misc(self) -> None:
        while True:  # paho's keepalive pings
            await asyncio.sleep(1.0)
            self.client.loop_misc()

    def _take(self, payload: bytes, _topic: str, mid: int, _qos: int) -> None:
        self.inbox.append((payload, mid))
        self.wake.set()

    # --- a group: commit, publish and its ack, PUBACKs -----------------------------------------
    def _commit(self, items: list[tuple[bytes, int]]) -> dict[str, int]:
        """Insert the group's events in one transaction; the on hand of each SKU named."""
        touched: dict[str, int] = {}
        cur = self.db.cursor()
        cur.execute("BEGIN")
        for payload, _mid in items:
            body = json.loads(payload)
            for e in body if isinstance(body, list) else [body]:
                row = (e["event_id"], e["type"], e["sku"], e.get("qty", 1), e.get("event_time"))
                if cur.execute("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?)", row).rowcount:
                    self._apply(e["type"], e["sku"], row[3])
                touched[e["sku"]] = self.on_hand.get(e["sku"], 0)  # again if redelivered
        cur.execute("COMMIT")
        self.checkpointer.nudge()
        return touched

    async def _publish(self, on_hand: dict[str, int]) -> None:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "on_hand": on_hand}, separators=(",", ":"))
        headers = {"Nats-Msg-Id": f"{self.store}:{self.boot}:{self.seq}"}  # same on a retry
        while True:
            try:
                await self.js.publish(stock_subject(self.store), body.encode(), headers=headers)
                return
            except (nats.errors.Error, TimeoutError):
                await asyncio.sleep(RETRY_S)

    async def _pump(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            due = self.last_group + WINDOW_S - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
            items, self.inbox = self.inbox, []
            if not items:
                continue
            self.busy, self.last_group = True, time.monotonic()
            touched = self._commit(items)
            if touched:
                await self._publish(touched)
            self.client.ack_many([mid for _p, mid in items])
            self.client.loop_write()
            self.busy = False

    # --- start, opening counts, commands -------------------------------------------------------
    async def ingest_counts(self, counts: list[dict]) -> None:
        """The opening counts committed and published (in chunks) before ``ready``."""
        for i in range(0, len(counts), COUNT_CHUNK):
            chunk = [(json.dumps(counts[i : i + COUNT_CHUNK]).encode(), 0)]
            await self._publish(self._commit(chunk))

    async def run(self, counts: list[dict], say) -> None:
        self.wake, self.subscribed = asyncio.Event(), asyncio.Event()
        self.nc = await nats.connect(self.nats_url)
        self.js = self.nc.jetstream()
        await self.ingest_counts(counts)
        self._connect_mqtt()
        tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._mqtt_misc())]
        await asyncio.wait_for(self.subscribed.wait(), 30)
        say("ready")
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode():
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "drain":
                while self.inbox or self.busy:
                    await asyncio.sleep(0.01)
                say("drained")
            elif cmd == "stock":
                say(json.dumps(self.on_hand.get(arg)))
            elif cmd == "quit":
                break
        for t in tasks:
            t.cancel()
        self.client.disconnect()
        await self.nc.close()
        self.checkpointer.stop()
        self.db.close()


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    store, work, port, nats_url, counts_path = argv
    counts = [json.loads(x) for x in Path(counts_path).read_text().splitlines() if x]
    floor = FloorStore(store, Path(work) / f"{store}.floor.sqlite", int(port), nats_url)
    asyncio.run(floor.run(counts, say))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
