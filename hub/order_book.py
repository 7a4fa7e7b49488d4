"""The hub's record of each online order, so that ``POST /v1/orders`` is safe to resend.

A client that lost the answer (a timeout, a dropped connection) sends the same order again.
Planning it a second time would reserve it twice, or (since the stores answer a repeated
reservation event as a duplicate) route it around stores that already hold its units. So the
first request *claims* the ``order_id`` in the JetStream key-value bucket ``shelfcast_orders``
(an atomic create: exactly one of two concurrent requests wins, in any API process), plans and
reserves, then stores its decision under the same key. A resend gets that decision back, the
same plan and message id, without touching a store; a concurrent resend waits for it. The same
``order_id`` with different lines, delivery or promised date is refused (the key names one
order). A claim whose process died before deciding is taken over after ``LEASE_S``: the retry
re-sends the same reservation event ids, and each store answers with what it granted then.

>>> fingerprint({"order_id": "w1", "lines": [1]}) == fingerprint({"lines": [1], "order_id": "w1"})
True
>>> order_key("web:1")
'd2ViOjE'
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

ORDERS_BUCKET = "shelfcast_orders"  # order_id -> {fingerprint, state, since, decision}
DECIDING, DECIDED = "deciding", "decided"
POLL_S = 0.05


class OrderIdReused(ValueError):
    """The ``order_id`` was already used for an order with different content."""


def fingerprint(request: dict[str, Any]) -> str:
    """A digest of the request's content, independent of key order."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def order_key(order_id: str) -> str:
    """The bucket key of an order (base64url: order ids may hold ``:``, which a key may not)."""
    return base64.urlsafe_b64encode(order_id.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an order id: ours to decide (``revision`` to write the decision
    against), or decided before (``decision``)."""

    revision: int | None = None
    decision: dict[str, Any] | None = None


class OrderBook:
    """Claims and decisions of online orders in one key-value bucket."""

    def __init__(self, kv: Any, lease_s: float):
        self.kv = kv
        self.lease_s = lease_s

    @classmethod
    async def open(cls, js: Any, lease_s: float, replicas: int = 1) -> OrderBook:
        from nats.js.api import KeyValueConfig

        kv = await js.create_key_value(
            KeyValueConfig(bucket=ORDERS_BUCKET, history=1, replicas=replicas)
        )
        return cls(kv, lease_s)

    async def claim(self, order_id: str, digest: str) -> Claim:
        """Claim ``order_id`` for a request whose content has ``digest``; wait while another
        request decides it (up to its lease). Raises ``OrderIdReused`` on different content."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        key = order_key(order_id)
        mine = json.dumps({"fingerprint": digest, "state": DECIDING, "since": time.time()})
        while True:
            try:
                return Claim(revision=await self.kv.create(key, mine.encode()))
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue  # deleted between the two calls: claim again
            record = json.loads(entry.value)
            if record["fingerprint"] != digest:
                raise OrderIdReused(
                    f"order_id {order_id!r} was already used for a different order "
                    "(lines, delivery or promised date differ); send a new order_id"
                )
            if record["state"] == DECIDED:
                return Claim(decision=record["decision"])
            if time.time() - record["since"] > self.lease_s:  # its process died deciding
                try:
                    return Claim(revision=await self.kv.update(key, mine.encode(), entry.revision))
                except KeyWrongLastSequenceError:
                    continue  # another resend took it over first
            await asyncio.sleep(POLL_S)

    async def abandon(self, order_id: str, revision: int) -> None:
        """Give the claim up (deciding failed): a resend may claim the order at once."""
        await self.kv.delete(order_key(order_id), last=revision)

    async def settle(self, order_id: str, digest: str, revision: int, decision: dict) -> None:
        """Store the decision under the claim (a resend from now on gets it back)."""
        record = {"fingerprint": digest, "state": DECIDED, "since": time.time()}
        await self.kv.update(
            order_key(order_id), json.dumps({**record, "decision": decision}).encode(), revision
        )
