"""A worker killed while holding a store's stock messages: the partition's next owner reads
them back from the stream and applies the store's later messages within seconds, not after the
ack wait; every message still counts once (a real process, on a real JetStream)."""

from __future__ import annotations

import asyncio
import json
import time

import nats

from hub.network_view import sku_key
from hub.streams import ACK_WAIT_S, PARTITIONS, STOCK_BUCKET, WORKERS, deliver_subject, ensure
from tests.hub_process import HubProcess
from tests.test_hub_backlog import stock_message

pytest_plugins = ["tests.nats_server"]

HELD = 20  # the store's first messages, pushed to a worker that dies with them
LATER = 10  # the store's next ones, sent after it died


async def _publish(js, seqs: range) -> None:
    for seq in seqs:
        subject, headers, payload = stock_message(seq)
        await js.publish(subject, payload, headers=headers)


async def _die_holding(url: str) -> int:
    """A worker that takes the store's first messages and dies (no ack, no nak); then the
    store sends more. Returns how many the dead one had been pushed."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure(js)
    got: list = []

    async def on_msg(msg) -> None:
        got.append(msg)

    subs = [await nc.subscribe(deliver_subject(p), queue=WORKERS, cb=on_msg)
            for p in range(PARTITIONS)]  # fmt: skip
    await _publish(js, range(1, HELD + 1))
    deadline = time.monotonic() + 10
    while len(got) < HELD and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for sub in subs:
        await sub.unsubscribe()
    await _publish(js, range(HELD + 1, HELD + LATER + 1))
    await nc.close()
    return len(got)


async def _figure(url: str) -> dict | None:
    nc = await nats.connect(url)
    try:
        entry = await (await nc.jetstream().key_value(STOCK_BUCKET)).get(sku_key("S1", "A"))
        return json.loads(entry.value)
    except nats.js.errors.NotFoundError:
        return None
    finally:
        await nc.close()


def test_the_next_owner_reads_a_dead_workers_messages_back_within_seconds(nats_server, tmp_path):
    assert asyncio.run(_die_holding(nats_server.url)) == HELD
    started = time.monotonic()
    worker = HubProcess(nats_server.url, api=False, log=tmp_path / "w.log").start()
    try:
        figure = None
        while time.monotonic() < started + ACK_WAIT_S / 2:
            figure = asyncio.run(_figure(nats_server.url))
            if figure is not None and figure["seq"] == HELD + LATER:
                break
            time.sleep(0.2)
    finally:
        worker.stop()
    assert figure is not None and figure["seq"] == HELD + LATER, (
        f"the store's figure was {figure} {ACK_WAIT_S / 2:.0f} s after the new worker started"
    )
    assert figure["reserved"] == HELD + LATER  # each message counted once
