"""The hub's JetStream streams and key-value buckets, created (idempotently) by ``ensure``.

``SHELFCAST_UPLINK`` holds what gateways send (``shelfcast.<store>.<kind>``: stock, alerts,
conflicts, state, reservation results); ``SHELFCAST_ORDERS`` holds the online reservations the
hub routes to stores (``shelfcast.<store>.reservation``). Both de-duplicate on ``Nats-Msg-Id``
within ``DUPLICATE_WINDOW_S``; the stock view does not rely on that window (it applies each
store's stock messages once, in order, by their outbox sequence).

>>> uplink_subjects()[:2]
['shelfcast.*.stock', 'shelfcast.*.stockout']
"""

from __future__ import annotations

from edge_runtime.messages import HUB_SUBJECT_KIND, RESERVATION, RESERVATION_RESULT

UPLINK_STREAM = "SHELFCAST_UPLINK"
ORDERS_STREAM = "SHELFCAST_ORDERS"
DECISIONS_STREAM = "SHELFCAST_DECISIONS"  # the hub's fulfilment decisions, for OMS and audit
WORKERS = "hub"  # the durable consumer every hub worker shares, and its queue group
DELIVER = "_shelfcast.hub.deliver"  # where that consumer pushes; workers subscribe as a group
STOCK_BUCKET = "shelfcast_stock"  # <store>.<sku> -> the SKU's figure at that store
CURSOR_BUCKET = "shelfcast_cursor"  # <store> -> outbox seq of the last stock message applied
FLEET_BUCKET = "shelfcast_fleet"  # <store> -> birth, death, bundle, backlog, lag

DUPLICATE_WINDOW_S = 2 * 3600
"""Two hours: a gateway re-sends an unacknowledged batch within seconds of reconnecting, and the
server keeps every id of the window in memory (at 1,000 stores x 10 msg/s, 72 M ids)."""
ACK_WAIT_S = 5.0  # a dead worker's unacknowledged messages go to another worker after this
UPLINK_MAX_AGE_S = 7 * 86400
MAX_IN_FLIGHT = 1000  # unacked messages across all workers: a backlog is shared, not hoarded


def decision_subject(prefix: str = "shelfcast") -> str:
    """Where order decisions go (``_hub`` in the store's place: no store sends this kind)."""
    return f"{prefix}._hub.order_decision"


def uplink_subjects(prefix: str = "shelfcast") -> list[str]:
    kinds = ["uplink", "stockout", "replenishment", "anomaly", "conflict", "state"]
    kinds = [HUB_SUBJECT_KIND.get(k, k) for k in kinds] + [RESERVATION_RESULT]
    return [f"{prefix}.*.{k}" for k in kinds]


async def ensure(js, replicas: int = 1, prefix: str = "shelfcast") -> None:
    """Create the streams, the workers' consumer and the buckets if missing (safe to repeat)."""
    from nats.js.api import (
        AckPolicy,
        ConsumerConfig,
        DeliverPolicy,
        KeyValueConfig,
        StreamConfig,
    )

    for name, subjects in (
        (UPLINK_STREAM, uplink_subjects(prefix)),
        (ORDERS_STREAM, [f"{prefix}.*.{RESERVATION}"]),
        (DECISIONS_STREAM, [decision_subject(prefix)]),
    ):
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=subjects,
                num_replicas=replicas,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=UPLINK_MAX_AGE_S,
            )
        )
    await js.add_consumer(
        UPLINK_STREAM,
        ConsumerConfig(
            durable_name=WORKERS,
            deliver_subject=DELIVER,
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
