"""`shelfcast demo --quick` end to end on the real data: train, twin, edge replay over MQTT, report,
and the network act (ten M5 stores, the hub on JetStream, an order racing a till) once."""

from __future__ import annotations

import json

import pytest

from shelfcast.broker import EmbeddedBroker, mosquitto_path
from shelfcast.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, real_data_dir):
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(autouse=True)
def _mlflow_in_tmp(demo_dir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{demo_dir}/mlflow.db")


@pytest.mark.skipif(
    mosquitto_path() is None, reason="mosquitto not installed (make test installs it)"
)
def test_quick_demo_end_to_end_with_mosquitto(demo_dir, capsys):
    assert main(["demo", "--quick", "--out", str(demo_dir), "--broker", "mosquitto"]) == 0
    out = capsys.readouterr().out
    assert "[2 train] training on" in out and "MQTT broker: mosquitto" in out
    summary = json.loads((demo_dir / "summary.json").read_text())
    edge = summary["edge"]
    assert edge["events"] > 0 and edge["history_events"] > 0
    assert edge["all_ingested"]
    assert edge["counters"]["ingested"] == edge["events"] + edge["history_events"]
    assert edge["counters"]["day_closes"] >= 14  # the gateway closed the store days itself
    assert edge["counters"]["rejected"] == 0 and edge["outbox_depth"] == 0
    assert {p["policy"] for p in summary["policies"]} == {"minmax", "shelfcast", "statsforecast"}
    # every alert the gateway published reached the subscriber, and was printed as it came
    assert summary["alerts"].get("stockout", 0) >= 1
    assert "ALERT stockout" in out
    report = (demo_dir / "report.html").read_text()
    for part in (
        "Policy comparison",
        "Forecasts against actuals",
        "Stock trajectories",
        "Alerts and conflicts from the gateway",
        "mlflow ui",
    ):
        assert part in report
    assert report.count("<figure><svg") == 2  # matplotlib figures, inline
    # the console's policy names and headers, and every stock-out alert as a row of its own
    assert "<td>shelfcast</td>" in report and "<th>Avg inventory (units)</th>" in report
    assert "| Policy | Parameter | Fill rate |" in out
    assert report.count("<td>stockout</td>") == summary["alerts"]["stockout"]
    # the network act: ten stores' real day reached the hub, and the last unit was sold once
    network = json.loads((demo_dir / "network.json").read_text())
    assert network["ok"] and network["all_ingested"] and network["rejected"] == 0
    assert network["stores_online"] == 10 and network["hub_matches_ledgers"]
    assert network["sales"] > 1000 and network["oversold"] == 0
    race = network["race"]
    assert race["till_sold"] == 1 and race["order_status"] == "reserved"
    if "TX_1" in race["refused_by"]:  # the till won at the store: its conflict reached everyone
        assert race["store_conflicts"][0]["kind"] == "reservation_short"
        assert race["hub_saw_conflict"] and "REROUTED_AFTER_REFUSAL" in race["reason_codes"]
    assert "the hub's network view" in out and "oversold units: 0" in out


def test_quick_demo_reuses_its_bundle_on_amqtt(demo_dir, capsys):
    trained_before = (demo_dir / "bundle" / "manifest.json").exists()
    argv = ["demo", "--quick", "--out", str(demo_dir), "--broker", "amqtt", "--no-network"]
    assert main(argv) == 0  # the network act ran once, above
    out = capsys.readouterr().out
    assert "MQTT broker: amqtt" in out and "[network" not in out
    assert ("reusing bundle" in out) == trained_before  # same cut: no second training
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert summary["edge"]["all_ingested"] and summary["edge"]["broker"] == "amqtt"


def test_embedded_broker_falls_back_to_amqtt():
    broker = EmbeddedBroker(prefer="amqtt").start()
    try:
        assert broker.kind == "amqtt" and broker.port > 0
    finally:
        broker.stop()
    assert not broker.work_dir.exists()  # the directory it made for itself is gone


def test_history_seed_opens_only_skus_with_stock_or_sales():
    """A SKU with no starting stock and no sales in the seeded history gets no opening receipt
    (a receipt of 0 units is invalid and would be dead-lettered)."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from shelfcast.demo import HISTORY_DAYS, history_batches
    from twin.store import DemandPanel

    days = HISTORY_DAYS + 30
    dates = np.datetime64("2026-01-01") + np.arange(days)
    units = np.zeros((2, days))
    units[0, ::3] = 2.0  # "a" sells; "b" never does
    panel = DemandPanel.from_arrays("UK", ["a", "b"], dates, units)
    frame = pd.DataFrame({"sku": "a", "date": pd.to_datetime(dates[::3]), "units": 2.0})
    run = SimpleNamespace(start=days - 10, extra={"start_stock": np.array([5.0, 0.0])})
    opening, *sales = history_batches(frame, panel, run)
    assert [(e["sku"], e["qty"]) for e in opening] == [("a", 5.0 + 2.0 * 40)]
    assert all(e["sku"] == "a" and e["qty"] > 0 for day in sales for e in day)
