"""The hub link's waits: a nudge from another thread ends one at once, a timeout ends it
otherwise."""

from __future__ import annotations

import asyncio
import threading
import time

from edge_runtime.transport.loop_wake import LoopWake


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
