"""The hub benchmark's throughput drain (``benchmarks.hub.Drain``) on a real nats-server: a
partition whose pause reached the server after its time is paused again ahead and delivers
(resumed by that late request, a push consumer delivered nothing), and a drain that gets
nothing acknowledged stops with an error that names its partitions and their consumers' state."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks import hub as bench
from hub.streams import PARTITIONS, WORKERS, deliver_subject

pytest_plugins = ["tests.nats_server"]  # the nats_server fixture

MESSAGES = 320


@contextlib.contextmanager
def _acking(url: str):
    """A subscriber in a thread of its own (the drain runs its own loop) on every partition's
    deliver subject, in the workers' queue group, that acknowledges what it is pushed."""
    import nats

    got: list[str] = []
    ready, stop = threading.Event(), threading.Event()

    async def run() -> None:
        nc = await nats.connect(url)

        async def on_msg(msg) -> None:
            got.append(msg.subject)
            await msg.ack()

        for p in range(PARTITIONS):
            await nc.subscribe(deliver_subject(p), queue=WORKERS, cb=on_msg)
        await nc.flush()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield got
    finally:
        stop.set()
        thread.join(10)


def _drain(drain: bench.Drain, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not drain.drained() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_pause_that_reached_the_server_too_late_is_paused_again_ahead(nats_server):
    asyncio.run(bench._fill(nats_server.url, bench._stock_messages(MESSAGES, 64)))
    with _acking(nats_server.url) as got, bench.Drain(nats_server.url) as drain:
        # Every request too late, as the last of them were when a busy box was slow to answer.
        at = datetime.now(UTC) - timedelta(seconds=1)
        drain.pause_until(at)
        _drain(drain, 20)
        assert not drain.left and len(got) == MESSAGES
    assert drain.late == set(range(PARTITIONS)) and drain.late_s > 1.0


def test_a_drain_that_gets_nothing_acknowledged_says_which_partitions_and_why(nats_server):
    asyncio.run(bench._fill(nats_server.url, bench._stock_messages(MESSAGES, 64)))
    with bench.Drain(nats_server.url, stall_s=1) as drain:  # no worker subscribed
        drain.resume(after_s=0.1)
        assert not drain.late
        stalled = r"drain stalled: no message of partitions \[0, 1, .*\] acknowledged for 1 s"
        with pytest.raises(RuntimeError, match=stalled) as err:
            _drain(drain, 15)
    assert "p15: " in str(err.value) and "paused False, subscribed False" in str(err.value)
