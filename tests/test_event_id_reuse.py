"""An event_id reused with different content is dead-lettered with what differs, never ignored;
an identical duplicate stays a silent, idempotent no-op. On a real SQLite ledger, in one batch,
across batches, after a reopen (the original is found in the log, not in memory) and far back
in a long log."""

from __future__ import annotations

import pytest

from edge_runtime.store.event_id_reuse import REUSED
from edge_runtime.store.ledger import Ledger

STORE = "S1"


def ev(event_id: str, **change) -> dict:
    return {"event_id": event_id, "store_id": STORE, "sku": "A", "type": "receipt", "qty": 5,
            "event_time": "2026-01-05T08:00:00+00:00", "source": "wms", **change}  # fmt: skip


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite", STORE)
    yield led
    led.close()


def test_identical_duplicates_stay_silent_beside_a_reused_id(ledger):
    ledger.ingest_raw([ev("e1")])
    # The same instant written another way is the same content.
    again = ledger.ingest_raw(
        [ev("e1"), ev("e1", event_time="2026-01-05T09:00:00+01:00"), ev("e1", qty=7)]
    )
    assert (again.accepted, again.duplicates, again.rejected) == (0, 2, 1)
    assert [d["batch_index"] for d in ledger.dead_letters()] == [2]  # only the reused one
    assert ledger.stock("A").on_hand == 5


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"qty": 7}, "qty", "qty 7 (stored: 5)"),
        ({"sku": "B"}, "sku", "sku 'B' (stored: 'A')"),
        ({"type": "sale"}, "type", "type 'sale' (stored: 'receipt')"),
        ({"event_time": "2026-01-05T08:01:00Z"}, "event_time", "2026-01-05T08:01:00"),
        ({"reason": "recount"}, "reason", "reason 'recount' (stored: None)"),
        ({"source": "pos"}, "source", "source 'pos'"),
    ],
)
def test_a_reused_id_is_dead_lettered_with_what_differs(ledger, change, field, words):
    ledger.ingest_raw([ev("e1")])
    result = ledger.ingest_raw([ev("x"), ev("e1", **change)])
    assert (result.accepted, result.duplicates, result.rejected) == (1, 0, 1)
    rejection = result.rejections[0]
    assert rejection.reason.startswith(REUSED) and words in rejection.reason
    assert (rejection.field, rejection.index) == (field, 1)
    dead = ledger.dead_letters(1)[0]
    assert (dead["field"], dead["reason"], dead["batch_index"]) == (field, rejection.reason, 1)
    assert ledger.stock("A").on_hand == 10 and ledger.event_count() == 2  # the original stands


def test_a_reused_id_within_one_batch(ledger):
    result = ledger.ingest_raw([ev("e1"), ev("e1"), ev("e1", qty=9)])
    assert (result.accepted, result.duplicates, result.rejected) == (1, 1, 1)
    assert result.rejections[0].index == 2 and "qty 9 (stored: 5)" in result.rejections[0].reason


def test_the_original_is_found_in_the_log_after_a_reopen_and_far_back(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, STORE) as ledger:
        ledger.ingest_raw([ev(f"e{i}", sku=f"S{i % 97}") for i in range(20_000)])
    with Ledger(path, STORE) as ledger:  # nothing of the first run in memory but the ids
        batch = [ev("e3", sku="S3"), ev("e19999", sku=f"S{19999 % 97}"), ev("e4", sku="S4", qty=6),
                 ev("e19998", sku="elsewhere")]  # fmt: skip
        result = ledger.ingest_raw(batch)
        assert (result.duplicates, result.rejected) == (2, 2)
        assert sorted(r.index for r in result.rejections) == [2, 3]
        assert len(ledger.dead_letters()) == 2 and ledger.verify() == []
