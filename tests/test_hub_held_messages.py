"""A worker that holds messages longer than the consumer's ack wait (a backlog queued behind
others) keeps them from being delivered a second time, against a real JetStream push consumer;
once it stops telling (as a dead worker does), the server delivers them again. With the hub's
own consumers, a backlog that takes seconds to apply needs no note at all, and a worker that
stops hands what it holds back at once."""

from __future__ import annotations

import asyncio
import time

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from hub.held_messages import HeldMessages
from hub.network_view import NetworkView
from hub.streams import ACK_WAIT_S as HUB_ACK_WAIT_S
from hub.streams import (
    PARTITIONS,
    UPLINK_STREAM,
    WORKERS,
    deliver_subject,
    ensure,
    partition_consumer,
)
from hub.worker import HubWorker

pytest_plugins = ["tests.nats_server"]

ACK_WAIT_S = 1.0
MESSAGES = 20


async def _held_for(url: str, hold_s: float, tell: bool) -> tuple[int, int]:
    """Receive ``MESSAGES``, hold them ``hold_s`` (told in progress or not), ack them; returns
    (messages received, including copies; deliveries the consumer counted)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="HELD", subjects=["held.>"]))
    await js.add_consumer(
        "HELD",
        ConsumerConfig(
            durable_name="c",
            deliver_subject="_held.c",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_S,
            max_deliver=-1,
        ),
    )
    for i in range(MESSAGES):
        await js.publish(f"held.{i}", b"x")
    held = HeldMessages(ack_wait_s=ACK_WAIT_S)
    received: list = []

    async def on_msg(msg) -> None:
        received.append(msg)
        held.add(msg)

    await nc.subscribe("_held.c", cb=on_msg)
    keeper = asyncio.create_task(held.run()) if tell else None
    await asyncio.sleep(hold_s)
    for msg in received:
        if not msg.is_acked:
            await msg.ack()
    await asyncio.sleep(0.3)  # the acks are in before the count is read
    if keeper is not None:
        keeper.cancel()
    info = await js.consumer_info("HELD", "c")
    await nc.close()
    return len(received), info.delivered.consumer_seq


def test_messages_held_past_the_ack_wait_are_not_delivered_again(nats_server):
    received, deliveries = asyncio.run(_held_for(nats_server.url, 3 * ACK_WAIT_S, tell=True))
    assert (received, deliveries) == (MESSAGES, MESSAGES)


def test_a_holder_that_stops_telling_gets_its_messages_delivered_again(nats_server):
    received, deliveries = asyncio.run(_held_for(nats_server.url, 3 * ACK_WAIT_S, tell=False))
    assert received > MESSAGES and deliveries > MESSAGES


BACKLOG = 2000
PACE = 400  # messages a second a worker on a busy box applies (5 s for the backlog)


async def _fill_uplink(js) -> None:
    """The hub's streams and consumers, and ``BACKLOG`` stock messages over 64 stores (every
    partition), all stored before anyone takes them."""
    await ensure(js)
    acks = [await js.publish_async(f"shelfcast.B{i % 64}.stock", b"x") for i in range(BACKLOG)]
    await asyncio.gather(*acks)


async def _slow_drain(url: str) -> tuple[int, int]:
    """A worker that is pushed the whole backlog at once and applies it at ``PACE``, oldest
    first: (in-progress notes it sent, deliveries the hub's consumers counted)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await _fill_uplink(js)
    held = HeldMessages(ack_wait_s=HUB_ACK_WAIT_S)
    queue: list = []

    async def on_msg(msg) -> None:
        held.add(msg)
        queue.append(msg)

    for p in range(PARTITIONS):
        await nc.subscribe(deliver_subject(p), queue=WORKERS, cb=on_msg, pending_msgs_limit=-1)
    keeper = asyncio.create_task(held.run())
    done, start = 0, time.monotonic()
    while done < BACKLOG and time.monotonic() < start + 60:
        await asyncio.sleep(0.05)
        due = min(len(queue), int((time.monotonic() - start) * PACE))
        for msg in queue[done:due]:
            await msg.ack()
        done = max(done, due)
    await asyncio.sleep(0.3)  # the acks are in before the count is read
    keeper.cancel()
    infos = [
        await js.consumer_info(UPLINK_STREAM, partition_consumer(p)) for p in range(PARTITIONS)
    ]
    deliveries = sum(i.delivered.consumer_seq for i in infos)
    await nc.close()
    return held.told, deliveries


def test_a_backlog_that_takes_seconds_to_apply_sends_no_notes_and_comes_once(nats_server):
    told, deliveries = asyncio.run(_slow_drain(nats_server.url))
    assert (told, deliveries) == (0, BACKLOG)


async def _stop_while_holding(url: str, monkeypatch) -> int:
    """A worker is pushed the backlog, cannot apply it (its writes hang) and is stopped; then
    a new subscriber listens: how many messages it gets within two seconds."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await _fill_uplink(js)

    async def hang(*_args, **_kwargs):
        await asyncio.Event().wait()

    monkeypatch.setattr(NetworkView, "apply_stock", hang)
    worker = HubWorker(url, name="w1")
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 30
    while len(worker._held._held) < BACKLOG and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert len(worker._held._held) == BACKLOG, "the worker was not pushed the backlog"
    worker.stop()
    await running
    got: set[int] = set()

    async def on_msg(msg) -> None:
        got.add(msg.metadata.sequence.stream)
        await msg.ack()

    for p in range(PARTITIONS):
        await nc.subscribe(deliver_subject(p), queue=WORKERS, cb=on_msg)
    await asyncio.sleep(2.0)
    await nc.close()
    return len(got)


def test_a_stopping_worker_hands_back_what_it_holds_at_once(nats_server, monkeypatch):
    assert asyncio.run(_stop_while_holding(nats_server.url, monkeypatch)) == BACKLOG
