"""The replayer: real data -> a valid, ordered, deterministic edge event stream, folded by the
real ledger."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from edge_runtime.store.events import parse_events
from edge_runtime.store.ledger import Ledger
from twin.replay import (
    m5_events,
    m5_frame,
    online_retail_events,
    read_jsonl,
    spread_daily,
    write_jsonl,
)


def _valid(events, store_id):
    for i in range(0, len(events), 10_000):
        good, bad = parse_events(events[i : i + 10_000], store_id)
        assert bad == [] and len(good) == len(events[i : i + 10_000]), bad[:3]


def _ordered(events):
    ts = pd.to_datetime([e["event_time"] for e in events], utc=True, format="ISO8601")
    assert ts.is_monotonic_increasing


def test_spread_daily_is_seeded_and_inside_opening_hours(tmp_path):
    frame = pd.DataFrame(
        {
            "sku": ["A", "A", "B"],
            "date": pd.to_datetime(["2016-04-25", "2016-04-26", "2016-04-25"]),
            "units": [3, 0, 2],
        }
    )
    a = spread_daily(frame, "S1", "America/Chicago", seed=1)
    assert a == spread_daily(frame, "S1", "America/Chicago", seed=1)
    assert a != spread_daily(frame, "S1", "America/Chicago", seed=2)
    assert len(a) == 5 and len({e["event_id"] for e in a}) == 5
    hours = [int(e["event_time"][11:13]) for e in a]
    assert all(8 <= h < 22 for h in hours)
    assert all(e["event_time"].endswith("-05:00") for e in a)
    _valid(a, "S1")
    _ordered(a)
    path = tmp_path / "a.jsonl"
    assert write_jsonl(a, path) == 5
    assert list(read_jsonl(path)) == a


def test_restock_keeps_the_book_non_negative():
    frame = pd.DataFrame(
        {
            "sku": ["A"] * 10,
            "date": pd.date_range("2016-04-25", periods=10, freq="D"),
            "units": [2, 1, 0, 3, 1, 1, 2, 4, 0, 1],
        }
    )
    events = spread_daily(frame, "S1", "America/Chicago", seed=0, restock=True)
    kinds = Counter(e["type"] for e in events)
    assert kinds == {"sale": 15, "cycle_count": 1, "receipt": 1}
    assert all(e["reason"].startswith("synthetic") for e in events if e["type"] != "sale")


@pytest.mark.realdata
def test_m5_store_replay_is_valid_and_folds_cleanly(real_data_dir, tmp_path):
    events = m5_events(["CA_4"], seed=0)
    units = m5_frame(["CA_4"])["units"].sum()
    kinds = Counter(e["type"] for e in events)
    assert kinds["sale"] == units  # every real unit appears once
    assert events == m5_events(["CA_4"], seed=0)
    _valid(events, "CA_4")
    _ordered(events)
    with Ledger(tmp_path / "l.sqlite", "CA_4") as led:
        for i in range(0, len(events), 5000):
            r = led.ingest_raw(events[i : i + 5000])
            assert r.rejected == 0
            # Weekly receipts cover each week's real sales: the book never goes below zero.
            assert [c for c in r.conflicts if c.kind == "sold_beyond_book"] == []
        assert led.event_count() == len(events)
        assert led.verify() == []


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_replay_has_real_times_and_returns(real_data_dir):
    events = online_retail_events("United Kingdom", "UK", limit=60_000)
    kinds = Counter(e["type"] for e in events)
    assert kinds["sale"] > 50_000 and kinds["return"] > 500 and kinds["adjustment"] > 0
    assert events[0]["event_time"] == "2009-12-01T07:45:00+00:00"
    returns = [e for e in events if e["type"] == "return"]
    assert all(e["order_id"].startswith("C") and e["qty"] > 0 for e in returns)
    _valid(events, "UK")
    _ordered(events)


@pytest.mark.realdata
def test_replay_command_writes_json_lines(real_data_dir, tmp_path, capsys):
    from shelfcast.cli import main

    out = tmp_path / "ca4.jsonl"
    assert (
        main(["replay", "--dataset", "m5", "--store", "CA_4", "--limit", "500", "--out", str(out)])
        == 0
    )
    events = list(read_jsonl(out))
    assert len(events) == 500 and events[0]["store_id"] == "CA_4"
    assert "wrote 500 events" in capsys.readouterr().out
