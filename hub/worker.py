"""A hub worker: applies the partitions it owns of the uplink stream to the network view.

The uplink stream is cut into ``PARTITIONS`` by store (hub/streams.py), each with a durable
push consumer. Workers agree who owns which partition from their heartbeats (hub/membership.py)
and each subscribes to the pushes of its own (a push consumer delivers each message as it is
stored: no batch to fill, no polling). Start N workers and the partitions are dealt among them;
kill one and, ``MEMBER_TTL_S`` later, the others own its partitions, and after ``ACK_WAIT_S``
JetStream delivers them what it left unacknowledged (network_view.py makes a second attempt
harmless); its stores' stock messages the new owner reads back from the stream sooner
(predecessors.py), and one that stops hands back what it holds unapplied at once. Each message is
acknowledged only after the view holds it; one that waits behind a backlog for longer than half
the ack wait is reported in progress, so it is not delivered again meanwhile
(held_messages.py).

Inside a worker, each store's stock messages are applied in order by a task of its own (its
other kinds by another), so round trips for different stores overlap; whatever of a store queued
while the previous write was under way is applied as one batch. A batch's figures are all its
messages need to be seen: the store's cursor and the acknowledgements follow in a second task
(``settle``), at most every ``SETTLE_S`` (``SETTLE_TRICKLE_S`` while messages trickle in)
and once for whatever batches were applied meanwhile, while the next batch's figures are
already being written.

>>> HubWorker("nats://127.0.0.1:4222", name="w1").name
'w1'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from hub.held_messages import HeldMessages
from hub.membership import Membership, owners
from hub.network_view import APPLIED, EARLY, STOCK, NetworkView
from hub.predecessors import READ_AFTER_DELIVERIES, READ_AGAIN_S, read_predecessors
from hub.streams import (
    ACK_WAIT_S,
    CURSOR_BUCKET,
    MAX_IN_FLIGHT,
    PARTITIONS,
    WORKERS,
    deliver_subject,
    ensure,
    until_ready,
)

log = logging.getLogger(__name__)

EARLY_HOLD_S = 0.5  # a message waits this long for its predecessor, then goes back
EARLY_DELAY_S = 0.05  # to be delivered again after this
BATCH_MAX = 500  # stock messages of one store applied together at most
SETTLE_S = 0.1  # a store's cursor moves (and its messages are acked) at most this often
SETTLE_TRICKLE_S = 0.5  # ... or this often while its messages keep coming a few at a time
SETTLE_MANY = 16  # applied messages that settle without waiting for the trickle to pause
COMING_MANY = 16  # a partition's messages not yet pushed that make a store's batch wait for them
COMING_POLL_S = 0.005  # ... looking this often whether they came
COMING_WAIT_MAX_S = 3.0  # ... this long at most


class Advanced(NamedTuple):
    """A store's cursor moved to ``seq`` (seen on the cursor bucket's watch)."""

    seq: int


class HubWorker:
    """One hub worker; ``run`` until ``stop``."""

    def __init__(self, url: str, name: str = "worker", replicas: int = 1):
        self.url = url
        self.name = name
        self.replicas = replicas
        self.applied = 0
        self._stop = asyncio.Event()
        self._stopping = False  # set once the worker hands back what it holds
        self._queues: dict[str, asyncio.Queue] = {}
        self._held = HeldMessages(ACK_WAIT_S)  # kept from redelivery while queued here
        self._settling: dict[str, tuple[list, asyncio.Event]] = {}  # store -> applied, unacked
        self._early: set[str] = set()  # stores whose loop holds messages for a predecessor
        self._reading: set[str] = set()  # stores whose predecessors are being read back
        self._read_at: dict[str, float] = {}  # store -> when its predecessors were last read
        self._cursor_watch: asyncio.Task | None = None  # runs only while ``_early`` is not empty
        self._coming: dict[str, int] = {}  # partition -> not yet pushed, said by its last push
        self._holding: dict[str, int] = {}  # partition -> pushed here, not yet acked nor nak'd
        self._js: Any = None
        self._tasks: list[asyncio.Task] = []
        self._subs: dict[int, Any] = {}  # owned partition -> its subscription
        self._nc: Any = None
        self._view: NetworkView | None = None

    async def run(self) -> None:
        import nats

        self._nc = nc = await nats.connect(
            servers=self.url.split(","),
            name=f"hub-{self.name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        self._js = js = nc.jetstream()
        self._view = await self._open_view(js)
        members = Membership(js, self.name, self._rebalance)
        self._tasks.append(asyncio.create_task(members.run()))
        self._tasks.append(asyncio.create_task(self._held.run()))
        await self._stop.wait()
        for t in [*self._tasks, self._cursor_watch]:
            if t is not None:
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._hand_back()
        log.info("worker %s stops: %d messages applied, %d handed back, %d reported in progress",
                 self.name, self.applied, self._held.released, self._held.told)  # fmt: skip
        await nc.drain()

    async def _hand_back(self) -> None:
        """What this worker holds unapplied goes back to the server now, for the partitions'
        next owners: left to the ack wait, their stores would stall that long. The
        subscriptions go first (what they had received is handed back through ``_on_msg``),
        so the server does not push it straight back here."""
        self._stopping = True
        for sub in self._subs.values():
            with contextlib.suppress(Exception):
                await sub.drain()
        with contextlib.suppress(Exception):
            await self._held.release()

    async def _open_view(self, js: Any) -> NetworkView:
        async def open_view() -> NetworkView:
            await ensure(js, self.replicas)
            return await NetworkView(js).open()

        return await until_ready(open_view, f"worker {self.name}")

    async def _rebalance(self, live: set[str]) -> None:
        """Subscribe to the partitions this worker owns now; let go of the others."""
        mine = {p for p, w in owners(live, PARTITIONS).items() if w == self.name}
        for p in set(self._subs) - mine:
            sub = self._subs.pop(p)
            with contextlib.suppress(Exception):
                # what the server sent before it goes through ``_on_msg`` (an unsubscribe
                # would drop it: unacknowledged until ``ACK_WAIT_S``, its store stalled)
                await sub.drain()
        for p in sorted(mine - set(self._subs)):
            self._subs[p] = await self._nc.subscribe(
                deliver_subject(p), queue=WORKERS, cb=self._on_msg, pending_msgs_limit=100_000
            )
        log.info("worker %s owns partitions %s", self.name, sorted(self._subs))

    async def _on_msg(self, msg: Any) -> None:
        if self._stopping:  # nobody applies it here any more
            await msg.nak()
            self._held.released += 1
            return
        _, store, kind, partition = msg.subject.rsplit(".", 3)
        # Alerts, conflicts and heartbeats need no order with the stock: their own queue, so a
        # burst of them never holds a sale's figure back.
        key = store if kind == STOCK else f"{store} {kind}"
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            loop = self._stock_loop if kind == STOCK else self._other_loop
            self._tasks.append(asyncio.create_task(loop(store, queue)))
        self._coming[partition] = msg.metadata.num_pending
        self._holding[partition] = self._holding.get(partition, 0) + 1
        self._held.add(msg)
        queue.put_nowait(msg)

    async def _other_loop(self, store: str, queue: asyncio.Queue) -> None:
        """A store's alerts, conflicts or heartbeats (one kind): what queued, as a batch."""
        assert self._view is not None
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < BATCH_MAX:
                batch.append(queue.get_nowait())
            subject = batch[0].subject.rsplit(".", 1)[0]
            work = self._view.apply_many(subject, [(m.headers, m.data) for m in batch])
            if await _ack_when_done(batch, work, f"apply {subject}"):
                self.applied += len(batch)
            self._gone(batch)

    async def _stock_loop(self, store: str, queue: asyncio.Queue) -> None:
        """One store's stock messages: what queued is applied as a batch. A message whose
        predecessor is not applied yet waits aside (keyed by that predecessor) while the queue
        moves on; it joins the batch as soon as its predecessor is applied, here or by another
        worker (the cursor watch puts an ``Advanced`` in this queue), else goes back after
        ``EARLY_HOLD_S``."""
        waiting: dict[int, tuple[float, Any]] = {}
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), EARLY_HOLD_S if waiting else None)
            except TimeoutError:
                first = None
            if first is not None and not isinstance(first, Advanced):
                await self._await_backlog(queue, first.subject.rsplit(".", 1)[1])
            items = [] if first is None else [first]
            while not queue.empty() and len(items) < BATCH_MAX:
                items.append(queue.get_nowait())
            batch = [m for m in items if not isinstance(m, Advanced)]
            if batch or (waiting and len(batch) < len(items)):  # news, or a cursor moved
                batch += [m for _, m in waiting.values()]  # they may follow now
                since = {id(m): t for t, m in waiting.values()}
                waiting.clear()
                await self._apply_stock(store, batch, waiting, since)
            now = time.monotonic()
            for prev, (t, msg) in list(waiting.items()):
                if now - t > EARLY_HOLD_S:
                    del waiting[prev]
                    await msg.nak(delay=EARLY_DELAY_S)
                    self._gone([msg])
            if not waiting:
                self._early.discard(store)

    async def _await_backlog(self, queue: asyncio.Queue, partition: str) -> None:
        """A backlog is taken in as few batches as it can: while the partition's last push
        said more than ``COMING_MANY`` of its messages are still to come, and the server may
        push them (this worker holds fewer than ``MAX_IN_FLIGHT`` of the partition
        unacknowledged), a store's batch waits for them (``BATCH_MAX`` at most, up to
        ``COMING_WAIT_MAX_S``). A SKU named all over a store's backlog is then written once,
        not once per batch cut while the backlog came in (the first message alone, then what
        came during its write, then the rest). Live traffic, pushed as it is stored, has
        nothing to come and does not wait. Nothing is acknowledged meanwhile: the wait
        changes when a message is applied, not whether."""
        deadline = time.monotonic() + COMING_WAIT_MAX_S
        while (
            self._coming.get(partition, 0) > COMING_MANY
            and self._holding.get(partition, 0) < MAX_IN_FLIGHT  # else none come till acks
            and queue.qsize() < BATCH_MAX
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(COMING_POLL_S)

    def _gone(self, messages: list) -> None:
        """``messages`` acknowledged or handed back: the server may push as many more."""
        for m in messages:
            if getattr(m, "reply", None):  # pushed (not read back from the stream)
                p = m.subject.rsplit(".", 1)[1]
                self._holding[p] = self._holding.get(p, 0) - 1

    async def _apply_stock(self, store: str, batch: list, waiting: dict, since: dict) -> None:
        assert self._view is not None
        try:
            outcomes = await self._view.apply_stock(
                store,
                [(m.headers or {}, m.data, m.metadata.num_delivered) for m in batch],
                settle=False,
            )
        except Exception:  # left for redelivery
            log.exception("could not apply store %s's stock messages; delivered again", store)
            for m in batch:
                await m.nak(delay=1.0)
            self._gone(batch)
            return
        done = []
        for m, outcome in zip(batch, outcomes, strict=True):
            if outcome == EARLY:
                prev = int(m.headers["Shelfcast-Prev-Seq"])
                if prev in waiting:  # a second copy of one already waiting: back it goes
                    await m.nak(delay=EARLY_DELAY_S)
                    self._gone([m])
                    continue
                waiting[prev] = (since.get(id(m), time.monotonic()), m)
                self._await_predecessor(store)
                if m.metadata.num_delivered >= READ_AFTER_DELIVERIES:
                    self._read_predecessors(store, m)
                continue
            done.append(m)  # a repeat too: acknowledged once the cursor covers it
            self.applied += outcome == APPLIED
        if done:
            self._settle_later(store, done)

    def _settle_later(self, store: str, messages: list) -> None:
        """Hand applied messages to the store's settle task (started on first use)."""
        entry = self._settling.get(store)
        if entry is None:
            entry = self._settling[store] = ([], asyncio.Event())
            self._tasks.append(asyncio.create_task(self._settle_loop(store, *entry)))
        entry[0].extend(messages)
        entry[1].set()

    async def _settle_loop(self, store: str, pending: list, wake: asyncio.Event) -> None:
        """Write the store's cursor, then acknowledge what it covers; what was applied
        meanwhile (``_settle_wait``) goes with it, as one (off the figures' way, so a wait that
        spares cursor writes and their deliveries to every watcher)."""
        assert self._view is not None
        while True:
            await wake.wait()
            await _settle_wait(pending, self._backlog)
            wake.clear()
            batch = pending[:]
            pending.clear()
            # On failure the batch is delivered again: applied again, each SKU's seq skips it.
            await _ack_when_done(batch, self._view.settle(store), f"move store {store}'s cursor")
            self._gone(batch)

    def _backlog(self) -> int:
        """Messages received and not yet taken up by their store's loop."""
        return sum(q.qsize() for q in self._queues.values())

    def _read_predecessors(self, store: str, msg: Any) -> None:
        """An early message keeps coming back: its predecessors may be held by a dead worker
        until the ack wait runs out. Read them from the stream into the store's queue (one
        read at a time per store, at most every ``READ_AGAIN_S``: what was read may be lost
        again, in a batch whose writes failed)."""
        now = time.monotonic()
        if store in self._reading or now - self._read_at.get(store, -READ_AGAIN_S) < READ_AGAIN_S:
            return
        self._reading.add(store)
        self._read_at[store] = now

        async def read() -> None:
            try:
                found = await read_predecessors(self._js, msg)
                log.info("store %s: %d stock messages read from the stream before its seq %s",
                         store, len(found), msg.headers.get("Shelfcast-Seq"))  # fmt: skip
                for m in found:
                    self._queues[store].put_nowait(m)
            except Exception as err:  # read again later; they still come after the ack wait
                log.warning("store %s: could not read its stock messages back (%s)", store, err)
            finally:
                self._reading.discard(store)

        task = asyncio.create_task(read())
        self._tasks.append(task)  # cancelled on stop; forgotten once done (reads recur for hours)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    def _await_predecessor(self, store: str) -> None:
        """The store's loop holds a message for its predecessor: watch the cursors."""
        self._early.add(store)
        if self._cursor_watch is None or self._cursor_watch.done():
            self._cursor_watch = asyncio.create_task(self._watch_cursors(self._js))

    async def _watch_cursors(self, js: Any) -> None:
        """Tell a store's loop that waits for a predecessor when any worker moved its cursor.
        Only while some loop waits (around a change of owners): the rest of the time every
        cursor move is this worker's own, and watching them would cost a delivery each. The
        watch's first values (every store's cursor now) cover a move made before it began."""
        kv = await js.key_value(CURSOR_BUCKET)
        watcher = await kv.watchall()
        try:
            while self._early:
                try:
                    entry = await watcher.updates(timeout=EARLY_HOLD_S)
                except TimeoutError:
                    continue
                if entry is not None and entry.value and entry.key in self._early:
                    value = json.loads(entry.value)
                    if self._view is not None:  # the store's loop goes on from it, unread
                        self._view.cursor.seen(entry.key, entry.revision, value)
                    self._queues[entry.key].put_nowait(Advanced(value["seq"]))
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    def stop(self) -> None:
        self._stop.set()


async def _settle_wait(pending: list, backlog: Callable[[], int]) -> None:
    """``SETTLE_S``, then more while the store's messages keep coming a few at a time, up to
    ``SETTLE_TRICKLE_S`` in all: at a trickle (one sale per message, a message every 50 to
    100 ms) a cursor write every ``SETTLE_S`` was one per one or two messages, a key-value
    write, its acknowledgement and a delivery to every watcher each. A store that pauses, or a
    worker with a ``backlog`` (messages queued unapplied: a drain, whose end is timed by its
    last acknowledgement), settles after ``SETTLE_S`` as before.

    >>> asyncio.run(_settle_wait([1], lambda: 0))  # nothing more came: one SETTLE_S
    """
    for _ in range(round(SETTLE_TRICKLE_S / SETTLE_S)):
        seen = len(pending)
        await asyncio.sleep(SETTLE_S)
        if len(pending) == seen or len(pending) >= SETTLE_MANY or backlog() > SETTLE_MANY:
            return


async def _ack_when_done(batch: list, work: Awaitable[object], what: str) -> bool:
    """Ack ``batch`` once ``work`` is done; when it fails, nak it for redelivery (say so)."""
    try:
        await work
    except Exception:
        log.exception("could not %s; it will be delivered again", what)
        for m in batch:
            await m.nak(delay=1.0)
        return False
    for m in batch:
        await m.ack()
    return True
