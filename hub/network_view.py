"""The network stock view: what the hub knows of every store x SKU, and of every gateway.

Kept in JetStream key-value buckets (docs/records/hub-view.md says why): ``shelfcast_stock``
(``<store>.<sku>`` -> on hand, reserved, ATP, the figure's time and seq, model version, the
ledger confidence of the last alert, the reorder point of the last replenishment alert, the last
conflict), ``shelfcast_cursor`` (``<store>`` -> the outbox seq of its last stock message applied
and that message's time) and ``shelfcast_fleet`` (``<store>`` -> birth, death, bundle, backlog,
lag).

Exactly once, with any number of workers: a store's stock messages carry their outbox seq and
the seq of the store's previous stock message. A worker applies one only when its predecessor is
the store's cursor (else it is a repeat, dropped, or early, handed back to wait), writes each SKU
only if the SKU's figure is older than the message, then moves the cursor. A worker killed at any
point leaves either nothing or a prefix the next attempt skips. Reserved units are summed from
the deltas (the uplink sends the change of reserved units; on hand and ATP as absolute figures).

>>> sku_key("S1", "FOODS_3_090"), sku_key("S1", "a b")
('S1.FOODS_3_090', 'S1.a=20b')
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
from typing import Any

from edge_runtime.messages import GZIP_MAGIC, HUB_SUBJECT_KIND, RESERVATION_RESULT
from hub.kv_patch import IN_FLIGHT, AckedPublishes, Change, Patcher
from hub.streams import CURSOR_BUCKET, FLEET_BUCKET, STOCK_BUCKET

log = logging.getLogger(__name__)

STOCK = HUB_SUBJECT_KIND["uplink"]
ALERTS = ("stockout", "replenishment", "anomaly")
CONFIDENCE_DIGITS = 2  # the view's ledger confidence is kept to two decimals
GAP_GIVE_UP = 200  # deliveries an early message waits for its predecessor before a gap is taken
_KEY_UNSAFE = re.compile(r"[^-_A-Za-z0-9]")

APPLIED, REPEAT, EARLY = "applied", "repeat", "early"


def sku_key(store_id: str, sku: str) -> str:
    """The bucket key of a store x SKU (characters a key cannot hold become ``=XX``)."""
    return f"{store_id}.{_KEY_UNSAFE.sub(lambda m: f'={ord(m.group()):02x}', sku)}"


def _json(payload: bytes) -> dict[str, Any]:
    return json.loads(gzip.decompress(payload) if payload[:2] == GZIP_MAGIC else payload)


class NetworkView:
    """Applies uplink messages to the buckets; one per worker, any number of workers."""

    def __init__(self, js: Any):
        self.js = js
        self.stock: Patcher
        self.cursor: Patcher
        self.fleet: Patcher
        self.counts = {APPLIED: 0, REPEAT: 0, EARLY: 0, "gaps": 0}
        self._confidence: dict[tuple[str, str], float] = {}  # last written, per store x SKU
        # Stores this view found with no cursor: it writes their figures from the first, so a
        # SKU it has not written is new (written unread; a refusal says otherwise).
        self._born_here: set[str] = set()
        # Per store, the cursor of the last chain applied here and not yet written (``settle``)
        self._applied: dict[str, dict[str, Any]] = {}

    async def open(self) -> NetworkView:
        limit = asyncio.Semaphore(IN_FLIGHT)  # reads: one bound for the worker's three buckets
        # nats-py keeps the connection on the JetStream context (no public accessor)
        acks = await AckedPublishes(self.js._nc).start()

        async def patcher(bucket: str) -> Patcher:
            return Patcher(acks, bucket, await self.js.key_value(bucket), limit)

        self.stock = await patcher(STOCK_BUCKET)
        self.cursor = await patcher(CURSOR_BUCKET)
        self.fleet = await patcher(FLEET_BUCKET)
        return self

    async def apply(
        self, subject: str, headers: dict[str, str] | None, payload: bytes, deliveries: int = 1
    ) -> str:
        """Apply one uplink message; returns ``applied``, ``repeat`` or ``early``."""
        _, store, kind = subject.rsplit(".", 2)
        if kind == STOCK:
            return (await self.apply_stock(store, [(headers or {}, payload, deliveries)]))[0]
        return (await self.apply_many(subject, [(headers, payload)]))[0]

    async def apply_many(
        self, subject: str, messages: list[tuple[dict[str, str] | None, bytes]]
    ) -> list[str]:
        """Apply a store's alerts, conflicts or heartbeats (one subject) together: each key
        they change is written once, with their changes in order (a replenishment alert's
        confidence and reorder point, or a burst of alerts about one SKU, cost one write and
        one round trip, not one each); different keys are written concurrently."""
        _, store, kind = subject.rsplit(".", 2)
        outcomes: list[str] = []
        changes: dict[Patcher, dict[str, list[Change]]] = {}
        for headers, payload in messages:
            outcome, writes = self._changes(subject, store, kind, headers or {}, payload)
            outcomes.append(outcome)
            for patcher, key, change in writes:
                changes.setdefault(patcher, {}).setdefault(key, []).append(change)
        await asyncio.gather(
            *(
                patcher.patch_many({key: _in_order(cs) for key, cs in by_key.items()})
                for patcher, by_key in changes.items()
            )
        )
        for o in outcomes:
            self.counts[o] += 1
        return outcomes

    def _changes(
        self, subject: str, store: str, kind: str, headers: dict[str, str], payload: bytes
    ) -> tuple[str, list[tuple[Patcher, str, Change]]]:
        """A message's outcome and the key changes it makes (none written yet)."""
        if kind == "state":
            return APPLIED, [(self.fleet, store, _state_change(store, headers, _json(payload)))]
        if kind in ALERTS or kind == "conflict":
            return APPLIED, self._exception(store, kind, _json(payload))
        if kind == RESERVATION_RESULT:  # the API answers its caller; nothing to keep
            return APPLIED, []
        log.warning("unknown uplink subject %s: acknowledged and ignored", subject)
        return REPEAT, []

    async def apply_stock(
        self, store: str, messages: list[tuple[dict[str, str], bytes, int]], settle: bool = True
    ) -> list[str]:
        """Apply a store's stock messages ``(headers, payload, deliveries)`` together; returns
        each one's outcome. Those that continue the store's chain from its cursor are merged:
        each SKU is written once with the sum of their reserved deltas and the last figure, then
        the cursor moves once (a backlog costs round trips per batch, not per message).
        ``settle=False`` leaves the cursor's write to :meth:`settle` (the figures are written
        and this view goes on from them): the caller moves it off the figures' way and once
        for any number of batches."""
        seqs = [
            (int(h["Shelfcast-Seq"]), int(h.get("Shelfcast-Prev-Seq", "0")), d, k)
            for k, (h, _, d) in enumerate(messages)
        ]
        at = await self._cursor_at(store)
        chain, early = _chain(seqs, at)
        if not chain and early:  # this worker's cursor may be stale: ask once
            at = await self._cursor_at(store, fresh=True)
            chain, early = _chain(seqs, at)
        if not chain and early and early[0][2] >= GAP_GIVE_UP:
            seq, prev = early[0][0], early[0][1]
            self.counts["gaps"] += 1  # the predecessor never came (pruned before forwarding)
            log.error(
                "store %s: stock messages %d..%d never arrived; applying %d", store, at, prev, seq
            )
            chain, early = _chain(seqs, prev)
        outcomes = [REPEAT] * len(messages)
        for item in early:
            outcomes[item[3]] = EARLY
        if chain:
            chain_msgs = [(seq, _json(messages[k][1])) for seq, _, _, k in chain]
            await self._apply_chain(store, chain_msgs, new_store=store in self._born_here)
            for item in chain:
                outcomes[item[3]] = APPLIED
        if settle:
            await self.settle(store)
        for o in outcomes:
            self.counts[o] += 1
        return outcomes

    async def settle(self, store: str) -> None:
        """Move the store's cursor to the last chain this view applied (nothing if it did not
        apply one since, or another worker's cursor is further). Until it is written, a worker
        that takes the store over starts from the older cursor: it applies those messages
        again, and each SKU's seq makes that write nothing twice."""
        figure = self._applied.get(store)
        if figure is None:
            return
        seq = figure["seq"]
        await self.cursor.patch(
            store, lambda old: figure if (old or {}).get("seq", 0) < seq else None
        )
        if self._applied.get(store) is figure:  # no newer chain applied meanwhile
            del self._applied[store]

    async def _cursor_at(self, store: str, fresh: bool = False) -> int:
        """The store's cursor: this worker's last read or write of it (the partition's owner is
        its only writer), or read from the bucket; or the last chain this view applied, when
        its cursor is not written yet."""
        cached = None if fresh else self.cursor.cached(store)
        value = cached if cached is not None else (await self.cursor.read(store))[1]
        applied = self._applied.get(store, {}).get("seq", 0)
        if value is None and not applied:  # no worker has applied a stock message of it yet
            self._born_here.add(store)
        return max((value or {}).get("seq", 0), applied)

    async def _apply_chain(
        self, store: str, chain: list[tuple[int, dict]], new_store: bool = False
    ) -> None:
        by_sku: dict[str, list[tuple[int, dict, list]]] = {}
        for seq, msg in chain:
            for row in msg["deltas"]:
                by_sku.setdefault(row[0], []).append((seq, msg, row))
        # Different keys: their round trips overlap; each key is still compare-and-set.
        await self.stock.patch_many(
            {sku_key(store, sku): _sku_change(store, rows) for sku, rows in by_sku.items()},
            unknown_are_new=new_store,
        )
        seq, msg = chain[-1]
        self._applied[store] = {
            "seq": seq,
            "at": msg["window_end"],
            "model_version": msg["model_version"],
        }

    def _exception(self, store: str, kind: str, msg: dict) -> list[tuple[Patcher, str, Change]]:
        """An alert's or a conflict's notes on its SKU's figure, as one change."""
        sku = msg.get("sku")
        if not sku:
            return []
        fields: dict[str, Any] = {}
        if kind == "conflict":
            fields["last_conflict"] = {
                k: msg.get(k)
                for k in (
                    "message_id",
                    "rule",
                    "loser_event_id",
                    "qty_requested",
                    "qty_granted",
                    "reason_codes",
                    "created_at",
                )
            }
        elif msg.get("confidence") is not None and self._confidence_moved(store, sku, msg):
            fields["ledger_confidence"] = msg["confidence"]
        if kind == "replenishment" and msg.get("reorder_point") is not None:
            # the store's demand over its lead time (plus safety): what routing must leave it
            fields["reorder_point"] = msg["reorder_point"]
        return [(self.stock, sku_key(store, sku), _noted(fields))] if fields else []

    def _confidence_moved(self, store: str, sku: str, msg: dict) -> bool:
        """Most alerts repeat the SKU's confidence: only a change is worth a write."""
        key, value = (store, sku), _rounded(msg["confidence"])
        if self._confidence.get(key) == value:
            return False
        self._confidence[key] = value
        return True


