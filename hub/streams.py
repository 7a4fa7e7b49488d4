"""The hub's JetStream streams and key-value buckets, created (idempotently) by ``ensure``.

``SHELFCAST_UPLINK`` holds what gateways send (``shelfcast.<store>.<kind>``: stock, alerts,
conflicts, state, reservation results); ``SHELFCAST_ORDERS`` holds the online reservations the
hub routes to stores (``shelfcast.<store>.reservation``). Both de-duplicate on ``Nats-Msg-Id``
within ``DUPLICATE_WINDOW_S``; the stock view does not rely on that window (it applies each
store's stock messages once, in order, by their outbox sequence).

Partitions: the uplink stream stores each message under its subject plus a partition token,
``shelfcast.<store>.<kind>.<p>`` with ``p`` the server's hash of the store id modulo
``PARTITIONS`` (a subject transform: gateways publish the plain subject). Each partition has a
durable push consumer of its own and one worker at a time takes its pushes (hub/membership.py),
so a store's messages stay with one worker: no two workers wait for each other over its order.

>>> uplink_subjects()[:2]
['shelfcast.*.stock', 'shelfcast.*.stockout']
>>> partition_consumer(3), partition_subject(3)
('hub-p3', 'shelfcast.*.*.3')
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from edge_runtime.messages import (
    BUNDLE_STORE,
    HUB_SUBJECT_KIND,
    INSTALL,
    RESERVATION,
    RESERVATION_RESULT,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

UPLINK_STREAM = "SHELFCAST_UPLINK"
ORDERS_STREAM = "SHELFCAST_ORDERS"
DECISIONS_STREAM = "SHELFCAST_DECISIONS"  # the hub's fulfilment decisions, for OMS and audit
ROLLOUT_STREAM = "SHELFCAST_ROLLOUT"  # bundle install commands, hub -> store (hub/rollout.py)
WORKERS = "hub"  # the partitions' consumers are hub-p<k>; their pushes queue in this group
PARTITIONS = 16
"""Fixed when the stream is created (the subject transform): the most workers that share work.
Enough for the sizing in docs/hub.md; a bigger fleet re-creates the stream with more."""
WORKERS_BUCKET = "shelfcast_workers"  # <worker name> -> heartbeat: who is alive to own partitions
STOCK_BUCKET = "shelfcast_stock"  # <store>.<sku> -> the SKU's figure at that store
CURSOR_BUCKET = "shelfcast_cursor"  # <store> -> outbox seq of the last stock message applied
FLEET_BUCKET = "shelfcast_fleet"  # <store> -> birth, death, bundle, backlog, lag

DUPLICATE_WINDOW_S = 2 * 3600
"""Two hours: a gateway re-sends an unacknowledged batch within seconds of reconnecting, and the
server keeps every id of the window in memory (at 1,000 stores x 10 msg/s, 72 M ids)."""
ACK_WAIT_S = 30.0
"""A dead worker's unacknowledged messages go to another worker after this (a worker that stops
hands them back at once, hub/worker.py). It must outlast what a worker holds: one that owns every
partition is pushed up to ``PARTITIONS`` x ``MAX_IN_FLIGHT`` messages at once, and on a busy box
it takes tens of seconds to apply that many. With a wait of a few seconds nearly every message
of such a backlog outlasted half of it and was reported in progress, again at every pass, and
some were delivered twice all the same (docs/records/hub-figures.md)."""
UPLINK_MAX_AGE_S = 7 * 86400
MAX_IN_FLIGHT = 2048
"""Unacknowledged messages of one partition the server pushes at most. A backlog (a store back
online, a worker restarted) then reaches a worker in batches of hundreds per store, and a batch
writes each SKU once, however many of its messages name it (hub/network_view.py): fewer writes
for nats-server to store and the worker to send. The worker keeps what it holds from redelivery
meanwhile, should it hold one past half the ack wait (hub/held_messages.py); a new owner still
waits at most ``ACK_WAIT_S`` for a dead worker's share."""
MEMBER_HEARTBEAT_S = 1.0  # a worker says it is alive this often...
MEMBER_TTL_S = 3.0  # ...and is taken for dead (its partitions handed on) this long after


