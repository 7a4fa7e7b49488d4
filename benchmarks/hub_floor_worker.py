"""The floor's minimal hub worker, for ``benchmarks/hub_floor.py``: a process of its own doing
only what the hub side of the contract makes mandatory.

    python benchmarks/hub_floor_worker.py NATS_URL

It creates a fresh stream ``FLOOR_STREAM`` on the stores' stock subjects (file storage, the
uplink stream's duplicate window and age; no partitions, no subject transform), the stock
bucket (``hub.streams.STOCK_BUCKET``, file storage, history 1, as shipped) and one durable push
consumer, and prints ``ready``. Then, one batch at a time (what arrived while the last batch was
written): each message's on hand per SKU becomes the bucket's value of that store x SKU
(``hub.network_view.sku_key``; ``{store_id, sku, on_hand, seq}``: what the API's live view
reads), each key written once per batch with its newest figure, the writes sent together and
their acknowledgements awaited, then the batch acknowledged with one ack (the consumer's ack
policy is ``all``: one consumer, messages applied in stream order).

No cursors, fleet, alerts, partitions, membership, gzip or held-message bookkeeping.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import nats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.network_view import sku_key  # noqa: E402
from hub.streams import (  # noqa: E402
    ACK_WAIT_S,
    DUPLICATE_WINDOW_S,
    MAX_IN_FLIGHT,
    STOCK_BUCKET,
    UPLINK_MAX_AGE_S,
)

FLOOR_STREAM = "FLOOR_STOCK"
FLOOR_CONSUMER = "floor-hub"
DELIVER = "_floor.hub"


async def ensure_floor(js) -> None:
    """The floor's stream, its consumer and the stock bucket (safe to repeat)."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StreamConfig

    await js.add_stream(StreamConfig(name=FLOOR_STREAM, subjects=["shelfcast.*.stock"],
                                     duplicate_window=DUPLICATE_WINDOW_S,
                                     max_age=UPLINK_MAX_AGE_S))  # fmt: skip
    await js.add_consumer(FLOOR_STREAM, ConsumerConfig(
        durable_name=FLOOR_CONSUMER, deliver_subject=DELIVER, ack_policy=AckPolicy.ALL,
        deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT_S, max_ack_pending=MAX_IN_FLIGHT,
        max_deliver=-1))  # fmt: skip
    await js.create_key_value(KeyValueConfig(bucket=STOCK_BUCKET, history=1))


async def unapplied(js) -> int:
    """Stock messages the worker has not acknowledged yet."""
    info = await js.consumer_info(FLOOR_STREAM, FLOOR_CONSUMER)
    return info.num_pending + info.num_ack_pending


async def run(url: str, say) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_floor(js)
    batch: list = []
    wake = asyncio.Event()

    async def take(msg) -> None:
        batch.append(msg)
        wake.set()

    await nc.subscribe(DELIVER, cb=take)
    say("ready")
    while True:
        await wake.wait()
        wake.clear()
        msgs, batch = batch, []
        newest: dict[str, tuple[str, str, int, int]] = {}
        for m in msgs:
            store = m.subject.split(".")[1]
            body = json.loads(m.data)
            for sku, n in body["on_hand"].items():
                newest[sku_key(store, sku)] = (store, sku, n, body["seq"])
        acks = []
        for key, (s, sku, n, seq) in newest.items():
            value = {"store_id": s, "sku": sku, "on_hand": n, "seq": seq}
            acks.append(
                await js.publish_async(f"$KV.{STOCK_BUCKET}.{key}", json.dumps(value).encode())
            )
        await asyncio.gather(*acks)
        await msgs[-1].ack()  # ack policy all: every earlier one with it


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], say))
