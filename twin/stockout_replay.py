"""Real stores' hours through real gateways: the intraday warning scored against real shelves.

Each FreshRetailNet store gets its own gateway (its own ledger and state directory, its store
id) on one Mosquitto broker. The gateway is seeded with the 14 days before the replayed ones
(``Gateway.seed_history``: stored and learnt from, nothing published), then the replayed days
go over MQTT hour by hour, as a store's tills and shelves would send them:

- ``HH:00`` availability readings (``shelf_units``, source ``shelf``): 0 when the retailer's
  flag says the hour is out of stock, 1 when in stock, sent when the flag changes;
- ``HH:30`` one sale per SKU and hour with sales (source ``pos``), in till units
  (``training.freshretailnet.TILL_UNITS`` per normalised unit), the day's price ratio as
  ``unit_price`` and ``reason = "activity"`` on activity days;
- a late till: the sales of a tenth of the SKUs arrive after the next hour's readings (still
  within the gateway's watermark lateness), so event-time order is exercised every hour.

The data has no stock levels: each SKU opens with a receipt the replay never sells through
(labelled ``replay-opening-stock``), so the ledger never reads empty and only the retailer's
flags say when the shelf is. Every prediction the gateway made is scored against the flags
that followed (:func:`score`), and every alert it published on ``alerts/stockout`` against the
hours after it.

>>> at(19875, 9, 30)
'2024-06-01T09:30:00+08:00'
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from feature_store.intraday import HISTORY_DAYS, first_out_in, label_4h

OFFSET = "+08:00"  # the retailer's stores keep China's time
OPENING_STOCK = 100_000
LATE_SHARE = 0.1


def at(day: int, hour: int, minute: int = 0) -> str:
    """Event time text of a store day (days since the epoch) and hour, in the store's time."""
    return f"{np.datetime64(day, 'D')}T{hour:02d}:{minute:02d}:00{OFFSET}"


def _event(eid: str, sku: str, kind: str, qty, when: str, source: str, **extra) -> dict:
    e = {"event_id": eid, "store_id": "", "sku": sku, "type": kind, "qty": qty}
    e.update(event_time=when, source=source, **extra)
    return e


@dataclass
class StoreStream:
    """One store's events: ``history`` (seeded) and ``live`` payloads in arrival order, each a
    ``(source, events)`` pair.

    >>> from training.freshretailnet import HourlyPanel
    >>> panel = HourlyPanel(store=np.array([3]), product=np.array([7]), category=np.array([1]),
    ...     city=np.array([0]), start=np.datetime64("2024-03-01"),
    ...     sales=np.ones((1, 16, 24), np.float32), out=np.zeros((1, 16, 24), np.uint8),
    ...     discount=np.ones((1, 16)), activity=np.zeros((1, 16)), holiday=np.zeros((1, 16)))
    >>> s = store_stream(panel, np.array([0]), first_live=14, live_days=2)
    >>> s.store_id, len(s.history), s.live_events, s.live[0][0]  # 14 days seeded, 2 days live
    ('3', 15, 48, 'pos')
    """

    store_id: str
    history: list[list[dict]]
    live: list[tuple[str, list[dict]]]

    @property
    def live_events(self) -> int:
        return sum(len(b) for _, b in self.live)


