"""Waiting in an asyncio loop for another thread's nudge at the cost of one future and one timer.

The gateway's hub link waits, once per uplink window, for the worker thread to say that rows
were committed (then for JetStream's acknowledgements:
``edge_runtime.transport.jetstream_acks``). ``asyncio.wait_for`` on an ``asyncio.Event`` makes
a task, a timer and three more passes of the loop each time; on a gateway forwarding fifty
windows a second beside its ledger, those passes were a sizeable share of the link's CPU. This
does the same with a future the nudge completes directly.

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


class LoopWake:
    """A flag set from any thread (:meth:`set_threadsafe`) that a coroutine of ``loop`` waits
    for with a timeout (:meth:`wait`); :meth:`clear` it before looking for work, so a nudge
    that comes while the work is done is not lost.

    >>> import asyncio
    >>> async def demo():
    ...     wake = LoopWake(asyncio.get_running_loop())
    ...     quiet = await wake.wait(0.001)  # nobody set it: the timeout
    ...     wake.set_threadsafe()
    ...     woken = await wake.wait(1.0)
    ...     wake.clear()
    ...     return quiet, woken, await wake.wait(0)
    >>> asyncio.run(demo())
    (False, True, False)
    """

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
