"""A small store for the dashboard's browser tests: a real gateway (ledger, outbox, real ONNX
model bundle, MQTT to a real Mosquitto) with four weeks of sales of six SKUs, a cycle count that
finds shrink, an exit-gate read without a sale, and a reservation contending for the last units.

>>> events = month_of_sales("S1")            # doctest: +SKIP
>>> gateway = open_store(tmp, broker_port)   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from tests.signed_bundles import public_key_env

STORE = "S1"
# SKU -> mean units sold a day (M5-style names: the shape of real retail SKUs)
RATES = {
    "FOODS_3_090": 9.0,
    "FOODS_3_586": 6.0,
    "FOODS_2_360": 4.0,
    "HOUSEHOLD_1_118": 2.5,
    "HOBBIES_1_234": 1.2,
    "HOUSEHOLD_2_040": 0.6,
}
DAYS = 28
DAY = "2026-03-{:02d}".format  # the store's days; the open day is DAYS + 1
OFFSET = "+01:00"


def event(event_id: str, sku: str, kind: str, qty: float, at: str, source: str, **extra) -> dict:
    """One edge event of the test store, ``at`` a local ``YYYY-MM-DDTHH:MM`` time."""
    return {"event_id": event_id, "store_id": STORE, "sku": sku, "type": kind, "qty": qty,
            "event_time": f"{at}:00{OFFSET}", "source": source, **extra}  # fmt: skip


def month_of_sales(seed: int = 7) -> list[dict]:
    """Opening receipts, then ``DAYS`` days of Poisson sales (busier at weekends) and a count."""
    rng = np.random.default_rng(seed)
    events = [
        event(f"rc-{sku}", sku, "receipt", int(rate * (DAYS + 6)) + 5, f"{DAY(1)}T07:00", "wms")
        for sku, rate in RATES.items()
    ]
    for d in range(1, DAYS + 1):
        busy = 1.4 if d % 7 in (0, 6) else 1.0
        for i, (sku, rate) in enumerate(RATES.items()):
            qty = int(rng.poisson(rate * busy))
            if qty:
                at = f"{DAY(d)}T{10 + i}:{(7 * d) % 60:02d}"
                events.append(event(f"s-{d}-{sku}", sku, "sale", qty, at, "pos", unit_price=2.5))
    # counts confirm the book (confidence is high) except one, which finds units missing
    at = f"{DAY(DAYS)}T20:00"
    return events + [event(f"cc-{sku}", sku, "cycle_count", None, at, "count") for sku in RATES]


def with_counts(events: list[dict], book: dict[str, int], missing: dict[str, int]) -> list[dict]:
    """Fill the cycle counts in: the book's units, less ``missing``."""
    for e in events:
        if e["type"] == "cycle_count":
            e["qty"] = book[e["sku"]] - missing.get(e["sku"], 0)
    return events


def open_day_events() -> list[dict]:
    """The open day: an exit-gate read nobody paid for, an online reservation of more units than
    the shelf holds (a conflict, and the SKU is out), and ordinary sales afterwards."""
    day = DAY(DAYS + 1)
    return [
        event("gate-1", "HOBBIES_1_234", "rfid_exit", 2, f"{day}T09:05", "rfid"),
        event("res-1", "HOUSEHOLD_2_040", "reservation", 12, f"{day}T09:30", "ecom", order_id="W-1001"),
        event("s-open-1", "FOODS_3_090", "sale", 4, f"{day}T11:10", "pos", unit_price=2.5),
        event("s-open-2", "FOODS_3_586", "sale", 2, f"{day}T11:40", "pos", unit_price=2.5),
    ]  # fmt: skip


def open_store(state_dir: Path, broker_port: int, bundle: Path) -> Gateway:
    """The gateway, connected to the broker, with the store's history and the model bundle."""
    env = {
        "SHELFCAST_STORE_ID": STORE,
        "SHELFCAST_STATE_DIR": str(state_dir),
        "SHELFCAST_MQTT_HOST": "127.0.0.1",
        "SHELFCAST_MQTT_PORT": str(broker_port),
        **public_key_env(),
    }
    gw = Gateway(load_config(env=env)).start()
    history = month_of_sales()
    sold = {sku: 0 for sku in RATES}
    received = {}
    for e in history:
        if e["type"] == "sale":
            sold[e["sku"]] += e["qty"]
        elif e["type"] == "receipt":
            received[e["sku"]] = e["qty"]
    book = {sku: received[sku] - sold[sku] for sku in RATES}
    with_counts(history, book, missing={"HOUSEHOLD_1_118": 9})
    _ingest(gw, history)
    gw.swap_bundle(bundle)
    _ingest(gw, open_day_events())
    return gw


def _ingest(gw: Gateway, events: list[dict]) -> None:
    result = gw.ingest(events, "seed")
    if result.rejected:
        raise AssertionError(f"the test store's events were refused: {result.rejections[:3]}")


def model_bundle(out_dir: Path) -> Path:
    """A real ONNX bundle whose demand model forecasts the last 7 days' mean (P90 twice it)."""
    from feature_store.spec import ANOMALY_FEATURES, index, names, spec_dict
    from tests.signed_bundles import signed_bundle
    from tests.test_api_bundle import onnx_model
    from tests.test_api_predictions import column_model

    models = {
        "demand": column_model(index("mean_7"), len(names())),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
    }
    return signed_bundle(out_dir / "mean7-1", models, spec_dict(), {"model_version": "mean7-1"})
