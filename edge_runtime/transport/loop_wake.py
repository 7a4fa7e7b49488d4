"""Waiting in an asyncio loop for another thread's nudge, or for acknowledgements, at the cost
of one future and one timer.

The gateway's hub link waits, once per uplink window, for the worker thread to say that rows
were committed, then for JetStream's acknowledgements. ``asyncio.wait_for`` on an
``asyncio.Event`` makes a task, a timer and three more passes of the loop each time, and
``asyncio.wait_for(asyncio.gather(...))`` two more; on a gateway forwarding fifty windows a
second beside its ledger, those passes were a sizeable share of the link's CPU. These do the
same with a future the nudge (or the last acknowledgement) completes directly.

>>> import asyncio
>>> async def demo():
...     wake = LoopWake(asyncio.get_running_loop())
...     wake.set_threadsafe()
...     return await wake.wait(5.0)
>>> asyncio.run(demo())
True
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any


class LoopWake:
    """A flag set from any thread (:meth:`set_threadsafe`) that a coroutine of ``loop`` waits
    for with a timeout (:meth:`wait`); :meth:`clear` it before looking for work, so a nudge
    that comes while the work is done is not lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._set = False
        self._waiter: asyncio.Future | None = None

    def set_threadsafe(self) -> None:
        """Wake the waiter (from any thread). ``RuntimeError`` when the loop is closed."""
        self._loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    async def wait(self, timeout: float) -> bool:
        """Until set (True) or ``timeout`` seconds have passed (False)."""
        if self._set:
            return True
        if timeout <= 0:
            return False
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(False)


async def acks_within(acks: Sequence[asyncio.Future], timeout: float) -> list[Any]:
    """The results of ``acks`` (futures completed by the connection's reader), in order;
    ``TimeoutError`` when they are not all in within ``timeout`` seconds (the ones still
    pending are cancelled, as ``asyncio.wait_for`` would)."""
    expired: list[bool] = []

    def expire() -> None:
        expired.append(True)
        for ack in acks:
            ack.cancel()  # a done one stays as it is

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return [await ack for ack in acks]
    except asyncio.CancelledError:
        if expired:
            raise TimeoutError(
                f"{len(acks)} acknowledgement(s) not in within {timeout} s"
            ) from None
        raise
    finally:
        timer.cancel()
