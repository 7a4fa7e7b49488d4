"""Messages a worker holds unacknowledged, kept from being delivered again while it works.

JetStream delivers a message again when it is not acknowledged within the consumer's ack wait.
A worker acknowledges a stock message only once the store's cursor covers it, and under a
backlog a message can sit in its store's queue behind others for a long time: it would then come
a second time (and a third...), each copy one more delivery for nats-server and one more repeat
for the worker to skip, while the first is still queued. The ack wait is sized to outlast what a
worker is pushed at once (hub/streams.py), so this is the exception; for it, the worker tells
JetStream it is still working on (``+WPI``) each message it has held for ``hold_s``, every
``every_s``. A worker that dies stops telling, and its messages go to another worker after the
ack wait as before; one that stops hands back what it holds (``release``) at once.

>>> held = HeldMessages(ack_wait_s=30.0)
>>> held.hold_s, held.every_s
(15.0, 6.0)
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

HOLD_SHARE = 0.5  # of the ack wait: a message held this long is said to be in progress...
EVERY_SHARE = 0.2  # ...looked for this often (so at most 0.7 of the wait passes untold)
YIELD_EVERY = 500  # notes sent between two looks at the event loop (a pass never blocks it long)


class HeldMessages:
    """Received messages in the order they came; ``run`` sends ``in_progress`` for those still
    unacknowledged (nor nak'd) after ``hold_s``."""

    def __init__(self, ack_wait_s: float):
        self.hold_s = HOLD_SHARE * ack_wait_s
        self.every_s = EVERY_SHARE * ack_wait_s
        self.told = 0  # in-progress notes sent (how often a backlog outlasted the hold)
        self.released = 0  # messages handed back unapplied when the worker stopped
        self._held: collections.deque[tuple[float, Any]] = collections.deque()

    def add(self, msg: Any) -> None:
        self._held.append((time.monotonic(), msg))

    async def run(self) -> None:
        """Until cancelled: every ``every_s``, tell the server of each message held too long."""
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.tell()
            except Exception as err:  # disconnected for a moment: told again next time
                log.warning("could not say messages are in progress (%s)", err)

    async def tell(self) -> None:
        """One pass: the held messages older than ``hold_s`` that are not acknowledged yet are
        said to be in progress (and held on, timed afresh); acknowledged ones are let go."""
        now = time.monotonic()
        held = self._held
        again = []
        while held and now - held[0][0] >= self.hold_s:
            _, msg = held.popleft()
            if not msg.is_acked:
                await msg.in_progress()
                again.append((now, msg))
                if len(again) % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        self.told += len(again)
        held.extend(again)

    async def release(self) -> None:
        """Hand every held message not acknowledged yet back to the server for redelivery now
        (a stopping worker's successor then need not wait out the ack wait for them)."""
        while self._held:
            _, msg = self._held.popleft()
            if not msg.is_acked:
                await msg.nak()
                self.released += 1
