"""The gateway end to end through a real Mosquitto: events in, alerts out, outage, restart, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from edge_runtime.messages import parse_message
from tests.mosquitto import Subscriber, wait

pytestmark = pytest.mark.mqtt
ROOT = Path(__file__).resolve().parent.parent


def config(tmp_path, broker, **extra):
    env = {
        "SHELFCAST_STORE_ID": "S1",
        "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
        "SHELFCAST_POLICY_REORDER_POINT": "2",
        "SHELFCAST_POLICY_ORDER_UP_TO": "10",
        **extra,
    }
    cfg = load_config(env=env)
    return with_mqtt(
        cfg, host="127.0.0.1", port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5
    )


def event(i, sku, kind, qty, **more):
    return {
        "event_id": f"e{i}",
        "store_id": "S1",
        "sku": sku,
        "type": kind,
        "qty": qty,
        "event_time": f"2026-01-05T10:{i // 60:02d}:{i % 60:02d}+00:00",
        "source": "pos",
        **more,
    }


def kinds(sub):
    return [(json.loads(p)["kind"], json.loads(p)["sku"]) for _, p, _ in sub.received]


def mqtt_pub(broker, payload, source="pos"):
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
         "-t", f"shelfcast/S1/events/{source}", "-m", json.dumps(payload)],
        check=True, timeout=10,
    )  # fmt: skip


def test_events_over_mqtt_become_alerts_for_a_plain_consumer(tmp_path, mosquitto):
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/#", "shelfcast/S1/conflicts"])
    with Gateway(config(tmp_path, mosquitto)).start() as gw:
        assert gw.transport.wait_connected(10)
        mqtt_pub(mosquitto, [event(0, "A", "receipt", 5), event(1, "B", "receipt", 9)], "wms")
        mqtt_pub(mosquitto, event(2, "A", "sale", 3))  # ATP 2: reorder point
        consumer.wait_for(1)
        mqtt_pub(mosquitto, event(3, "A", "sale", 2))  # ATP 0: stock-out
        mqtt_pub(mosquitto, event(3, "A", "sale", 2))  # duplicate: changes nothing
        mqtt_pub(mosquitto, {"event_id": "bad", "store_id": "S1"})  # dead-lettered
        consumer.wait_for(2)
        assert wait(lambda: gw.counters["rejected"] == 1 and gw.counters["duplicates"] == 1)
        assert kinds(consumer) == [("replenishment", "A"), ("stockout", "A")]
        repl, out = (json.loads(p) for _, p, _ in consumer.received)
        assert repl["recommended_qty"] == 8 and repl["atp"] == 2 and repl["cause_event_id"] == "e2"
        assert (
            out["probability"] == 1.0
            and out["atp"] == 0
            and out["reason_codes"] == ["ON_HAND_ZERO"]
        )
        assert repl["event_time"].startswith("2026-01-05T10:00:02")
        assert gw.stock("A").on_hand == 0 and gw.stock("B").on_hand == 9
        assert gw.flush(10), "outbox not drained"
        # A reservation the shelf cannot cover: a conflict message, never a silent oversell.
        gw.ingest(event(4, "B", "reservation", 12, order_id="o1"), "ecom")
        assert wait(lambda: ("conflict", "B") in kinds(consumer))
    consumer.close()


def test_outage_loses_nothing_and_sends_each_once_in_order(tmp_path, mosquitto):
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/#"])
    gw = Gateway(config(tmp_path, mosquitto)).start()
    assert gw.transport.wait_connected(10)
    mosquitto.stop()
    assert wait(lambda: not gw.transport.connected)
    # The broker is gone: the gateway keeps ingesting (local path) and deciding.
    n = 0
    for k in range(40):
        sku = f"S{k}"
        for kind, qty in (("receipt", 3), ("sale", 1), ("sale", 2)):
            gw.ingest(event(n, sku, kind, qty), "api")
            n += 1
    assert wait(lambda: gw.outbox_depth() == 80)
    mosquitto.start()
    got = consumer.wait_for(80, 20)
    ids = [json.loads(p)["message_id"] for _, p, _ in got]
    assert len(ids) == 80 and len(set(ids)) == 80, "lost or duplicated alerts"
    for k in range(40):  # per SKU: replenishment before stock-out
        assert [x for x in kinds(consumer) if x[1] == f"S{k}"] == [
            ("replenishment", f"S{k}"),
            ("stockout", f"S{k}"),
        ]
    assert gw.flush(10)
    gw.close()
    consumer.close()


def test_restart_delivers_what_waited_and_events_sent_while_down(tmp_path, mosquitto):
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/#"])
    cfg = config(tmp_path, mosquitto)
    gw = Gateway(cfg).start()
    assert gw.transport.wait_connected(10)
    mosquitto.stop()
    gw.ingest([event(0, "A", "receipt", 1)], "api")  # replenishment, waits in the outbox
    gw.close()  # gateway restarts while the broker is down
    mosquitto.start()
    mqtt_pub(mosquitto, event(1, "A", "sale", 1))  # sent while no gateway runs
    with Gateway(cfg).start() as gw2:
        got = consumer.wait_for(2, 20)
        assert [(k, s) for k, s in kinds(consumer)] == [("replenishment", "A"), ("stockout", "A")]
        assert gw2.stock("A").on_hand == 0 and gw2.flush(10)
    assert len(got) == 2


def test_uplink_sends_deltas_not_events(tmp_path, mosquitto):
    up = Subscriber(mosquitto, ["shelfcast/S1/uplink/#"])
    cfg = config(tmp_path, mosquitto, SHELFCAST_UPLINK_INTERVAL_S="0.3")
    with Gateway(cfg).start() as gw:
        gw.ingest([event(i, "A", "receipt", 1) for i in range(10)], "api")
        gw.ingest([event(10 + i, "B", "sale", 1) for i in range(5)], "api")
        msgs = [parse_message(p) for _, p, _ in up.wait_for(1, 10)]
        deltas = {d[0]: dict(zip(msgs[0].columns, d, strict=True)) for m in msgs for d in m.deltas}
        assert deltas["A"]["d_on_hand"] == 10 and deltas["A"]["events"] == 10
        assert deltas["B"]["d_on_hand"] == -5 and deltas["B"]["events"] == 5
        assert msgs[0].kind == "uplink" and msgs[0].sku is None
        # B went below zero: the sale beyond the book and the stock-out are listed as exceptions
        assert ("B", "stockout", "ON_HAND_ZERO") in msgs[0].exceptions
        time.sleep(0.8)
        assert len(up.received) == 1  # nothing changed: nothing sent
    up.close()


def test_shelfcast_run_bad_config_says_what_to_fix(tmp_path):
    env = {**os.environ, "SHELFCAST_STORE_ID": "S1", "SHELFCAST_MQTT_PORT": "99999"}
    proc = subprocess.run(
        [sys.executable, "-m", "shelfcast.cli", "run", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "mqtt.port: expected a TCP port in 1..65535, got 99999" in proc.stderr


def test_shelfcast_run_against_tls_broker_and_last_will_on_kill(tmp_path, mosquitto_tls):
    tls = mosquitto_tls.tls
    conf = tmp_path / "gateway.toml"
    conf.write_text(
        f'[gateway]\nstore_id = "S1"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nhost = "localhost"\nport = {mosquitto_tls.port}\n'
        f'ca_file = "{tls.ca_file}"\ncert_file = "{tls.client_cert}"\nkey_file = "{tls.client_key}"\n'
    )
    watch = Subscriber(mosquitto_tls, ["shelfcast/S1/#"], client_id="watch", tls=tls)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shelfcast.cli", "run", "--config", str(conf)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert wait(lambda: any(b'"online"' in p for _, p, _ in watch.received), 20), "no online"
        tls_args = tls.client_args()
        payload = json.dumps(event(0, "A", "receipt", 1))
        subprocess.run(
            ["mosquitto_pub", "-h", "localhost", "-p", str(mosquitto_tls.port), "-q", "1",
             "-t", "shelfcast/S1/events/wms", "-m", payload, *tls_args],
            check=True, timeout=10,
        )  # fmt: skip
        assert wait(lambda: any(t.endswith("alerts/replenishment") for t, _, _ in watch.received))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait(lambda: b'"offline"' in watch.received[-1][1], 20), "no last will"
    finally:
        if proc.poll() is None:
            proc.kill()
        watch.close()


def test_exit_gate_read_without_a_sale_reaches_a_consumer_as_theft(tmp_path, mosquitto):
    consumer = Subscriber(mosquitto, ["shelfcast/S1/alerts/anomaly"])
    with Gateway(config(tmp_path, mosquitto)).start() as gw:
        assert gw.transport.wait_connected(10)
        stock = [event(0, "P", "receipt", 5), event(1, "T", "receipt", 5)]
        mqtt_pub(mosquitto, stock, "wms")
        mqtt_pub(mosquitto, event(60, "P", "sale", 1))  # paid, then out of the door
        gate = [event(61, "P", "rfid_exit", 1), event(2000, "T", "rfid_exit", 1)]
        mqtt_pub(mosquitto, [{**e, "source": "rfid"} for e in gate], "rfid")
        # T leaves over 30 min after the only sale (so no mis-scan), and gate alerts wait out
        # a 10-min hold; a later shelf reading moves event time past it.
        later = {**event(3599, "T", "shelf_units", 4), "source": "shelf"}
        mqtt_pub(mosquitto, later, "shelf")
        assert consumer.wait_for(1)
        time.sleep(0.3)
        alerts = [json.loads(p) for _, p, _ in consumer.received]
        assert [(a["sku"], a["anomaly_type"]) for a in alerts] == [("T", "theft")]
        assert "EXIT_GATE_WITHOUT_SALE" in alerts[0]["reason_codes"]
        assert gw.stock("T").on_hand == 5  # a sensor reading never changes the ledger
