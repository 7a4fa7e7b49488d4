"""The network act of ``shelfcast demo``: ten M5 stores, the hub on JetStream, and an online
order racing a till for a store's last unit.

1. Starts an embedded ``nats-server -js`` (``shelfcast.embedded_nats``), an MQTT broker
   (``shelfcast.broker``), the hub (``shelfcast hub``: one worker and the omnichannel API, with
   the stores' and DCs' places from ``twin.network_places``) and ten store gateways, each
   forwarding its uplink to JetStream.
2. Replays the ten stores' real sales of one day at once over MQTT: each store's M5 series
   with a long history (``m5_history``) plus the network's best sellers, with the day's real
   units from ``m5_store_days`` spread over opening hours (``twin.replay.spread_daily``)
   and moved onto today's clock (the hub's reservations carry the wall clock). Each store
   opens with a synthetic delivery of a week of the SKU's average sales over the 28 days
   before (at least the day's sales) and a morning count that agrees with it (so the ledger
   trusts its book); one store x SKU opens with the day's sales plus one unit, so the real
   day leaves it with its last unit.
3. Prints the hub's network view (``GET /v1/availability``): per store and in total, with each
   store's confidence and the age of its figure.
4. At one instant, that store's till sells its last unit (MQTT) and a web order asks for it
   (``POST /v1/orders``, delivered in the store's city, due today). The store's ledger decides;
   the act prints who got the unit, the order's plan, the conflict as the store's ledger, the
   hub and the caller saw it, and checks that nothing was oversold.

Everything it started is stopped at the end; ``<out>/network.json`` keeps the figures.

>>> cover_units(mean_daily=2.2, day_units=3)
16
>>> cover_units(mean_daily=0.1, day_units=5)
5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shelfcast.local_server import free_port, wait_serving

STEP = "network"
NETWORK_SKUS = 4  # the network's best sellers: every store carries them
RACE_STORE = "TX_1"  # Houston: no other store within a same-day courier run
COVER_DAYS = 7  # the opening count: a week of the SKU's average sales
HISTORY_DAYS = 28  # the days before the replayed one that the average is taken over
M5_HISTORY = "m5_history/sales_944_series.parquet"
BATCH = 500  # events per MQTT message (a JSON array)


_T0 = [time.perf_counter()]


def say(text: str) -> None:
    """A progress line, stamped with the seconds since the act began."""
    print(f"[{STEP} {time.perf_counter() - _T0[0]:5.1f}s] {text}", flush=True)


def cover_units(mean_daily: float, day_units: int) -> int:
    """The opening count of a SKU: ``COVER_DAYS`` of its average sales, at least the day's."""
    return max(math.ceil(COVER_DAYS * mean_daily), int(day_units), 1)


@dataclass
class StoreStream:
    """One store's replay: opening counts, then the day's real sales (event-time order).

    >>> s = StoreStream("CA_1", counts=[{"sku": "A", "type": "cycle_count", "qty": 5}], sales=[])
    >>> s.store, len(s.counts), s.sales
    ('CA_1', 1, [])
    """

    store: str
    counts: list[dict]
    sales: list[dict]


@dataclass
class NetworkDay:
    """The ten stores' replay and what the act shows.

    >>> day = NetworkDay("2016-04-25", ["A"], "A")
    >>> day.streams["CA_1"] = StoreStream("CA_1", counts=[{"qty": 5}], sales=[{"qty": 1}] * 3)
    >>> day.events  # every store's opening counts and sales
    4
    """

    day: str
    skus: list[str]  # the network's best sellers, shown in the hub's view
    race_sku: str
    streams: dict[str, StoreStream] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(len(s.counts) + len(s.sales) for s in self.streams.values())


