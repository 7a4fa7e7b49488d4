"""Plausibility bounds on a real ledger and gateway: each implausible event is dead-lettered with
the bound it broke and the setting that states it; what a live store or a replay of old data
legitimately sends still passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge_runtime.config import ConfigError, load_config
from edge_runtime.gateway import Gateway
from edge_runtime.store.ledger import Ledger
from tests.fuzz_messages import ANCIENT

STORE = "S1"
CLOCK = datetime(2011, 6, 1, 18, 0, tzinfo=UTC)  # a replay of old data
_seq = iter(range(10**9))


def ev(when: datetime | str, kind: str = "sale", qty=1, sku: str = "A") -> dict:
    return {"event_id": f"p{next(_seq)}", "store_id": STORE, "sku": sku, "type": kind,
            "qty": qty, "event_time": when if isinstance(when, str) else when.isoformat(),
            "source": "pos"}  # fmt: skip


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite", STORE)
    yield led
    led.close()


@pytest.fixture
def replayed(ledger):
    """A ledger whose clock is CLOCK: three days of old receipts."""
    days = [CLOCK - timedelta(days=d) for d in (2, 1, 0)]
    assert ledger.ingest_raw([ev(d, "receipt", 100) for d in days]).accepted == 3
    return ledger


def refused(ledger: Ledger, event: dict) -> str:
    """The reason the ledger dead-lettered ``event`` (and that it stored nothing)."""
    events = ledger.event_count()
    result = ledger.ingest_raw([event])
    assert result.accepted == 0 and result.rejected == 1, result
    assert ledger.event_count() == events
    dead = ledger.dead_letters(1)[0]
    assert dead["reason"] == result.rejections[0].reason and dead["batch_index"] == 0
    return dead["field"] + ": " + dead["reason"]


def accepted(ledger: Ledger, event: dict) -> bool:
    return ledger.ingest_raw([event]).accepted == 1


@pytest.mark.parametrize("when", ANCIENT)
def test_times_of_a_reset_clock_are_refused(replayed, when):
    reason = refused(replayed, ev(when))
    assert reason.startswith("event_time: ") and "[ingest] earliest_event_time" in reason


def test_an_empty_ledger_judges_only_the_absolute_bounds(ledger):
    assert "earliest_event_time" in refused(ledger, ev("1970-01-01T00:00:00Z"))
    assert accepted(ledger, ev(CLOCK))  # no clock yet: an old replay starts


def test_a_sale_a_year_ahead_of_a_replay_is_refused(replayed):
    reason = refused(replayed, ev(CLOCK + timedelta(days=365)))
    assert "[ingest] max_jump_days" in reason and "2011-06-01" in reason
    assert accepted(replayed, ev(CLOCK + timedelta(days=12)))  # a Christmas closure passes
    # Years after the ledger's last event, but now: a store whose gateway was off passes.
    assert accepted(replayed, ev(datetime.now(UTC) - timedelta(minutes=5)))


def test_events_far_behind_the_ledger_clock_are_refused(replayed):
    assert "[ingest] max_late_days" in refused(replayed, ev(CLOCK - timedelta(days=200)))
    assert accepted(replayed, ev(CLOCK - timedelta(days=30)))  # a late till, still plausible


def test_the_wall_clock_bounds_the_future(ledger):
    now = datetime.now(UTC)
    assert "[ingest] max_ahead_s" in refused(ledger, ev(now + timedelta(hours=2)))
    assert accepted(ledger, ev(now + timedelta(minutes=10)))  # till clock skew


def test_absurd_quantities_are_refused(replayed):
    reason = refused(replayed, ev(CLOCK, "adjustment", -1_000_000))
    assert reason.startswith("qty: ") and "[ingest] max_qty" in reason
    assert "max_qty" in refused(replayed, ev(CLOCK, "receipt", 100_001))
    assert accepted(replayed, ev(CLOCK, "receipt", 74_215))  # Online Retail II's largest line
    assert accepted(replayed, ev(CLOCK, "shelf_weight", 150_000.0))  # grams: no stock bound


def test_bounds_come_from_the_configuration(tmp_path):
    env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(tmp_path),
           "SHELFCAST_MQTT_ENABLED": "false", "SHELFCAST_INGEST_MAX_QTY": "10",
           "SHELFCAST_INGEST_EARLIEST_EVENT_TIME": "2011-01-01T00:00:00+00:00"}  # fmt: skip
    with Gateway(load_config(env=env)) as gw:
        result = gw.ingest([ev(CLOCK, "receipt", 10), ev(CLOCK, "receipt", 11),
                            ev("2010-12-31T23:00:00Z")])  # fmt: skip
        assert (result.accepted, result.rejected) == (1, 2)
        assert [r.index for r in result.rejections] == [1, 2]
        assert "10 units" in result.rejections[0].reason


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("EARLIEST_EVENT_TIME", "yesterday", "ISO-8601"),
        ("MAX_JUMP_DAYS", "0", "positive"),
        ("MAX_LATE_DAYS", "inf", "positive finite"),
        ("MAX_QTY", "0", "1 or more"),
        ("MAX_AHEAD_S", "soon", "not a valid float"),
    ],
)
def test_bad_bounds_stop_the_gateway_at_start(key, value, words):
    with pytest.raises(ConfigError) as err:
        load_config(env={"SHELFCAST_STORE_ID": STORE, f"SHELFCAST_INGEST_{key}": value})
    assert f"ingest.{key.lower()}" in str(err.value) and words in str(err.value)


def test_a_year_ahead_sale_closes_no_store_day(tmp_path):
    """The symptom: one sale dated a year ahead closed ~385 store days of zero sales at once."""
    env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(tmp_path),
           "SHELFCAST_MQTT_ENABLED": "false"}  # fmt: skip
    with Gateway(load_config(env=env)) as gw:
        days = [CLOCK - timedelta(days=d) for d in range(10, -1, -1)]
        gw.ingest([ev(d, "receipt", 100) for d in days] + [ev(d) for d in days], "seed")
        open_day, closed = gw.sales.open_day, gw.sales.last_closed
        result = gw.ingest(ev(CLOCK + timedelta(days=365)), "pos")
        assert result.rejected == 1 and "max_jump_days" in result.rejections[0].reason
        assert (gw.sales.open_day, gw.sales.last_closed) == (open_day, closed)
        assert gw.ledger.clock_us == int(CLOCK.timestamp() * 1e6)


@pytest.mark.parametrize(
    "module",
    ["edge_runtime.store.plausibility", "edge_runtime.store.events", "edge_runtime.store.ledger"],
)
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
