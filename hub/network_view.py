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
from hub.kv_patch import Patcher
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

    async def open(self) -> NetworkView:
        self.stock = Patcher(await self.js.key_value(STOCK_BUCKET))
        self.cursor = Patcher(await self.js.key_value(CURSOR_BUCKET))
        self.fleet = Patcher(await self.js.key_value(FLEET_BUCKET))
        return self

    async def apply(
        self, subject: str, headers: dict[str, str] | None, payload: bytes, deliveries: int = 1
    ) -> str:
        """Apply one uplink message; returns ``applied``, ``repeat`` or ``early``."""
        _, store, kind = subject.rsplit(".", 2)
        headers = headers or {}
        if kind == STOCK:
            outcome = await self._stock(store, headers, _json(payload), deliveries)
        elif kind == "state":
            outcome = await self._state(store, headers, _json(payload))
        elif kind in ALERTS or kind == "conflict":
            outcome = await self._exception(store, kind, _json(payload))
        elif kind == RESERVATION_RESULT:  # the API answers its caller; nothing to keep
            outcome = APPLIED
        else:
            log.warning("unknown uplink subject %s: acknowledged and ignored", subject)
            outcome = REPEAT
        self.counts[outcome] += 1
        return outcome

    async def _stock(self, store: str, headers: dict[str, str], msg: dict, deliveries: int) -> str:
        seq = int(headers["Shelfcast-Seq"])
        prev = int(headers.get("Shelfcast-Prev-Seq", "0"))
        _, cursor = await self.cursor.read(store)
        at = (cursor or {}).get("seq", 0)
        if seq <= at:
            return REPEAT
        if prev > at:
            if deliveries < GAP_GIVE_UP:
                return EARLY
            self.counts["gaps"] += 1  # the predecessor never came (pruned before forwarding)
            log.error(
                "store %s: stock messages %d..%d never arrived; applying %d", store, at, prev, seq
            )
        # Different keys: their round trips overlap; each key is still compare-and-set.
        await asyncio.gather(
            *(
                self.stock.patch(sku_key(store, row[0]), _sku_change(store, msg, seq, row))
                for row in msg["deltas"]
            )
        )
        figure = {"seq": seq, "at": msg["window_end"], "model_version": msg["model_version"]}
        await self.cursor.patch(
            store, lambda old: figure if (old or {}).get("seq", 0) < seq else None
        )
        return APPLIED

    async def _state(self, store: str, headers: dict[str, str], msg: dict) -> str:
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

        await self.fleet.patch(store, change)
        return APPLIED

    async def _exception(self, store: str, kind: str, msg: dict) -> str:
        sku = msg.get("sku")
        if not sku:
            return APPLIED
        if kind == "conflict":
            note = {
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
            await self.stock.patch(sku_key(store, sku), _noted("last_conflict", note))
        elif msg.get("confidence") is not None and self._confidence_moved(store, sku, msg):
            await self.stock.patch(
                sku_key(store, sku), _noted("ledger_confidence", msg["confidence"])
            )
        if kind == "replenishment" and msg.get("reorder_point") is not None:
            # the store's demand over its lead time (plus safety): what routing must leave it
            await self.stock.patch(
                sku_key(store, sku), _noted("reorder_point", msg["reorder_point"])
            )
        return APPLIED

    def _confidence_moved(self, store: str, sku: str, msg: dict) -> bool:
        """Most alerts repeat the SKU's confidence: only a change is worth a write."""
        key, value = (store, sku), _rounded(msg["confidence"])
        if self._confidence.get(key) == value:
            return False
        self._confidence[key] = value
        return True


def _rounded(value: float) -> float:
    return round(value, CONFIDENCE_DIGITS)


def _sku_change(store: str, msg: dict, seq: int, row: list):
    sku, _d_on_hand, d_reserved, on_hand, atp, _events = row

    def change(old: dict | None) -> dict | None:
        old = old or {}
        if old.get("seq", 0) >= seq:
            return None  # this SKU was written by this message before a crash: once only
        return {
            **old,
            "store_id": store,
            "sku": sku,
            "on_hand": on_hand,
            "reserved": old.get("reserved", 0) + d_reserved,
            "atp": atp,
            "seq": seq,
            "at": msg["window_end"],
            "model_version": msg["model_version"],
        }

    return change


def _noted(field: str, value: Any):
    def change(old: dict | None) -> dict | None:
        return {**(old or {}), field: value}

    return change
