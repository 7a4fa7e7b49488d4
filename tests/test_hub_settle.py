"""A store's cursor at a trickle of stock messages (a real worker process on a real JetStream):
one write for several messages, every message acknowledged after it, a pause settled at once."""

from __future__ import annotations

import asyncio
import time

import nats

from hub.streams import CURSOR_BUCKET, ensure, unacknowledged
from hub.worker import SETTLE_S, SETTLE_TRICKLE_S, _settle_wait
from tests.hub_process import HubProcess
from tests.test_hub_backlog import stock_message

pytest_plugins = ["tests.nats_server"]

TRICKLE = 20  # messages, one every 50 ms: what a store sends at 20 sales/s
GAP_S = 0.05


async def _trickle(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure(js)
    for seq in range(2, TRICKLE + 2):
        subject, headers, payload = stock_message(seq)
        await js.publish(subject, payload, headers=headers)
        await asyncio.sleep(GAP_S)
    await nc.close()


async def _state(url: str) -> tuple[int, int]:
    """(unacknowledged uplink messages, writes the cursor bucket took)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    left = await unacknowledged(js)
    writes = (await js.stream_info(f"KV_{CURSOR_BUCKET}")).state.last_seq
    await nc.close()
    return left, writes


def _settled(url: str, within_s: float) -> tuple[int, int, float]:
    t0, left, writes = time.monotonic(), -1, 0
    while left != 0 and time.monotonic() - t0 < within_s:
        time.sleep(0.02)
        left, writes = asyncio.run(_state(url))
    return left, writes, time.monotonic() - t0


def test_a_trickle_moves_the_cursor_once_for_several_messages(nats_server, tmp_path):
    worker = HubProcess(nats_server.url, api=False, log=tmp_path / "w.log").start()
    try:
        asyncio.run(_publish_one(nats_server.url, 1))  # the worker owns its partitions
        left, first, _ = _settled(nats_server.url, 30)
        assert left == 0 and first == 1
        asyncio.run(_trickle(nats_server.url))
        left, writes, _ = _settled(nats_server.url, 30)
        assert left == 0, "the trickle was not all acknowledged"
        # every 0.1 s it was 7 or more writes for these 20 messages over a second
        assert writes - first <= 4, f"{writes - first} cursor writes for {TRICKLE} messages"
        # a store that pauses is settled (acknowledged) about 0.1 s after its last message
        asyncio.run(_publish_one(nats_server.url, TRICKLE + 2))
        left, writes_after, took = _settled(nats_server.url, 5)
        assert left == 0 and writes_after == writes + 1 and took < 0.4
    finally:
        worker.stop()


async def _publish_one(url: str, seq: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure(js)
    subject, headers, payload = stock_message(seq)
    await js.publish(subject, payload, headers=headers)
    await nc.close()


def test_a_worker_with_a_backlog_settles_after_the_short_wait():
    """A drain's messages come a few per store per 0.1 s while the worker is behind: they
    settle after ``SETTLE_S`` (a drain is timed to its last acknowledgement), a trickle later."""

    async def waited(backlog: int) -> float:
        pending = [0]

        async def more() -> None:  # a message every 50 ms, as a trickle
            while True:
                await asyncio.sleep(0.05)
                pending.append(0)

        feeder = asyncio.create_task(more())
        t0 = time.monotonic()
        await _settle_wait(pending, lambda: backlog)
        feeder.cancel()
        return time.monotonic() - t0

    assert asyncio.run(waited(backlog=1000)) < SETTLE_S + 0.05
    assert asyncio.run(waited(backlog=0)) > SETTLE_TRICKLE_S - 0.05
