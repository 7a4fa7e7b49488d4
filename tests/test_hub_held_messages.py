"""A worker that holds messages longer than the consumer's ack wait (a backlog queued behind
others) keeps them from being delivered a second time, against a real JetStream push consumer;
once it stops telling (as a dead worker does), the server delivers them again."""

from __future__ import annotations

import asyncio

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from hub.held_messages import HeldMessages

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
