"""The gateway's link to the central hub: its uplink forwarded from the outbox to NATS JetStream,
and the hub's online reservations taken in as ordinary ``reservation`` events.

Forwarding: the outbox is already durable (SQLite) and ordered (``seq``), so the link reads the
uplink kinds (stock deltas, alerts, conflicts) after its own cursor, publishes each to
``shelfcast.<store>.<kind>`` with ``Nats-Msg-Id`` = ``message_id`` and waits for JetStream's
publish acknowledgements; only then it moves the cursor, kept in the same SQLite file at most
every ``CURSOR_SAVE_S`` (and at close). Its cursor is its own (MQTT marks rows sent
independently), so a hub outage of hours loses nothing: the link catches up from the cursor when
the servers answer again. The gateway wakes the link when it commits uplink rows (no polling
delay between a window's commit and its publication) and hands it the commit's rows, so most
wakes read no SQLite (``edge_runtime.transport.handed_rows``). A crash after the acks and before the
cursor write re-sends those rows: the stream drops them within its duplicate window, and the hub
applies stock deltas once per store in ``Shelfcast-Seq`` order whatever the window
(``Shelfcast-Prev-Seq`` names the store's previous stock message, so the hub can tell a gap from
a repeat).

Fleet: every ``heartbeat_s`` the link publishes the gateway's ``state`` (online, bundle version,
its backlog as ``outbox_depth``, the age of its oldest unforwarded row in the ``Shelfcast-Lag-Ms``
header) and ``offline`` when it stops; the hub takes a missing heartbeat as death.

Reservations: a durable pull consumer ``store-<store>`` on ``shelfcast.<store>.reservation``;
each event is ingested through the gateway's one ingest path (so the ledger's last-unit rule
decides, durably, before the ack) and a ``ReservationResult`` goes back on
``shelfcast.<store>.reservation_result``.

Model rollouts: the hub's bundle install commands (``shelfcast.<store>.install``) are taken by a
``RolloutAgent`` (edge_runtime/transport/bundle_rollout.py), which hands each bundle to
``Gateway.swap_bundle`` and reports on it every heartbeat.

>>> link = JetStreamUplink("nats://127.0.0.1:1", ":memory:", "S1")
>>> link.subject("uplink"), link.cursor
('shelfcast.S1.stock', 0)
>>> link.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from edge_runtime.messages import (
    RESERVATION,
    RESERVATION_RESULT,
    GatewayState,
    ReservationResult,
    hub_subject,
)
from edge_runtime.store.hub_outbox_reads import (
    STOCK_KIND,
    ForwardRow,
    backlog_after,
    last_stock_seq_before,
    rows_after,
    top_seq,
)
from edge_runtime.store.outbox import OutboxRow
from edge_runtime.store.uplink_cursor import UplinkCursor
from edge_runtime.transport.bundle_rollout import RolloutAgent
from edge_runtime.transport.handed_rows import HandedRows
from edge_runtime.transport.jetstream_acks import AckedPublisher
from edge_runtime.transport.loop_wake import LoopWake

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)

UPLINK_KINDS = ("uplink", "stockout", "replenishment", "anomaly", "conflict")
"""Outbox kinds the hub receives (``state`` is the link's own heartbeat, not an outbox row)."""
BATCH = 500  # rows published before waiting for their acks together
RETRY_MAX_S = 1.0  # a store back online is forwarding again within a second
IDLE_POLL_S = 1.0  # the gateway wakes the link on every commit; this only bounds a missed wake
# A pull request for reservations waits this long on the server: one arriving meanwhile comes
# at once; each expiry is another request, so a short one only costs an idle gateway CPU.
RESERVATION_WAIT_S = 5.0
ACK_TIMEOUT_S = 10.0  # JetStream's acknowledgements of a batch, all of them, within this
CURSOR_SAVE_S = 0.5  # a crash re-sends at most this much (dropped as duplicates): no fsync a row

Status = Callable[[], dict[str, Any]]  # model_version, version: the gateway as it is now
Ingest = Callable[[dict], Any]  # the gateway's ingest of one event (returns an IngestResult)


class JetStreamUplink:
    """Forwards the outbox at ``ledger_path`` to JetStream at ``url`` from a background thread."""

    def __init__(
        self,
        url: str,
        ledger_path: str,
        store_id: str,
        status: Status | None = None,
        ingest: Ingest | None = None,
        heartbeat_s: float = 5.0,
        prefix: str = "shelfcast",
        rollout: RolloutAgent | None = None,
    ):
        self.url = url
        self.rollout = rollout  # takes the hub's bundle installs, when given
        self.store_id = store_id
        self.prefix = prefix
        self.status = status or (lambda: {"model_version": "unknown"})
        self.ingest = ingest
        self.heartbeat_s = heartbeat_s
        self._cursor = UplinkCursor(ledger_path)
        self._conn = self._cursor.connection
        self.cursor = self._saved = self._cursor.load()
        self._saved_at = 0.0
        self._prev: int | None = None  # seq of the last stock row published, once known
        self.forwarded = 0
        self.connected = False
        self._woken = False  # a wake is on its way (a plain flag: set from the gateway's thread)
        self._handed = HandedRows(UPLINK_KINDS)  # committed rows, spared a read of SQLite
        self._async_wake: LoopWake | None = None  # set once the link's loop runs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_state = 0.0

    def subject(self, kind: str) -> str:
        return hub_subject(self.store_id, kind, self.prefix)

    # ---- the outbox side (SQLite, on the link's own connection) ---------------------------

    def _rows(self, limit: int = BATCH) -> list[ForwardRow]:
        """The rows to forward next: those handed over, or else read from SQLite (then every
        row up to the newest of that read is known: ``edge_runtime.transport.handed_rows``)."""
        handed = self._handed.take()
        if handed is not None:
            return handed
        top = top_seq(self._conn)  # read first: the rows' read below sees all it saw
        rows = rows_after(self._conn, self.cursor, UPLINK_KINDS, limit)
        last = rows[-1][0] if rows else 0
        self._handed.known_upto = last if len(rows) == limit else max(self.cursor, top, last)
        return rows

    def _prev_stock(self, seq: int) -> int:
        return last_stock_seq_before(self._conn, seq)

    def backlog(self) -> tuple[int, float]:
        """(rows not yet forwarded, age in seconds of the oldest of them)."""
        n, oldest = backlog_after(self._conn, self.cursor, UPLINK_KINDS)
        return n, (time.time() - oldest) if oldest else 0.0

    def forwarded_upto(self, conn: sqlite3.Connection) -> int:
        """The highest outbox position the link is done with: what retention may delete up to
        (read on ``conn``, the caller's connection to the same file). The saved cursor, not the
        one in memory: after a crash the link re-sends from the saved one, so those rows stay.

        The newest stock message at or below it stays too: the next one forwarded names it as
        its ``Shelfcast-Prev-Seq``, and the hub tells a gap from a repeat by it."""
        done = self._saved
        last_stock = last_stock_seq_before(conn, done + 1)
        return done if not last_stock else min(done, last_stock - 1)

    def _save_cursor(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.cursor != self._saved and (force or now - self._saved_at >= CURSOR_SAVE_S):
            self._cursor.save(self.cursor)
            self._saved, self._saved_at = self.cursor, now

    # ---- running ---------------------------------------------------------------------------

    def start(self) -> JetStreamUplink:
        self._thread = threading.Thread(target=self._run, name="jetstream-uplink", daemon=True)
        self._thread.start()
        return self

    def wake(self, rows: Iterable[OutboxRow] | None = None) -> None:
        """New outbox rows were committed: forward them now (safe from any thread). Given
        all the ``rows`` of a commit, in commit order, the link forwards them without reading
        SQLite, and wakes only when one of them is for the hub (most commits, a sale with no
        alert, write none); without, it reads SQLite."""
        if rows is None:
            self._handed.need_read()
        else:
            rows = list(rows)
            self._handed.add(rows)
            if not any(r.kind in UPLINK_KINDS for r in rows):
                return
        if self._woken:
            return  # a wake is already on its way
        self._woken = True
        self._poke()

    def _poke(self) -> None:
        wake = self._async_wake
        if wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to wake
                wake.set_threadsafe()

    def wait_forwarded(self, timeout: float = 10.0) -> bool:
        """Block until every uplink row in the outbox is acknowledged by JetStream."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.backlog()[0] == 0:
                return True
            self.wake()
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._save_cursor(force=True)
        self._cursor.close()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import nats

        self._async_wake = LoopWake(asyncio.get_running_loop())
        retry = 0.1
        while not self._stop.is_set():
            try:
                nc = await nats.connect(
                    servers=self.url.split(","),
                    name=f"gateway-{self.store_id}",
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    allow_reconnect=True,
                    error_cb=_quiet,
                )
            except Exception as err:  # unreachable: rows wait in the outbox
                log.info("hub unreachable (%s); retrying in %.1fs", err, retry)
                await asyncio.sleep(retry)
                retry = min(RETRY_MAX_S, retry * 2)
                continue
            self.connected = True
            retry = 0.1
            try:
                await self._serve(nc)
            except Exception:  # a loop failed: reconnect and go on from the cursor
                log.exception("hub link failed; reconnecting")
                await asyncio.sleep(0.5)
            finally:
                self.connected = False
                if self._stop.is_set():
                    with contextlib.suppress(Exception):
                        await self._publish_state(nc.jetstream(), "offline")
                # close, not drain: every publish was awaited to its ack, and a drain waits
                # (up to its 30 s timeout) on the message a cancelled pull fetch left queued
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _serve(self, nc) -> None:
        js = nc.jetstream()
        publisher = await AckedPublisher(nc).start()
        tasks = [asyncio.create_task(self._forward_loop(js, publisher))]
        if self.ingest is not None:
            tasks.append(asyncio.create_task(self._reservation_loop(js)))
        if self.rollout is not None:
            tasks.append(asyncio.create_task(self._rollout_loop(nc, js)))
        # Each task runs until the link stops (close wakes the forward loop) or fails: waited
        # for, not polled (ten turns a second of an idle gateway's loop, for nothing).
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        failed = next((t.exception() for t in done if not t.cancelled() and t.exception()), None)
        if failed is not None:
            raise failed
        await self._forward_once(publisher)  # what the gateway flushed at close

    async def _forward_loop(self, js, publisher: AckedPublisher) -> None:
        retry = 0.05
        assert self._async_wake is not None
        while not self._stop.is_set():
            # Cleared before the read: a commit after it sets them again and ends the wait.
            self._woken = False
            self._async_wake.clear()
            try:
                if time.monotonic() - self._last_state >= self.heartbeat_s:
                    await self._publish_state(js, "online")
                sent = await self._forward_once(publisher)
                retry = 0.05
            except Exception as err:  # no ack (server down, no quorum): the batch is re-sent
                log.info("hub did not acknowledge (%s); retrying in %.2fs", err, retry)
                await asyncio.sleep(retry)
                retry = min(RETRY_MAX_S, retry * 2)
                continue
            # Fewer than a batch: every row committed before the flags were cleared is sent,
            # and a later commit has set them again, so waiting misses nothing (and spares a
            # read that would find no row).
            if sent < BATCH:
                self._save_cursor()
                wait = min(
                    IDLE_POLL_S, max(0.0, self._last_state + self.heartbeat_s - time.monotonic())
                )
                if not await self._async_wake.wait(wait):
                    self._handed.need_read()  # a wait that timed out looks in SQLite

    async def _forward_once(self, publisher: AckedPublisher) -> int:
        rows = self._rows()
        if not rows:
            return 0
        try:
            prev = self._prev if self._prev is not None else self._prev_stock(rows[0][0])
            batch = []
            for seq, message_id, kind, payload, _created in rows:
                headers = {"Nats-Msg-Id": message_id, "Shelfcast-Seq": str(seq)}
                if kind == STOCK_KIND:
                    headers["Shelfcast-Prev-Seq"] = str(prev)
                    prev = seq
                batch.append((self.subject(kind), bytes(payload), headers))
            await publisher.publish_all(batch, ACK_TIMEOUT_S)  # raises unless all are stored
        except BaseException:  # not sent (cancelled at close too): again, from SQLite
            self._handed.known_upto = None
            raise
        self.cursor, self._prev = rows[-1][0], prev
        self._save_cursor()
        self.forwarded += len(rows)
        return len(rows)

    async def _publish_state(self, js, status: str) -> None:
        depth, lag_s = self.backlog()
        info = self.status()
        state = GatewayState(
            store_id=self.store_id,
            status=status,
            model_version=info.get("model_version", "unknown"),
            version=info.get("version"),
            outbox_depth=depth,
        )
        headers = {"Nats-Msg-Id": state.message_id, "Shelfcast-Lag-Ms": str(int(lag_s * 1000))}
        await js.publish(self.subject("state"), state.to_json(), headers=headers, timeout=2)
        self._last_state = time.monotonic()

    async def _rollout_loop(self, nc, js) -> None:
        assert self.rollout is not None
        while not self._stop.is_set():
            try:
                await self.rollout.run(nc, js, self._stop, self.heartbeat_s)
            except Exception as err:  # no stream yet, a node down: unacked commands come again
                log.info("bundle installs from the hub paused (%s); retrying", err)
                await asyncio.sleep(0.5)

    # ---- reservations from the hub ---------------------------------------------------------

    async def _reservation_loop(self, js) -> None:
        while not self._stop.is_set():
            try:
                await self._take_reservations(js)
            except Exception as err:  # no stream yet, a node down: unacked events come again
                log.info("reservations from the hub paused (%s); retrying", err)
                await asyncio.sleep(0.5)

    async def _take_reservations(self, js) -> None:
        sub = await js.pull_subscribe(
            self.subject(RESERVATION), durable=f"store-{self.store_id}", stream=None
        )
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                # one at a time: a bigger batch waits for more after the first arrives
                msgs = await sub.fetch(1, timeout=RESERVATION_WAIT_S)
            except TimeoutError:  # nothing waiting (nats' and asyncio's timeouts are both this)
                continue
            for msg in msgs:
                event = json.loads(msg.data)
                result = await loop.run_in_executor(None, self._decide, event)
                await js.publish(
                    self.subject(RESERVATION_RESULT),
                    result.model_dump_json(by_alias=True).encode(),
                    headers={"Nats-Msg-Id": f"result-{result.event_id}"},
                )
                await msg.ack()  # after the ledger's commit and the answer: never lost

    def _decide(self, event: dict) -> ReservationResult:
        """Ingest the reservation through the gateway and say what its ledger decided."""
        assert self.ingest is not None
        base = {
            "store_id": self.store_id,
            "event_id": str(event.get("event_id", "")),
            "order_id": event.get("order_id"),
            "sku": str(event.get("sku", "")),
            "requested": float(event.get("qty", 0) or 0),
        }
        if event.get("store_id") != self.store_id:
            return ReservationResult(**base, granted=0, rejected="event is for another store")
        result = self.ingest(event)
        if result.rejected:
            reason = result.rejections[0].reason if result.rejections else "rejected"
            return ReservationResult(**base, granted=0, rejected=str(reason))
        if result.duplicates:
            return ReservationResult(**base, granted=None, duplicate=True)
        for c in result.conflicts:
            if c.event_id == base["event_id"]:
                conflict = {
                    "kind": c.kind,
                    "requested": c.requested,
                    "granted": c.granted,
                    "shortfall": c.shortfall,
                    "on_hand": c.on_hand,
                    "reserved": c.reserved,
                }
                return ReservationResult(**base, granted=c.granted, conflict=conflict)
        return ReservationResult(**base, granted=base["requested"])


async def _quiet(err: Exception) -> None:
    """Connection errors while the hub is away: expected, logged without a traceback."""
    log.debug("hub connection: %s", err)


def link_gateway(gateway: Any) -> JetStreamUplink | None:
    """The started link of a ``Gateway`` whose config names a hub (``[hub] url``), else None."""
    cfg = gateway.cfg
    if not cfg.hub.url:
        return None
    return JetStreamUplink(
        cfg.hub.url,
        str(cfg.ledger_path),
        cfg.gateway.store_id,
        status=lambda: {"model_version": gateway.model_version},
        ingest=lambda event: gateway.ingest(event, "ecom"),
        heartbeat_s=cfg.hub.heartbeat_s,
        prefix=cfg.mqtt.topic_prefix,
        rollout=RolloutAgent(gateway, cfg.gateway.store_id, cfg.mqtt.topic_prefix),
    ).start()
