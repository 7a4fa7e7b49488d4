"""The API's copy of the network view, kept current by watching the key-value buckets.

Workers write the buckets; every API process watches the stock and fleet buckets and answers
reads from memory, so an availability request costs no round trip and sees a write as soon as
JetStream pushes it. The cursor bucket is read when the fleet report is asked for
(``read_cursors``): a watch would take a delivery and a decode of every store's cursor move
(about one write per two stock messages at a trickle) for a report that is rarely read.
Offline stores are reported as such, with the age of their last figure, never silently summed.

>>> view = LiveView(stale_after_s=15)
>>> view.put("shelfcast_fleet", "S1", {"status": "online", "last_seen": "2026-01-05T10:00:00+00:00"})
>>> view.online("S1", now=1767607205.0), view.online("S1", now=1767607300.0)
(True, False)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from hub.streams import CURSOR_BUCKET, FLEET_BUCKET, STOCK_BUCKET, until_ready

OFFLINE_HALF_LIFE_S = 3600.0  # an offline store's figure loses half its confidence per hour


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


class LiveView:
    """Stock by SKU then store, fleet by store; fed by ``watch``.

    >>> view = LiveView(stale_after_s=15)
    >>> for store, status, at, atp in (("S1", "online", "10:00", 4), ("S2", "offline", "09:00", 7)):
    ...     when = f"2026-01-05T{at}:00+00:00"
    ...     view.put("shelfcast_fleet", store, {"status": status, "last_seen": when})
    ...     view.put("shelfcast_stock", f"{store}.A", {"sku": "A", "store_id": store, "seq": 1,
    ...                                                "on_hand": atp, "reserved": 0, "atp": atp,
    ...                                                "at": when})
    >>> a = view.availability("A", now=1767607205.0)
    >>> a["total_atp"], a["offline_atp_not_counted"]  # an offline store's units are not promised
    (4.0, 7.0)
    """

    def __init__(self, stale_after_s: float = 15.0):
        self.stale_after_s = stale_after_s
        self.by_sku: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.fleet: dict[str, dict[str, Any]] = {}

    def put(self, bucket: str, key: str, value: dict[str, Any] | None) -> None:
        if bucket == STOCK_BUCKET:
            if value is not None and "sku" in value:
                self.by_sku[value["sku"]][value["store_id"]] = value
        elif bucket == FLEET_BUCKET and value is not None:
            self.fleet[key] = value

    async def watch(self, js: Any, bucket: str, ready: asyncio.Event) -> None:
        """Follow ``bucket`` forever; ``ready`` is set once its current values are loaded."""
        # Opened again after every reconnect, maybe while the cluster re-elects its leaders: a
        # watch that died of a timeout then would leave the view stale for good.
        kv = await until_ready(lambda: js.key_value(bucket), f"view of {bucket}")
        watcher = await until_ready(kv.watchall, f"view of {bucket}")
        try:
            while True:
                entry = await watcher.updates(timeout=None)
                if entry is None:  # the initial values are all in
                    ready.set()
                    continue
                if entry.value and entry.operation is None:
                    self.put(bucket, entry.key, json.loads(entry.value))
        finally:
            # Cancelling the task alone leaves the subscription with the client, which
            # re-subscribes it after every reconnect: each rewatch would add one more.
            with contextlib.suppress(Exception):  # the connection may be closing
                await watcher.stop()

    # ---- what the API answers --------------------------------------------------------------

    def online(self, store: str, now: float | None = None) -> bool:
        f = self.fleet.get(store)
        if not f or f.get("status") == "offline":
            return False
        seen = _epoch(f.get("last_seen"))
        return seen is not None and (now or time.time()) - seen <= self.stale_after_s

    def availability(self, sku: str, now: float | None = None) -> dict[str, Any]:
        """Per store and total; offline stores listed apart, with the age of their figure."""
        now = now or time.time()
        stores, total_atp, total_on_hand, offline_atp = [], 0.0, 0.0, 0.0
        for store, fig in sorted(self.by_sku.get(sku, {}).items()):
            if "seq" not in fig:
                continue  # only an alert or conflict seen yet: no stock figure to promise
            online = self.online(store, now)
            age = now - (_epoch(fig.get("at")) or now)
            fresh = 1.0 if online else math.exp(-math.log(2) * age / OFFLINE_HALF_LIFE_S)
            ledger = fig.get("ledger_confidence")
            stores.append(
                {
                    "store_id": store,
                    "on_hand": fig["on_hand"],
                    "reserved": fig["reserved"],
                    "atp": fig["atp"],
                    "online": online,
                    "figure_age_s": round(age, 3),
                    "confidence": round((1.0 if ledger is None else ledger) * fresh, 4),
                    "ledger_confidence": ledger,
                    "last_figure_at": fig.get("at"),
                    "model_version": fig.get("model_version"),
                    "last_conflict": fig.get("last_conflict"),
                }
            )
            if online:
                total_atp += fig["atp"]
                total_on_hand += fig["on_hand"]
            else:
                offline_atp += fig["atp"]
        return {
            "sku": sku,
            "total_atp": total_atp,
            "total_on_hand": total_on_hand,
            "offline_atp_not_counted": offline_atp,
            "stores": stores,
        }

    def fleet_report(
        self, now: float | None = None, cursors: dict[str, dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Every store of the fleet bucket or of ``cursors`` (``read_cursors``), with its
        last stock seq and figure time when ``cursors`` is given."""
        now = now or time.time()
        cursors = cursors or {}
        out = []
        for store in sorted(set(self.fleet) | set(cursors)):
            f = self.fleet.get(store, {})
            c = cursors.get(store, {})
            seen = _epoch(f.get("last_seen"))
            out.append(
                {
                    "store_id": store,
                    "online": self.online(store, now),
                    "status": f.get("status"),
                    "born_at": f.get("born_at"),
                    "died_at": f.get("died_at"),
                    "last_seen_age_s": None if seen is None else round(now - seen, 3),
                    "bundle_version": f.get("model_version"),
                    "version": f.get("version"),
                    "outbox_depth": f.get("outbox_depth"),
                    "lag_ms": f.get("lag_ms"),
                    "last_stock_seq": c.get("seq"),
                    "last_figure_at": c.get("at"),
                }
            )
        return out


async def read_cursors(js: Any, timeout_s: float = 5.0) -> dict[str, dict[str, Any]]:
    """Every store's cursor now (the cursor bucket's current values), read once."""
    kv = await js.key_value(CURSOR_BUCKET)
    watcher = await kv.watchall()
    out: dict[str, dict[str, Any]] = {}
    try:
        while (entry := await watcher.updates(timeout=timeout_s)) is not None:
            if entry.value and entry.operation is None:
                out[entry.key] = json.loads(entry.value)
    finally:
        with contextlib.suppress(Exception):  # the connection may be closing
            await watcher.stop()
    return out
