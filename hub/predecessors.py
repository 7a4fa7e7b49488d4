"""A store's stock messages read back from the stream when the worker that was pushed them
died with them: the next owner need not wait out the ack wait for the server to send them again.

A stock message is applied only after its predecessor. When a worker is killed, the messages it
was pushed and had not acknowledged come back to the partition's next owner only after the ack
wait (``ACK_WAIT_S``, sized to outlast a backlog, hub/streams.py), and meanwhile every later
message of those stores comes early. So once an early message has come back a few times, its
missing predecessors are read from the stream: the store's stock messages stored after the
partition's acknowledged floor and before it. They pass through the store's loop like delivered
ones, with nothing to acknowledge; the dead worker's copies, when the server sends them again,
are repeats (each SKU's seq and the store's cursor make a second application nothing).

>>> StoredMessage("shelfcast.S1.stock.3", {"Shelfcast-Seq": "7"}, b"{}").metadata.num_delivered
1
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

from hub.streams import UPLINK_STREAM, partition_consumer

log = logging.getLogger(__name__)

READ_AFTER_DELIVERIES = 4  # an early message delivered this often (2 s or so) sends for them
READ_AGAIN_S = 2.0  # a store's predecessors are read at most this often
READ_MAX = 10_000  # messages read for one early message at most (a partition holds 2,048 out)


class StoredMessage:
    """A message read from the stream, shaped like a delivered one for the store's loop; its
    acknowledgements go nowhere (the consumer never delivered it).

    >>> import asyncio
    >>> m = StoredMessage("shelfcast.S1.stock.3", {"Shelfcast-Seq": "7"}, b"{}")
    >>> asyncio.run(m.ack()), m.is_acked  # read back, never delivered: nothing to acknowledge
    (None, True)
    """

    is_acked = True

    def __init__(self, subject: str, headers: dict[str, str], data: bytes):
        self.subject = subject
        self.headers = headers
        self.data = data
        self.metadata = SimpleNamespace(num_delivered=1)

    async def ack(self) -> None:
        pass

    async def nak(self, delay: float | None = None) -> None:
        pass


async def read_predecessors(js: Any, msg: Any) -> list[StoredMessage]:
    """The stock messages of ``msg``'s store that precede it (by the store's seq) and are
    stored after its partition's acknowledged floor, in stream order."""
    from nats.js.errors import NotFoundError

    subject = msg.subject  # shelfcast.<store>.stock.<partition>, as stored
    partition = int(subject.rsplit(".", 1)[1])
    before = msg.metadata.sequence.stream
    prev = int(msg.headers["Shelfcast-Prev-Seq"])
    info = await js.consumer_info(UPLINK_STREAM, partition_consumer(partition))
    seq = info.ack_floor.stream_seq + 1
    found: list[StoredMessage] = []
    while seq < before and len(found) < READ_MAX:
        try:
            raw = await js.get_msg(UPLINK_STREAM, seq=seq, subject=subject, next=True)
        except NotFoundError:
            break
        if raw.seq >= before:
            break
        headers = raw.headers or {}
        if int(headers.get("Shelfcast-Seq", "0")) <= prev:
            found.append(StoredMessage(subject, headers, raw.data or b""))
        seq = raw.seq + 1
    return found