def network_day(now: datetime) -> NetworkDay:
    """The last M5 day of every store, with its opening counts, on ``now``'s clock."""
    import pandas as pd

    from configuration.data_dir import require
    from twin.network_places import STORES
    from twin.replay import M5_STORE_DAYS

    days = pd.read_parquet(require(M5_STORE_DAYS), columns=["item_id", "store_id", "date", "sales"])
    day = days["date"].max()
    first = day - pd.Timedelta(days=HISTORY_DAYS)
    hist = pd.read_parquet(
        require(M5_HISTORY),
        columns=["item_id", "store_id", "date", "sales"],
        filters=[("date", ">=", first.date())],  # the series' last weeks only: fast
    )
    hist = hist.astype({"item_id": str, "store_id": str})
    hist["date"] = pd.to_datetime(hist["date"])
    top = days.groupby("item_id", observed=True)["sales"].sum(min_count=1).nlargest(NETWORK_SKUS)
    skus = [str(s) for s in top.index]
    # only the rows used, as plain strings (converting every categorical row is slow)
    days = days[days["item_id"].isin(set(hist["item_id"]) | set(skus)) & (days["date"] >= first)]
    days = days.astype({"item_id": str, "store_id": str, "sales": "int64"})
    past = pd.concat(
        [
            hist[(hist["date"] >= first) & (hist["date"] < day)],
            days[days["item_id"].isin(skus) & (days["date"] < day)],
        ]
    ).drop_duplicates(["item_id", "store_id", "date"])
    mean = (past.groupby(["store_id", "item_id"])["sales"].sum() / HISTORY_DAYS).to_dict()
    series = hist.groupby("store_id")["item_id"].unique()
    today = days[days["date"] == day]
    out = NetworkDay(str(day.date()), skus, skus[0])
    carried = {store: set(series.get(store, [])) | set(skus) for store in sorted(STORES)}
    sold = {store: today[(today["store_id"] == store) & today["item_id"].isin(items)]
            for store, items in carried.items()}  # fmt: skip
    sales = {store: _day_sales(rows, store) for store, rows in sold.items()}
    last = max(datetime.fromisoformat(e["event_time"]) for v in sales.values() for e in v)
    shift = now - timedelta(minutes=1) - last  # the network's last sale of the day a minute ago
    for store, events in sales.items():
        for e in events:
            e["event_time"] = (datetime.fromisoformat(e["event_time"]) + shift).isoformat()
        units = dict(zip(sold[store]["item_id"], sold[store]["sales"], strict=True))
        opening = _opening(store, carried[store], units, mean, events, out.race_sku)
        out.streams[store] = StoreStream(store, opening, events)
    return out


def _day_sales(rows, store: str) -> list[dict]:
    """A store's day of ``item_id, date, sales`` rows as one sale per unit over opening hours."""
    import pandas as pd

    from twin.replay import M5_TZ, spread_daily

    frame = pd.DataFrame({"sku": rows["item_id"], "date": rows["date"], "units": rows["sales"]})
    return spread_daily(frame, store, M5_TZ[store[:2]], seed=0)


def _opening(store, skus, units, mean, sales, race_sku) -> list[dict]:
    """Deliveries two hours before the store's first sale, then counts that agree, an hour
    before it (the race SKU: the day's sales plus one unit)."""
    opened = datetime.fromisoformat(min(e["event_time"] for e in sales))
    delivered_at = (opened - timedelta(hours=2)).isoformat()
    counted_at = (opened - timedelta(hours=1)).isoformat()
    receipts, counts = [], []
    for sku in sorted(skus):
        day_units = int(units.get(sku, 0))
        qty = cover_units(mean.get((store, sku), 0.0), day_units)
        why = f"{COVER_DAYS} days of average sales"
        if store == RACE_STORE and sku == race_sku:
            qty, why = day_units + 1, "the day's sales leave 1 unit"
        receipts.append(
            _event(
                f"OPEN-{store}-{sku}",
                store,
                sku,
                "receipt",
                qty,
                delivered_at,
                "wms",
                f"synthetic opening stock: {why}",
            )
        )
        counts.append(
            _event(
                f"COUNT-{store}-{sku}",
                store,
                sku,
                "cycle_count",
                qty,
                counted_at,
                "count",
                "synthetic morning count, as booked",
            )
        )
    return receipts + counts


