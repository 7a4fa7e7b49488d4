"""A store's backlog reaches a hub worker (a real process, on a real JetStream) in batches of
hundreds: a SKU named by every message is written a few times, not once per hundred-odd
messages, and its figure still counts every message once."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path

import nats

from hub.network_view import sku_key
from hub.streams import STOCK_BUCKET, ensure, unacknowledged
from tests.hub_process import HubProcess

pytest_plugins = ["tests.nats_server"]

MESSAGES = 2000
OLD_IN_FLIGHT = 128  # what a partition's consumer pushed unacknowledged before


def stock_message(seq: int) -> tuple[str, dict[str, str], bytes]:
    """The store's message ``seq``: SKU A sold one unit and one more reserved."""
    body = {"kind": "uplink", "store_id": "S1", "model_version": "m1",
            "deltas": [["A", -1, 1, 10_000 - seq, 5, 1]],
            "window_end": "2026-01-05T10:00:00+00:00"}  # fmt: skip
    headers = {"Shelfcast-Seq": str(seq), "Shelfcast-Prev-Seq": str(seq - 1)}
    return "shelfcast.S1.stock", headers, gzip.compress(json.dumps(body).encode())


async def _publish(url: str, messages: list[tuple[str, dict[str, str], bytes]]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure(js)
    for i in range(0, len(messages), 500):
        acks = [await js.publish_async(s, p, headers=h) for s, h, p in messages[i : i + 500]]
        await asyncio.gather(*acks)
    await nc.close()


async def _progress(url: str) -> tuple[int, int]:
    """(unacknowledged uplink messages, writes the stock bucket took)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    left = await unacknowledged(js)
    writes = (await js.stream_info(f"KV_{STOCK_BUCKET}")).state.last_seq
    await nc.close()
    return left, writes


def _writes_to_apply(url: str, messages: list, log: Path) -> int:
    """``messages`` published, then one worker started (it finds them as a backlog) and run
    until it has acknowledged them all: the writes the stock bucket took."""
    asyncio.run(_publish(url, messages))
    worker = HubProcess(url, api=False, log=log).start()
    try:
        deadline = time.monotonic() + 60
        left = -1
        while left != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            left, writes = asyncio.run(_progress(url))
    finally:
        worker.stop()
    assert left == 0, "the worker did not apply the backlog within a minute"
    return writes


async def _figure(url: str, store: str, sku: str) -> dict:
    nc = await nats.connect(url)
    entry = await (await nc.jetstream().key_value(STOCK_BUCKET)).get(sku_key(store, sku))
    await nc.close()
    return json.loads(entry.value)


def test_a_backlog_writes_each_sku_once_per_batch_of_hundreds(nats_server, tmp_path):
    messages = [stock_message(seq) for seq in range(1, MESSAGES + 1)]
    writes = _writes_to_apply(nats_server.url, messages, tmp_path / "w.log")
    figure = asyncio.run(_figure(nats_server.url, "S1", "A"))
    assert (figure["seq"], figure["reserved"], figure["on_hand"]) == (MESSAGES, MESSAGES, 8000)
    assert writes < MESSAGES / OLD_IN_FLIGHT  # at most 128 messages a batch wrote 16 or more


SPREAD_MESSAGES = 400  # of one store, each naming 5 of 500 SKUs: every SKU 4 times
SPREAD_SKUS = 500


def spread_message(seq: int) -> tuple[str, dict[str, str], bytes]:
    """The store's message ``seq``, naming 5 SKUs; 100 messages go round all 500."""
    rows = [[f"K{(5 * seq + r) % SPREAD_SKUS:03d}", -1, 0, 10, 10, 1] for r in range(5)]
    body = {"kind": "uplink", "store_id": "S1", "model_version": "m1", "deltas": rows,
            "window_end": "2026-01-05T10:00:00+00:00"}  # fmt: skip
    headers = {"Shelfcast-Seq": str(seq), "Shelfcast-Prev-Seq": str(seq - 1)}
    return "shelfcast.S1.stock", headers, gzip.compress(json.dumps(body).encode())


def test_a_backlog_pushed_at_once_is_one_batch_each_sku_written_once(nats_server, tmp_path):
    """The server pushes the whole backlog at once (it fits the partition's window), but it
    reaches the worker a socket read at a time: applied as it came, the first part was a
    batch of its own and every SKU was written twice (about 1,000 writes). Waiting for what
    the pushes say is still to come, each SKU is written once (a tail of at most
    ``COMING_MANY`` messages may come after)."""
    from hub.worker import COMING_MANY

    messages = [spread_message(seq) for seq in range(1, SPREAD_MESSAGES + 1)]
    writes = _writes_to_apply(nats_server.url, messages, tmp_path / "w.log")
    assert SPREAD_SKUS <= writes <= SPREAD_SKUS + 5 * (COMING_MANY + 1), writes