def _rounded(value: float) -> float:
    return round(value, CONFIDENCE_DIGITS)


def _chain(seqs: list[tuple[int, int, int, int]], at: int) -> tuple[list, list]:
    """Split ``(seq, prev, deliveries, index)`` items, given the store's cursor ``at``, into
    the chain that follows it (in seq order) and the early ones (their predecessor missing);
    repeats (``seq <= at``) are in neither."""
    chain, early = [], []
    for item in sorted(seqs):
        seq, prev = item[0], item[1]
        if seq <= at:
            continue
        if prev <= at and not early:
            chain.append(item)
            at = seq
        else:
            early.append(item)
    return chain, early


def _sku_change(store: str, rows: list[tuple[int, dict, list]]):
    """A SKU's figure after the ``(seq, message, row)`` of a chain that it has not seen yet."""

    def change(old: dict | None) -> dict | None:
        old = old or {}
        fresh = [r for r in rows if r[0] > old.get("seq", 0)]  # written before a crash: once
        if not fresh:
            return None
        seq, msg, (sku, _d_on_hand, _d_reserved, on_hand, atp, _events) = fresh[-1]
        return {
            **old,
            "store_id": store,
            "sku": sku,
            "on_hand": on_hand,
            "reserved": old.get("reserved", 0) + sum(r[2][2] for r in fresh),
            "atp": atp,
            "seq": seq,
            "at": msg["window_end"],
            "model_version": msg["model_version"],
        }

    return change