def _event(eid, store, sku, kind, qty, when, source, reason=None) -> dict[str, Any]:
    event = {"event_id": eid, "store_id": store, "sku": sku, "type": kind, "qty": int(qty),
             "event_time": when, "source": source}  # fmt: skip
    if reason:
        event["reason"] = reason
    return event


# ---- what the act starts ----------------------------------------------------------------------


class Hub:
    """``shelfcast hub`` (one worker and the API) as a child process."""

    def __init__(self, nats_url: str, network: Path, log: Path):
        self.port = free_port()
        self.token = secrets.token_urlsafe(16)
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "SHELFCAST_HUB_TOKEN": self.token}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "shelfcast.cli", "hub", "--nats", nats_url,
               "--port", str(self.port), "--network", str(network)]  # fmt: skip
        with log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def wait_serving(self, timeout: float = 60.0) -> None:
        wait_serving(self.proc, self.url + "/v1/health", timeout, "shelfcast hub")

    def get(self, path: str) -> dict:
        import httpx

        r = httpx.get(self.url + path, headers=self.headers, timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict):
        import httpx

        return httpx.post(self.url + path, json=body, headers=self.headers, timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_gateway(work: Path, store: str, mqtt_port: int, nats_url: str):
    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.gateway import Gateway

    env = {
        "SHELFCAST_STORE_ID": store,
        "SHELFCAST_STATE_DIR": str(work / store),
        "SHELFCAST_UPLINK_INTERVAL_S": "0.02",
        "SHELFCAST_HUB_URL": nats_url,
        "SHELFCAST_HUB_HEARTBEAT_S": "1",
    }
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=mqtt_port)
    return Gateway(cfg).start()


def network_map(path: Path) -> Path:
    """The stores' and DCs' places as the hub's ``--network`` file."""
    from twin.network_places import DCS, STORES

    def places(group):
        return {k: {"lat": p.lat, "lon": p.lon} for k, p in group.items()}

    path.write_text(json.dumps({"stores": places(STORES), "dcs": places(DCS)}, indent=1))
    return path


# ---- the act --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--network",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the network act: 10 M5 stores, the hub on JetStream, an online order (~25 s)",
    )


def run_network_act(args: argparse.Namespace, out: Path) -> bool:
    """The act, if ``--network`` (the default); True when everything it checks held."""
    if not getattr(args, "network", True):
        return True
    from configuration.data_dir import DataMissingError
    from shelfcast.broker import EmbeddedBroker
    from shelfcast.embedded_nats import EmbeddedNats

    t0 = _T0[0] = time.perf_counter()
    work = out / "network"
    shutil.rmtree(work, ignore_errors=True)  # fresh stores and a fresh JetStream each run
    work.mkdir(parents=True)
    say("ten M5 stores, the hub on NATS JetStream, an online order against a till")
    nats = EmbeddedNats(work / "nats")
    broker = EmbeddedBroker(prefer=getattr(args, "broker", "auto"), work_dir=work / "broker")
    hub, gateways, figures = None, {}, {}
    try:
        nats.start()
        broker.start()
        say(f"NATS JetStream on {nats.url}; MQTT broker: {broker.kind} on port {broker.port}")
        hub = Hub(nats.url, network_map(work / "network.json"), work / "hub.log")
        try:  # the data loads while the hub process comes up
            plan = network_day(datetime.now(UTC))
        except DataMissingError as exc:
            say(f"skipped: {exc}")
            return False
        figures.update(day=plan.day, events=plan.events)
        say(f"{plan.events:,} events: the real sales of {plan.day} in {len(plan.streams)} "
            f"stores (m5_history series + the network's {NETWORK_SKUS} best sellers), "
            "on today's clock")  # fmt: skip
        for store in plan.streams:
            gateways[store] = start_gateway(work, store, broker.port, nats.url)
        for store, gw in gateways.items():  # nothing published before a SUBSCRIBE reaches it
            if not gw.transport.wait_connected(30):
                raise RuntimeError(f"gateway {store} did not subscribe within 30 s")
        hub.wait_serving()
        say(f"hub serving on {hub.url} (1 worker + API); {len(gateways)} gateways up")
        figures.update(replay(plan, gateways, broker.port, hub))
        show_view(plan, hub, figures)
        figures.update(race(plan, gateways, broker.port, hub))
    finally:
        for gw in gateways.values():
            gw.close()
        if hub is not None:
            hub.stop()
        broker.stop()
        nats.stop()
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    figures["ok"] = bool(figures.get("hub_matches_ledgers") and figures.get("oversold") == 0)
    (out / "network.json").write_text(json.dumps(figures, indent=2, default=str))
    say(f"everything stopped; the act took {figures['seconds']:.0f} s ({out / 'network.json'})")
    return figures["ok"]