def partition_consumer(p: int) -> str:
    return f"{WORKERS}-p{p}"


def partition_subject(p: int, prefix: str = "shelfcast") -> str:
    """The stored subjects of partition ``p`` (the consumer's filter)."""
    return f"{prefix}.*.*.{p}"


def deliver_subject(p: int) -> str:
    """Where partition ``p``'s consumer pushes; its owner subscribes (queue group ``hub``)."""
    return f"_shelfcast.hub.p{p}"


def decision_subject(prefix: str = "shelfcast") -> str:
    """Where order decisions go (``_hub`` in the store's place: no store sends this kind)."""
    return f"{prefix}._hub.order_decision"


def uplink_subjects(prefix: str = "shelfcast") -> list[str]:
    kinds = ["uplink", "stockout", "replenishment", "anomaly", "conflict", "state"]
    kinds = [HUB_SUBJECT_KIND.get(k, k) for k in kinds] + [RESERVATION_RESULT]
    return [f"{prefix}.*.{k}" for k in kinds]


async def until_ready(step: Callable[[], Awaitable[T]], who: str) -> T:
    """``step()``, retried with backoff while JetStream cannot answer yet: a cluster still
    electing its leaders (or a node short) times requests out for seconds, and a hub process
    that died of it would leave its partitions or its API to nobody."""
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.errors import ServiceUnavailableError

    delay = 0.5
    while True:
        try:
            return await step()
        except (NatsTimeout, NoRespondersError, ServiceUnavailableError) as err:
            log.warning("%s: JetStream not ready (%s), retrying in %.1f s",
                        who, type(err).__name__, delay)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(2 * delay, 5.0)


async def unacknowledged(js) -> int:
    """Uplink messages no worker has acknowledged yet, over every partition: the hub's backlog."""
    left = 0
    for p in range(PARTITIONS):
        info = await js.consumer_info(UPLINK_STREAM, partition_consumer(p))
        left += info.num_pending + info.num_ack_pending
    return left


async def ensure(js, replicas: int = 1, prefix: str = "shelfcast") -> None:
    """Create the streams, the workers' consumer and the buckets if missing (safe to repeat)."""
    from nats.js.api import (
        AckPolicy,
        ConsumerConfig,
        DeliverPolicy,
        KeyValueConfig,
        ObjectStoreConfig,
        StreamConfig,
        SubjectTransform,
    )

    partitioned = SubjectTransform(
        src=f"{prefix}.*.*",
        dest=f"{prefix}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{partition({PARTITIONS},1)}}}}",
    )
    for name, subjects, transform in (
        (UPLINK_STREAM, uplink_subjects(prefix), partitioned),
        (ORDERS_STREAM, [f"{prefix}.*.{RESERVATION}"], None),
        (DECISIONS_STREAM, [decision_subject(prefix)], None),
        (ROLLOUT_STREAM, [f"{prefix}.*.{INSTALL}"], None),
    ):
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=subjects,
                num_replicas=replicas,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=UPLINK_MAX_AGE_S,
                subject_transform=transform,
            )
        )
    for p in range(PARTITIONS):
        await js.add_consumer(
            UPLINK_STREAM,
            ConsumerConfig(
                durable_name=partition_consumer(p),
                filter_subject=partition_subject(p, prefix),
                deliver_subject=deliver_subject(p),
                deliver_group=WORKERS,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ACK_WAIT_S,
                max_ack_pending=MAX_IN_FLIGHT,
                max_deliver=-1,
            ),
        )
    for bucket in (STOCK_BUCKET, CURSOR_BUCKET, FLEET_BUCKET):
        await js.create_key_value(KeyValueConfig(bucket=bucket, history=1, replicas=replicas))
    await js.create_object_store(BUNDLE_STORE, ObjectStoreConfig(replicas=replicas))
    await js.create_key_value(
        KeyValueConfig(bucket=WORKERS_BUCKET, history=1, replicas=replicas, ttl=MEMBER_TTL_S)
    )