def _state_change(store: str, headers: dict[str, str], msg: dict) -> Change:
    """A heartbeat's (or birth's, death's) change to the store's fleet record."""
    lag_ms = int(headers.get("Shelfcast-Lag-Ms", "0"))

    def change(old: dict | None) -> dict | None:
        old = old or {}
        if old.get("last_seen", "") > msg["created_at"]:
            return None  # an older heartbeat, delivered late
        new = {
            **old,
            "store_id": store,
            "status": msg["status"],
            "last_seen": msg["created_at"],
            "model_version": msg["model_version"],
            "version": msg.get("version"),
            "outbox_depth": msg.get("outbox_depth"),
            "lag_ms": lag_ms,
        }
        if msg["status"] != "offline" and old.get("status") in (None, "offline"):
            new["born_at"] = msg["created_at"]
        if msg["status"] == "offline":
            new["died_at"] = msg["created_at"]
        return new

    return change


def _noted(fields: dict[str, Any]) -> Change:
    def change(old: dict | None) -> dict | None:
        old = old or {}
        if all(k in old and old[k] == v for k, v in fields.items()):
            return None  # says what the figure says already (a repeated reorder point)
        return {**old, **fields}

    return change


def _in_order(changes: list[Change]) -> Change:
    """One change doing ``changes`` one after the other (one that leaves the value as it is
    passes it on); None when none of them changes it."""
    if len(changes) == 1:
        return changes[0]

    def change(old: dict | None) -> dict | None:
        new = None
        for c in changes:
            out = c(old if new is None else new)
            if out is not None:
                new = out
        return new

    return change