def replay(plan: NetworkDay, gateways: dict, port: int, hub: Hub) -> dict[str, Any]:
    """Publish every store's counts, then all stores' sales at once; wait for the hub."""
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shelfcast-demo-network")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for source in ("wms", "count"):  # topics are separate queues: deliveries first
            for s in plan.streams.values():
                _publish(pub, s.store, source, [e for e in s.counts if e["source"] == source])
            done = {s: sum(e["source"] in ("wms", source) for e in v.counts)
                    for s, v in plan.streams.items()}  # fmt: skip
            _wait(lambda: all(_taken(gateways[s]) >= n for s, n in done.items()))  # noqa: B023
        say("opening counts in every ledger; replaying the day's sales in all stores at once")
        t0 = time.perf_counter()
        queues = {s: [v.sales[i : i + BATCH] for i in range(0, len(v.sales), BATCH)]
                  for s, v in plan.streams.items()}  # fmt: skip
        for round_ in range(max(len(q) for q in queues.values())):
            for store, chunks in queues.items():
                if round_ < len(chunks):
                    _publish(pub, store, "pos", chunks[round_], batch=False)
        sent = time.perf_counter()
        total = {s: len(v.counts) + len(v.sales) for s, v in plan.streams.items()}
        ingested = _wait(lambda: all(_taken(gateways[s]) >= n for s, n in total.items()), 120)
        took = time.perf_counter() - t0
        n_sales = sum(len(v.sales) for v in plan.streams.values())
        say(f"{n_sales:,} sales ingested by 10 gateways in {took:.1f} s "
            f"({n_sales / took:,.0f} events/s over MQTT)")  # fmt: skip
        matched = _wait(lambda: _hub_matches(plan, gateways, hub), 60, every=0.05)
        lag = time.perf_counter() - sent
        say(f"the hub's view matches every store's ledger {lag:.2f} s after the last sale was "
            "published" if matched else "the hub's view did NOT catch up with the ledgers")  # fmt: skip
        counters = {s: dict(g.counters) for s, g in gateways.items()}
        rejected = sum(c["rejected"] for c in counters.values())
    finally:
        pub.disconnect()  # first: it wakes the network loop, which loop_stop then joins
        pub.loop_stop()
    return {
        "sales": n_sales,
        "all_ingested": ingested,
        "rejected": rejected,
        "replay_s": round(took, 2),
        "hub_matches_ledgers": matched,
        "hub_caught_up_s": round(lag, 3),
    }


def _publish(pub, store: str, source: str, events: list[dict], batch: bool = True) -> None:
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)] if batch else [events]
    for chunk in chunks:
        topic = f"shelfcast/{store}/events/{source}"
        pub.publish(topic, json.dumps(chunk), qos=1).wait_for_publish(30)


def _taken(gw) -> int:
    c = gw.counters
    return c["ingested"] + c["duplicates"] + c["rejected"]


