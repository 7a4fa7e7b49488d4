"""A hub worker: one member of the queue group the hub's durable consumer pushes to.

The durable consumer ``hub`` on ``SHELFCAST_UPLINK`` pushes to a queue group: start N workers
and the stores' messages are shared among them (a push consumer delivers each message as it is
stored: no batch to fill, no polling). Each message is acknowledged only after the view holds
it. A worker killed mid-stream leaves its messages unacknowledged: after ``ACK_WAIT_S``
JetStream delivers them to another member, which applies what the dead one had not
(network_view.py makes the second attempt harmless).

Inside a worker, each store's stock messages are applied in arrival order by a task of its own
(its other kinds by another), so round trips to the buckets for different stores overlap.

>>> HubWorker("nats://127.0.0.1:4222", name="w1").name
'w1'
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, NamedTuple

from hub.network_view import EARLY, STOCK, NetworkView
from hub.streams import CURSOR_BUCKET, DELIVER, WORKERS, ensure

log = logging.getLogger(__name__)

EARLY_HOLD_S = 0.5  # a message waits this long for its predecessor, then goes back
EARLY_DELAY_S = 0.05  # to be delivered again after this


class Advanced(NamedTuple):
    """A store's cursor moved to ``seq`` (seen on the cursor bucket's watch)."""

    seq: int


class HubWorker:
    """One member of the workers' queue group; ``run`` until ``stop``."""

    def __init__(self, url: str, name: str = "worker", replicas: int = 1):
        self.url = url
        self.name = name
        self.replicas = replicas
        self.applied = 0
        self._stop = asyncio.Event()
        self._queues: dict[str, asyncio.Queue] = {}
        self._tasks: list[asyncio.Task] = []
        self._view: NetworkView | None = None

    async def run(self) -> None:
        import nats

        nc = await nats.connect(
            servers=self.url.split(","),
            name=f"hub-{self.name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        js = nc.jetstream()
        await ensure(js, self.replicas)
        self._view = await NetworkView(js).open()
        self._tasks.append(asyncio.create_task(self._watch_cursors(js)))
        await nc.subscribe(DELIVER, queue=WORKERS, cb=self._on_msg, pending_msgs_limit=100_000)
        await self._stop.wait()
        await nc.drain()
        for t in self._tasks:
            t.cancel()

    async def _on_msg(self, msg: Any) -> None:
        _, store, kind = msg.subject.rsplit(".", 2)
        # Alerts, conflicts and heartbeats need no order with the stock: their own queue, so a
        # burst of them never holds a sale's figure back.
        key = store if kind == STOCK else f"{store} {kind}"
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._tasks.append(asyncio.create_task(self._store_loop(queue)))
        queue.put_nowait(msg)

    async def _store_loop(self, queue: asyncio.Queue) -> None:
        """One store's messages in arrival order. A stock message whose predecessor is not
        applied yet waits aside (keyed by that predecessor) while the queue moves on; it is
        applied as soon as its predecessor is, here (the chain below) or by another worker
        (the cursor watch puts an ``Advanced`` in this queue), else handed back after
        ``EARLY_HOLD_S``."""
        waiting: dict[int, tuple[float, Any]] = {}
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), EARLY_HOLD_S if waiting else None)
            except TimeoutError:
                item = None
            if isinstance(item, Advanced):
                held = waiting.pop(item.seq, None)
                if held is not None:
                    await self._handle(held[1], waiting, held[0])
            elif item is not None:
                await self._handle(item, waiting)
            now = time.monotonic()
            for prev, (since, msg) in list(waiting.items()):
                if now - since > EARLY_HOLD_S:
                    del waiting[prev]
                    await msg.nak(delay=EARLY_DELAY_S)

    async def _watch_cursors(self, js: Any) -> None:
        """Tell each store's loop when any worker moved its cursor."""
        kv = await js.key_value(CURSOR_BUCKET)
        watcher = await kv.watchall()
        while True:
            entry = await watcher.updates(timeout=None)
            if entry is not None and entry.value and entry.key in self._queues:
                self._queues[entry.key].put_nowait(Advanced(json.loads(entry.value)["seq"]))

    async def _handle(self, msg: Any, waiting: dict, since: float | None = None) -> None:
        assert self._view is not None
        while msg is not None:
            try:
                outcome = await self._view.apply(
                    msg.subject, msg.headers, msg.data, msg.metadata.num_delivered
                )
            except Exception:  # left for redelivery
                log.exception("could not apply %s; it will be delivered again", msg.subject)
                await msg.nak(delay=1.0)
                return
            if outcome == EARLY:
                prev = int(msg.headers["Shelfcast-Prev-Seq"])
                waiting[prev] = (since or time.monotonic(), msg)
                return
            await msg.ack()
            self.applied += 1
            seq = (msg.headers or {}).get("Shelfcast-Seq")
            nxt = waiting.pop(int(seq), None) if seq is not None else None
            msg, since = (nxt[1], nxt[0]) if nxt else (None, None)

    def stop(self) -> None:
        self._stop.set()
