"""The sensor simulator: consistent with the sales, labelled, reproducible from a seed."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np
import pytest

from edge_runtime.store.events import parse_events
from edge_runtime.watch.shelf_watch import ShelfWatch
from twin.sensors import SensorConfig, simulate


def sales_stream(days=10, skus=30, seed=0):
    """A small POS stream: 30 SKUs with Poisson sales in opening hours (09:00-19:00 UTC)."""
    rng = np.random.default_rng(seed)
    t0 = datetime.fromisoformat("2026-01-05T00:00:00+00:00").timestamp()
    events = []
    for s in range(skus):
        rate = 0.5 + 8 * rng.random()
        for d in range(days):
            for _ in range(rng.poisson(rate)):
                t = t0 + d * 86400 + 9 * 3600 + rng.uniform(0, 10 * 3600)
                events.append((t, f"SKU{s:03d}", int(rng.integers(1, 4))))
    events.sort()
    return [
        {
            "event_id": f"p{i}",
            "store_id": "S1",
            "sku": sku,
            "type": "sale",
            "qty": q,
            "event_time": datetime.fromtimestamp(t).astimezone().isoformat(),
            "source": "pos",
        }
        for i, (t, sku, q) in enumerate(events)
    ]


def test_events_validate_against_the_event_schema_and_are_time_ordered():
    sim = simulate(sales_stream(), SensorConfig(seed=4))
    events, rejected = parse_events(sim.events, store_id="S1")
    assert rejected == []
    ts = [e.ts_us for e in events]
    assert ts == sorted(ts)
    kinds = Counter(e.type for e in events)
    assert kinds["shelf_weight"] > kinds["sale"] > 0 and kinds["rfid_exit"] > 0


def test_same_seed_same_stream_other_seed_other_labels():
    sales = sales_stream()
    a, b = simulate(sales, SensorConfig(seed=7)), simulate(sales, SensorConfig(seed=7))
    assert a.events == b.events and a.labels == b.labels
    assert simulate(sales, SensorConfig(seed=8)).labels != a.labels


def test_without_incidents_the_sensors_agree_with_the_sales():
    sales = sales_stream()
    cfg = SensorConfig(
        seed=2, thefts_per_day=0, phantom_episodes=0, misscan_rate=0, rfid_read_rate=1.0
    )
    sim = simulate(sales, cfg)
    assert sim.labels == [] and sim.dropped_sales == 0
    sold = Counter()
    gate = Counter()
    for e in sim.events:
        if e["type"] == "sale":
            sold[e["sku"]] += e["qty"]
        elif e["type"] == "rfid_exit":
            gate[e["sku"]] += e["qty"]
    assert all(gate[s] == sold[s] for s in sim.rfid_tagged)
    assert not set(gate) - sim.rfid_tagged
    # the detectors find nothing to say about an honest store
    watch = ShelfWatch(unit_weight_g=sim.unit_weight_g)
    events, _ = parse_events(sim.events, store_id="S1")
    alerts = [a for e in events for a in watch.observe_event(e)]
    alerts += watch.advance(events[-1].ts_us / 1e6 + 86400)
    assert alerts == []


def test_injected_incidents_are_labelled_and_present():
    sales = sales_stream(days=14)
    cfg = SensorConfig(
        seed=3, thefts_per_day=5, phantom_episodes=3, misscan_rate=0.01, phantom_min_sales_per_day=3
    )
    sim = simulate(sales, cfg)
    assert sim.counts["theft"] > 30 and sim.counts["phantom"] == 3 and sim.counts["misscan"] > 0
    for label in (lb for lb in sim.labels if lb.kind == "phantom"):
        inside = [
            e
            for e in sim.events
            if e["type"] == "sale"
            and e["sku"] == label.sku
            and label.start <= datetime.fromisoformat(e["event_time"]).timestamp() <= label.end
        ]
        assert inside == []  # the phantom SKU sells nothing during its episode
    assert sim.dropped_sales > 0


def test_no_sales_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one event of type 'sale'"):
        simulate([], SensorConfig())


def test_cli_adds_sensor_readings_to_a_replay_and_keeps_other_events(tmp_path):
    import json

    from shelfcast.cli import main

    sales = sales_stream(days=3, skus=5)
    receipt = {**sales[0], "event_id": "r1", "type": "receipt", "source": "wms", "qty": 10}
    src = tmp_path / "replay.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in [*sales, receipt]))
    out, labels = tmp_path / "sensors.jsonl", tmp_path / "labels.json"
    code = main(["sensors", "--in", str(src), "--out", str(out), "--labels", str(labels),
                 "--seed", "2", "--thefts-per-day", "3"])  # fmt: skip
    assert code == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(e["event_id"] == "r1" for e in events)
    assert {"shelf_weight", "sale"} <= {e["type"] for e in events}
    meta = json.loads(labels.read_text())
    assert any(lb["kind"] == "theft" for lb in meta["labels"]) and meta["unit_weight_g"]