def _wait(check, timeout: float = 30.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def _hub_matches(plan: NetworkDay, gateways: dict, hub: Hub) -> bool:
    """The hub's figure of each shown SKU in every store equals that store's ledger."""
    for sku in plan.skus:
        seen = {s["store_id"]: s for s in hub.get(f"/v1/availability/{sku}")["stores"]}
        for store, gw in gateways.items():
            st, fig = gw.stock(sku), seen.get(store)
            if (
                st is None
                or fig is None
                or (fig["on_hand"], fig["atp"]) != (st.on_hand, st.available)
            ):
                return False
    return True


def show_view(plan: NetworkDay, hub: Hub, figures: dict) -> None:
    """The hub's availability of the shown SKUs: per store ATP, confidence, figure age."""
    views = {sku: hub.get(f"/v1/availability/{sku}") for sku in plan.skus}
    say("the hub's network view (GET /v1/availability/<sku>): ATP, confidence, figure age")
    print("  store  " + "".join(f"{sku:>22}" for sku in plan.skus))
    by_store = {sku: {s["store_id"]: s for s in v["stores"]} for sku, v in views.items()}
    for store in plan.streams:
        cells = []
        for sku in plan.skus:
            s = by_store[sku].get(store)
            cells.append(
                f"{s['atp']:>6.0f}  c{s['confidence']:.2f} {s['figure_age_s']:5.1f}s"
                if s
                else f"{'-':>22}"
            )
        print(f"  {store:<6} " + "".join(f"{c:>22}" for c in cells))
    print("  total  " + "".join(f"{views[sku]['total_atp']:>22.0f}" for sku in plan.skus))
    fleet = hub.get("/v1/fleet")["stores"]
    online = sum(f["online"] for f in fleet)
    say(f"fleet (GET /v1/fleet): {online}/{len(fleet)} stores online, outbox depth "
        f"{sum(f['outbox_depth'] or 0 for f in fleet)}")  # fmt: skip
    figures["view"] = {sku: {"total_atp": v["total_atp"]} for sku, v in views.items()}
    figures["stores_online"] = online


def race(plan: NetworkDay, gateways: dict, port: int, hub: Hub) -> dict[str, Any]:
    """The store's last unit: its till and a web order at the same instant; what happened."""
    from twin.network_places import STORES

    store, sku, gw = RACE_STORE, plan.race_sku, gateways[RACE_STORE]
    before, fig = gw.stock(sku), _hub_store(hub, store, sku)
    say(f"{store} ({STORES[store].city}) has {before.available} unit of {sku} left; the hub "
        f"shows atp {fig['atp']:.0f} (confidence {fig['confidence']:.2f})")  # fmt: skip
    till = _event(
        f"TILL-{store}-{sku}-last",
        store,
        sku,
        "sale",
        1,
        datetime.now(UTC).isoformat(),
        "pos",
        "the demo's till sale of the last unit",
    )
    order = {"order_id": f"web-{store}-{sku}", "lines": [{"sku": sku, "qty": 1}],
             "delivery": {"lat": STORES[store].lat, "lon": STORES[store].lon},
             "promised_date": datetime.now(UTC).date().isoformat()}  # fmt: skip
    say(f"at one instant: the till sells it (MQTT) and web order {order['order_id']} asks for "
        f"it (POST /v1/orders, delivered in {STORES[store].city}, due today)")  # fmt: skip
    r, answered_ms = _order_as_till_sells(hub, order, port, f"shelfcast/{store}/events/pos", till)
    decision = r.json()
    stream = plan.streams[store]
    _wait(lambda: _taken(gw) >= len(stream.counts) + len(stream.sales) + 1)
    after = gw.stock(sku)
    sold = int(after.sold - before.sold)
    ledger = [c for c in gw.ledger.conflicts(limit=1000) if c["sku"] == sku]
    where = ", ".join(f"{s['location_id']} ({s['kind']}, {s['km']:.0f} km)"
                      for s in decision.get("shipments", []))  # fmt: skip
    if store in decision.get("refused_by", []):
        say("the till's sale reached the ledger first: the store refused the reservation "
            f"(its last-unit rule), and the hub routed the order to {where}")  # fmt: skip
    elif after.reserved or any(c["kind"] == "reserved_units_gone" for c in ledger):
        say(
            "the reservation reached the ledger first; the till's sale (units that left the "
            "shop are a fact) then took the reserved unit: the store cut the reservation"
        )
    else:
        say(f"the hub's view had the till's sale before it planned: the order went to {where} "
            "without asking the store")  # fmt: skip
    say(f"web order: HTTP {r.status_code} {decision.get('status')} in {answered_ms:.0f} ms, "
        f"ships from {where or '-'}; reasons {','.join(decision.get('reason_codes', []))}")  # fmt: skip
    for c in decision.get("store_conflicts", []):
        say(
            f"  the caller got {c['store_id']}'s conflict: {c['kind']} (asked {c['requested']}, "
            f"granted {c['granted']}, on hand {c['on_hand']}, reserved {c['reserved']})"
        )
    for c in ledger:
        say(f"  {store}'s ledger: conflict {c['kind']} (order {c['order_id']}, asked "
            f"{c['requested']}, granted {c['granted']})")  # fmt: skip
    seen = bool(ledger) and _wait(lambda: _hub_conflict(hub, store, sku) is not None, 10, 0.05)
    if seen:
        said = _hub_conflict(hub, store, sku)
        say(f"  the hub's view: GET /v1/availability/{sku} shows {store}'s last conflict "
            f"({said.get('rule')}, {','.join(said.get('reason_codes') or [])}, granted "
            f"{said.get('qty_granted')} of {said.get('qty_requested')}); {store} atp now "
            f"{_hub_store(hub, store, sku)['atp']:.0f}")  # fmt: skip
    oversold = max(0, sold + int(after.reserved) - int(before.available))
    say(f"{store} now: on hand {after.on_hand}, reserved {after.reserved}; the till sold {sold}; "
        f"oversold units: {oversold}")  # fmt: skip
    return {
        "race": {
            "store": store,
            "sku": sku,
            "http_status": r.status_code,
            "order_status": decision.get("status"),
            "refused_by": decision.get("refused_by"),
            "reason_codes": decision.get("reason_codes"),
            "store_conflicts": decision.get("store_conflicts"),
            "ledger_conflicts": [c["kind"] for c in ledger],
            "hub_saw_conflict": seen,
            "till_sold": sold,
            "order_answered_ms": round(answered_ms, 1),
        },
        "oversold": oversold,
    }


def _order_as_till_sells(hub: Hub, order: dict, port: int, topic: str, till: dict):
    """POST ``order``; the till's sale is published as the request goes out (an httpx request
    hook), on a connection opened before, so neither waits for the other. Returns the
    response and its round trip in milliseconds."""
    import httpx
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shelfcast-demo-till")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    sent = []

    def sell(request: httpx.Request) -> None:
        if request.method == "POST":
            sent.append(pub.publish(topic, json.dumps(till), qos=1))

    try:
        hooks = {"request": [sell]}
        with httpx.Client(headers=hub.headers, timeout=30, event_hooks=hooks) as client:
            client.get(hub.url + "/v1/health")  # the connection is open before the race
            t0 = time.perf_counter()
            response = client.post(hub.url + "/v1/orders", json=order)
            answered_ms = (time.perf_counter() - t0) * 1000
        for info in sent:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()  # first: it wakes the network loop, which loop_stop then joins
        pub.loop_stop()
    return response, answered_ms


def _hub_store(hub: Hub, store: str, sku: str) -> dict:
    return next(s for s in hub.get(f"/v1/availability/{sku}")["stores"] if s["store_id"] == store)


def _hub_conflict(hub: Hub, store: str, sku: str) -> dict | None:
    return _hub_store(hub, store, sku).get("last_conflict")