def store_stream(panel, rows: np.ndarray, first_live: int, live_days: int, seed: int = 0):
    """The events of the series ``rows`` (one store) of a panel in till units
    (:func:`training.freshretailnet.in_till_units`): the 14 days before day index
    ``first_live`` as history, ``live_days`` days from it live (see the module docstring)."""
    store_id = str(panel.store[rows[0]])
    skus = [str(panel.product[r]) for r in rows]
    late = np.random.default_rng(seed).random(len(rows)) < LATE_SHARE
    day0 = int(panel.dates[0].astype("datetime64[D]").astype(np.int64))
    units = np.round(panel.sales[rows]).astype(np.int64)  # already in till units
    out = panel.out[rows]

    def hour_events(d: int, h: int, first: bool, sell: np.ndarray) -> tuple[list, list, list]:
        day = day0 + d
        flags = out[:, d, h]
        prev = out[:, d, h - 1] if h else out[:, d - 1, 23] if d else 1 - flags
        shelf = [
            _event(f"{store_id}-{skus[i]}-{d}-{h}-a", skus[i], "shelf_units",
                   int(flags[i] == 0), at(day, h), "shelf")
            for i in np.flatnonzero((flags != prev) | first)
        ]  # fmt: skip
        sales = [[], []]
        for i in np.flatnonzero(sell & (units[:, d, h] > 0)):
            extra = {"unit_price": float(panel.discount[rows[i], d])}
            if panel.activity[rows[i], d]:
                extra["reason"] = "activity"
            e = _event(f"{store_id}-{skus[i]}-{d}-{h}-s", skus[i], "sale",
                       int(units[i, d, h]), at(day, h, 30), "pos", **extra)  # fmt: skip
            sales[int(late[i])].append(e)
        return shelf, sales[0], sales[1]

    opening = [
        _event(f"{store_id}-{sku}-open", sku, "receipt", OPENING_STOCK,
               at(day0 + first_live - HISTORY_DAYS, 0), "wms", reason="replay-opening-stock")
        for sku in skus
    ]  # fmt: skip
    history: list[list[dict]] = [opening]
    everyone = np.ones(len(rows), bool)
    for d in range(first_live - HISTORY_DAYS, first_live):
        day: list[dict] = []
        for h in range(24):
            shelf, on_time, late_sales = hour_events(
                d, h, d == first_live - HISTORY_DAYS and h == 0, everyone
            )
            day += shelf + on_time + late_sales
        history.append(day)
    live: list[tuple[str, list[dict]]] = []
    held: list[dict] = []
    for d in range(first_live, first_live + live_days):
        for h in range(24):
            shelf, on_time, late_sales = hour_events(d, h, False, everyone)
            for source, batch in (("shelf", shelf), ("pos", held), ("pos", on_time)):
                if batch:
                    live.append((source, batch))
            held = late_sales
    if held:
        live.append(("pos", held))
    for payloads in (history, [b for _, b in live]):
        for batch in payloads:
            for e in batch:
                e["store_id"] = store_id
    return StoreStream(store_id, history, live)


@dataclass
class StoreReplay:
    """What one store's gateway did: every prediction, the alerts it published, its counters."""

    store_id: str
    predictions: list = field(default_factory=list)  # (sku, store day, hour, probability)
    alerts: list[dict] = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    late_events: int = 0
    seconds: float = 0.0
    all_ingested: bool = False


