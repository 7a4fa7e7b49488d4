"""The full path's floor benchmark (``benchmarks/full_path_floor.py``): its arithmetic, the
messages it builds, the close rows it records and the acknowledging it shares with
``benchmarks/mqtt_acks.py``. Nothing here is timed."""

from __future__ import annotations

import subprocess
import time

import pytest

from benchmarks.full_path_floor import (
    CloseRows,
    floor_figures,
    message_mix,
    shares,
    summary,
)
from benchmarks.message_build import shapes
from benchmarks.mqtt_acks import acknowledge
from edge_runtime.config import load_config, with_mqtt
from edge_runtime.transport.mqtt import MqttTransport
from tests.mosquitto import (
    mosquitto,  # noqa: F401  (the fixture)
    wait,
)


def test_the_floor_is_the_sum_of_the_steps_and_the_ceiling_its_inverse():
    cpu = {"receive_ack": 0.12, "parse": 0.09, "commit": 0.25, "close_onnx": 0.34}
    f = floor_figures(cpu, 10_000)
    assert f["floor_us_per_event"] == pytest.approx(80.0)
    assert f["ceiling_events_per_s"] == pytest.approx(12_500.0)
    assert f["floor_us_per_event_without_closes"] == pytest.approx(46.0)
    assert f["close_onnx_us_per_event"] == pytest.approx(34.0)


def test_summary_takes_each_steps_median_and_compares_the_drain():
    def floor(parse):
        return {"cpu_s": {"parse": parse, "close_onnx": 0.1, "publish": 0.2},
                "extra_cpu_s": {"publish_one_write": parse}, "messages": 8000}  # fmt: skip

    runs = {
        "floor": [floor(0.1), floor(0.5), floor(0.3)],
        "drain": [{"cpu_s": c, "close_cpu_s": 1.0} for c in (3.0, 2.0, 4.0)],
    }
    s = summary(runs, 10_000)
    assert s["parse_us_per_event"] == pytest.approx(30.0)
    assert s["floor_us_per_event"] == pytest.approx(60.0)
    assert s["drain_us_per_event"] == pytest.approx(300.0)
    assert s["drain_over_floor"] == pytest.approx(5.0)
    # Figures beside the floor are reported, not added to it; per message from the count.
    assert s["publish_one_write_us_per_event"] == pytest.approx(30.0)
    assert s["publish_us_per_message"] == pytest.approx(25.0)


def test_shares_split_in_proportion_and_lose_nothing():
    assert sum(shares(7868, [5000, 3000, 2000])) == 7868
    assert shares(100, [3, 1]) == [75, 25]


def test_the_message_mix_has_the_drains_kinds_and_each_builds_with_its_own_id():
    by_kind = {"replenishment": 7, "stockout": 5, "conflict": 2}
    mix = message_mix(shapes(), by_kind)
    built = [cls(**kw) for cls, kw in mix]
    assert {k: sum(m.kind == k for m in built) for k in by_kind} == by_kind
    assert len({m.message_id for m in built}) == len(built)
    # Every stock-out shape is used, not only the first.
    assert len({m.reason_codes[0] for m in built if m.kind == "stockout"}) == 3


def test_close_rows_are_the_rescores_model_input_once_armed(tmp_path, monkeypatch):
    import edge_runtime.decide.day_close as day_close
    from edge_runtime.decide.day_close import DayCloseModel
    from edge_runtime.forecast.daily_sales import DailySales
    from edge_runtime.store.events import parse_events
    from feature_store.spec import FEATURE_STORE_VERSION
    from models.bundle import load_bundle
    from tests.signed_bundles import make_bundle

    closes = CloseRows().install(monkeypatch.setattr)
    model = DayCloseModel(load_bundle(make_bundle(tmp_path / "b"), FEATURE_STORE_VERSION))
    sales = DailySales()
    events, rejected = parse_events(
        [{"event_id": f"e{d}{s}", "store_id": "S1", "sku": s, "type": "sale", "qty": 1,
          "event_time": f"2026-01-0{d}T10:00:00+00:00", "source": "pos"}
         for d in (5, 6, 7) for s in ("A", "B")], "S1")  # fmt: skip
    assert not rejected
    sales.observe(events)
    assert model.rescore(sales) is not None
    assert closes.rows == []  # the start's re-score is not recorded
    closes.armed = True
    table = model.rescore(sales)
    assert len(closes.rows) == 1
    X = closes.rows[0]
    assert X.shape[:2] == (2, model.decide_days)
    mean, _ = day_close._units(model.scorer, X)  # outside a re-score: not recorded
    assert len(closes.rows) == 1
    assert mean.shape == (2, model.decide_days)
    assert table.mean.shape[0] == 2


def test_acknowledge_takes_every_message_and_the_broker_forgets_them(mosquitto, tmp_path):  # noqa: F811
    cfg = with_mqtt(
        load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path)}),
        host="127.0.0.1", port=mosquitto.port, client_id="floor-test",
    )  # fmt: skip
    held: list[tuple[int, int]] = []

    def transport() -> MqttTransport:
        t = MqttTransport(cfg, on_payload=lambda p, s, mid, qos: held.append((mid, qos)))
        t.start()
        assert t.wait_connected(10)
        return t

    transport().stop()  # the persistent session exists before the tills send
    lines = b"".join(b'{"n":%d}\n' % n for n in range(30))
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-t",
                    "shelfcast/S1/events/pos", "-q", "1", "-l"], input=lines, check=True,
                   timeout=30)  # fmt: skip
    t = transport()
    done, cpu = acknowledge(t, held, 30, 7, timeout_s=30)
    t.stop()
    assert done == 30 and cpu >= 0
    held.clear()
    t = transport()
    time.sleep(0.5)  # anything unacknowledged would be redelivered now
    t.stop()
    assert not wait(lambda: held, timeout=0.2)
