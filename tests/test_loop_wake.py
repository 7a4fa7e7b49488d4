"""The hub link's waits: a nudge from another thread ends one at once, a timeout ends it
otherwise, and acknowledgements not all in within their time raise ``TimeoutError``."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from edge_runtime.transport.loop_wake import LoopWake, acks_within


def test_a_nudge_from_another_thread_ends_the_wait_at_once():
    async def main() -> tuple[bool, float]:
        wake = LoopWake(asyncio.get_running_loop())
        threading.Timer(0.05, wake.set_threadsafe).start()
        t0 = time.monotonic()
        woken = await wake.wait(5.0)
        return woken, time.monotonic() - t0

    woken, waited = asyncio.run(main())
    assert woken and waited < 1.0


def test_without_a_nudge_the_wait_times_out_and_clear_forgets_an_old_one():
    async def main() -> list[bool]:
        wake = LoopWake(asyncio.get_running_loop())
        wake.set_threadsafe()
        await asyncio.sleep(0)  # the nudge lands
        seen = [await wake.wait(0.01)]  # set: returns at once
        wake.clear()
        seen.append(await wake.wait(0.05))
        seen.append(await wake.wait(0))
        return seen

    assert asyncio.run(main()) == [True, False, False]


def test_acknowledgements_in_order_or_a_timeout():
    async def main() -> tuple[list, bool]:
        loop = asyncio.get_running_loop()
        acks = [loop.create_future() for _ in range(3)]
        for i, ack in enumerate(acks):
            loop.call_later(0.01 * (3 - i), ack.set_result, i)  # they come back in any order
        got = await acks_within(acks, 1.0)
        late = [loop.create_future(), loop.create_future()]
        late[0].set_result("in")
        with pytest.raises(TimeoutError):
            await acks_within(late, 0.05)
        return got, late[1].cancelled()

    got, cancelled = asyncio.run(main())
    assert got == [0, 1, 2] and cancelled


def test_cancelling_the_waiter_is_not_taken_for_a_timeout():
    async def main() -> None:
        ack = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(acks_within([ack], 5.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