class AlertCollector:
    """Subscribes to ``{prefix}/+/alerts/stockout`` and keeps every payload (and can print)."""

    def __init__(self, port: int, prefix: str, write=None):
        import paho.mqtt.client as mqtt

        self.received: list[dict] = []
        self._lock = threading.Lock()
        self._write = write
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stockout-replay")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/+/alerts/stockout", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        m = json.loads(msg.payload)
        with self._lock:
            self.received.append(m)
        if self._write is not None and m.get("warning") == "intraday":
            self._write(m)

    def take(self, store_id: str) -> list[dict]:
        with self._lock:
            return [m for m in self.received if m["store_id"] == store_id]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_handled(gw, total: int, timeout: float) -> bool:
    """Wait until ``gw`` has ingested, found duplicate or rejected ``total`` events in all;
    False after ``timeout`` seconds (a replay then says the gateway stopped taking events)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = gw.counters
        if c["ingested"] + c["duplicates"] + c["rejected"] >= total:
            return True
        time.sleep(0.005)
    return False


def replay_store(
    stream: StoreStream,
    bundle: Path,
    public_key: Path,
    port: int,
    state_dir: Path,
    collector: AlertCollector,
    pace_s: float = 0.0,
) -> StoreReplay:
    """Seed a fresh gateway for the store with its history, publish the live payloads over MQTT
    (``pace_s`` between them), wait until all are ingested and the alerts are out."""
    import paho.mqtt.client as mqtt

    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.gateway import Gateway

    shutil.rmtree(state_dir, ignore_errors=True)
    env = {
        "SHELFCAST_STORE_ID": stream.store_id,
        "SHELFCAST_STATE_DIR": str(state_dir),
        "SHELFCAST_BUNDLE": str(bundle),
        "SHELFCAST_MODEL_PUBLIC_KEY": str(public_key),
    }
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=port)
    out = StoreReplay(stream.store_id)
    t0 = time.perf_counter()
    gw = Gateway(cfg)
    pub = None
    try:
        seeded = gw.seed_history(stream.history)
        gw.start()
        if gw.transport is not None and not gw.transport.wait_connected(30):
            raise RuntimeError(f"gateway {stream.store_id} did not reach the broker on port {port}")
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"tills-{stream.store_id}")
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        prefix = cfg.mqtt.topic_prefix
        sent, last = seeded, None
        for source, batch in stream.live:
            # Each source (tills, shelves) is its own ordered stream: the broker keeps no order
            # across topics, so, as the devices of a store would, one source's payload waits
            # until the other's went in.
            if source != last and not wait_handled(gw, sent, 30):
                break
            topic = f"{prefix}/{stream.store_id}/events/{source}"
            pub.publish(topic, json.dumps(batch), qos=1).wait_for_publish(30)
            sent, last = sent + len(batch), source
            if pace_s:
                time.sleep(pace_s)
        out.all_ingested = wait_handled(gw, seeded + stream.live_events, timeout=120)
        gw.flush(30)
        warner = gw.intraday
        if warner is not None:
            out.predictions = [(p.sku, p.day, p.hour, p.probability) for p in warner.predictions]
            out.late_events = warner.late_events
        out.counters = dict(gw.counters)
    finally:
        if pub is not None:
            pub.loop_stop()
            pub.disconnect()
        gw.close()
    time.sleep(0.2)  # the last alerts reach the collector
    out.alerts = [m for m in collector.take(stream.store_id) if m.get("warning") == "intraday"]
    out.seconds = time.perf_counter() - t0
    return out


def score(panel, replays: list[StoreReplay], live_days: int) -> dict:
    """Every gateway prediction against the panel's flags for the 4 hours after it; every
    published alert (episode opened) against the same; per-store-day alert rate."""
    from training import stockout_warning as sw

    index = {
        (str(s), str(p)): i for i, (s, p) in enumerate(zip(panel.store, panel.product, strict=True))
    }
    day0 = int(panel.dates[0].astype("datetime64[D]").astype(np.int64))
    rows, probs, instock = [], [], []
    for r in replays:
        for sku, day, hour, p in r.predictions:
            s, d = index[(r.store_id, sku)], day - day0
            rows.append((s, d, hour))
            probs.append(p)
            instock.append(panel.out[s, d, hour] == 0)
    if not rows:
        return {"predictions": 0}
    p = np.array(probs)
    y = np.array([label_4h(panel.out[si : si + 1, di : di + 1], hi)[0, 0] for si, di, hi in rows])
    opened, true, leads = 0, 0, []
    for r in replays:
        for m in r.alerts:
            if m.get("episode") != "open":
                continue
            when = np.datetime64(m["hour_start"][:19]) + np.timedelta64(8, "h")  # store time
            di = int((when.astype("datetime64[D]").astype(np.int64)) - day0)
            hi = int(when.astype("datetime64[h]").astype(np.int64) % 24)
            si = index[(r.store_id, m["sku"])]
            window = panel.out[si : si + 1, di : di + 1]
            opened += 1
            if label_4h(window, hi)[0, 0]:
                true += 1
                leads.append(int(first_out_in(window, hi)[0, 0]))
    store_days = len(replays) * live_days
    both = 0 < y.sum() < len(y)  # a ranking needs both outcomes
    return {
        "predictions": len(p),
        "in_stock_as_the_flags_say": float(np.mean(instock)),
        "positive_rate": float(y.mean()),
        **(sw.ranking_scores(y, p) if both else {"roc_auc": None, "pr_auc": None}),
        "brier": float(np.mean((p - y) ** 2)),
        "reliability": sw.reliability(p, y),
        "alerts": opened,
        "alerts_true": true,
        "alert_precision": true / opened if opened else None,
        "alerts_per_store_day": opened / store_days if store_days else None,
        "median_lead_hours": float(np.median(leads)) if leads else None,
        "late_events": int(sum(r.late_events for r in replays)),
        "all_ingested": all(r.all_ingested for r in replays),
    }
