"""A hub worker: pulls uplink messages from the shared durable consumer and applies them.

Every worker binds to the same durable pull consumer (``hub`` on ``SHELFCAST_UPLINK``), so the
stores' messages are shared among however many run (a queue group); each message is
acknowledged only after the view holds it. A worker killed mid-batch leaves its messages
unacknowledged: after ``ACK_WAIT_S`` JetStream delivers them to another worker, which applies
what the dead one had not (network_view.py makes the second attempt harmless).

>>> HubWorker("nats://127.0.0.1:4222", name="w1").name
'w1'
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hub.network_view import EARLY, NetworkView
from hub.streams import UPLINK_STREAM, WORKERS, ensure

log = logging.getLogger(__name__)

EARLY_DELAY_S = 0.02  # an early stock message waits this long for its predecessor


class HubWorker:
    """One consumer of the shared durable consumer; ``run`` until ``stop``."""

    def __init__(self, url: str, name: str = "worker", batch: int = 100, replicas: int = 1):
        self.url = url
        self.name = name
        self.batch = batch
        self.replicas = replicas
        self.applied = 0
        self.started_at = 0.0
        self._stop = asyncio.Event()
        self._nc: Any = None

    async def connect(self) -> Any:
        import nats

        self._nc = await nats.connect(
            servers=self.url.split(","),
            name=f"hub-{self.name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        js = self._nc.jetstream()
        await ensure(js, self.replicas)
        return js

    async def run(self) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        js = await self.connect()
        view = await NetworkView(js).open()
        sub = await js.pull_subscribe_bind(WORKERS, stream=UPLINK_STREAM)
        self.started_at = time.monotonic()
        while not self._stop.is_set():
            try:
                msgs = await sub.fetch(self.batch, timeout=0.5)
            except NatsTimeout:
                continue
            except Exception as err:  # a node went away: the client reconnects, we retry
                log.warning("fetch failed (%s); retrying", err)
                await asyncio.sleep(0.2)
                continue
            for msg in msgs:
                await self._handle(view, msg)
        await self._nc.drain()

    async def _handle(self, view: NetworkView, msg: Any) -> None:
        try:
            outcome = await view.apply(
                msg.subject, msg.headers, msg.data, msg.metadata.num_delivered
            )
        except Exception:  # left unacknowledged: redelivered after the ack wait
            log.exception("could not apply %s; it will be delivered again", msg.subject)
            await msg.nak(delay=1.0)
            return
        if outcome == EARLY:
            await msg.nak(delay=EARLY_DELAY_S)
            return
        await msg.ack()
        self.applied += 1

    def stop(self) -> None:
        self._stop.set()
