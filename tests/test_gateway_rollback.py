"""A batch whose transaction rolls back (the disk failed at COMMIT) leaves no trace in the
gateway's memory: when the broker redelivers it, its alerts go out as if the failure had never
happened (they were rolled back with the outbox), and River learns its day once. Each test runs
the same events through a gateway whose first attempt fails and through a clean one, on real
SQLite files and real ONNX Runtime sessions."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from edge_runtime.gateway import Gateway
from edge_runtime.store.store_failure import StoreError
from tests.test_gateway_model import config, daily_sales, demand_bundle, ev


def fail_next_commit(gw: Gateway) -> None:
    """The next ingest stages everything (decisions, alerts, watches), then COMMIT fails."""
    real = gw.ledger.ingest_parsed

    def once(events, rejections, source=None, before_commit=None):
        gw.ledger.ingest_parsed = real

        def staged_then_fail(conn, result):
            before_commit(conn, result)
            raise sqlite3.OperationalError("disk I/O error")

        return real(events, rejections, source, before_commit=staged_then_fail)

    gw.ledger.ingest_parsed = once


def alerts(gw: Gateway) -> list[tuple]:
    """What went out, without the ids and clocks that differ between two gateways."""
    return sorted(
        (m["kind"], m["sku"], m.get("cause_event_id"), m.get("recommended_qty"), m.get("units"))
        for m in gw.recent_messages()
        if m["kind"] != "state"
    )


def fail_next_rebuild(gw: Gateway) -> None:
    """The rebuild after the rollback fails part-way, before the policy is rebuilt (the disk
    still failing)."""
    watch = gw.shelf_watch
    real = watch.fresh

    def once():
        watch.fresh = real
        raise sqlite3.OperationalError("disk I/O error")

    watch.fresh = once


def replay(root, bundle, batches, fail_at: int | None, rebuild_fails: bool = False):
    """Ingest ``batches`` in order; the batch at ``fail_at`` fails once and is redelivered."""
    gw = Gateway(config(root, bundle))
    for i, batch in enumerate(batches):
        if i == fail_at:
            before = gw.outbox_depth()
            fail_next_commit(gw)
            if rebuild_fails:
                fail_next_rebuild(gw)
            with pytest.raises(sqlite3.OperationalError):
                gw.ingest(batch, "pos")
            assert gw.outbox_depth() == before  # its alerts rolled back with it
        gw.ingest(batch, "pos")
    return gw


@pytest.mark.parametrize("rebuild_fails", [False, True])
def test_alerts_of_a_rolled_back_batch_go_out_when_it_is_redelivered(tmp_path, rebuild_fails):
    """Without the rebuild, the redelivered batch met A's order already open and C's count
    already booked: no replenishment trigger, no shrink alert. When the rebuild itself fails
    (the disk still failing), it runs again before the redelivered batch is decided."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    seed = [ev("r-A", "A", "receipt", 100, 1), ev("r-C", "C", "receipt", 40, 1)]
    seed += daily_sales("A", 4, range(1, 9)) + daily_sales("C", 1, range(1, 9))
    batch = [ev("big", "A", "sale", 60, 8, 12), ev("count-C", "C", "cycle_count", 12, 8, 20)]
    clean = replay(tmp_path / "clean", bundle, [seed, batch], fail_at=None)
    failed = replay(
        tmp_path / "failed", bundle, [seed, batch], fail_at=1, rebuild_fails=rebuild_fails
    )
    with clean, failed:
        assert [a[:3] for a in alerts(failed) if a[2] in ("big", "count-C")] == [
            ("anomaly", "C", "count-C"),
            ("replenishment", "A", "big"),
        ]
        assert alerts(failed) == alerts(clean)
        assert failed.stock("A").on_hand == clean.stock("A").on_hand == 100 - 32 - 60


def test_a_rolled_back_day_close_is_learnt_once(tmp_path):
    """Day 12's first sale closes day 11: River learns day 11 inside the transaction and the
    forecasts are re-scored. After the rollback and the redelivery, River and the forecasts are
    those of a gateway that never failed (without River put back, day 11 is learnt twice)."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    seed = [ev("r-A", "A", "receipt", 500, 1), ev("r-B", "B", "receipt", 500, 1)]
    seed += daily_sales("A", 4, range(1, 8)) + daily_sales("B", 9, range(1, 8))
    seed += [
        ev("A8", "A", "sale", 10, 8),
        ev("B8", "B", "sale", 3, 8),
    ]  # sales vary: a day learnt twice shows
    # Then a day at a time, A selling more and B less than before, past River's warm-up.
    days = [daily_sales("A", 12, [d], f"A{d}") + daily_sales("B", 1, [d], f"B{d}")
            for d in range(9, 22)]  # fmt: skip
    clean = replay(tmp_path / "clean", bundle, [seed, *days], fail_at=None)
    failed = replay(tmp_path / "failed", bundle, [seed, *days], fail_at=4)  # closes day 11
    with clean, failed:
        assert failed.counters["day_closes"] >= clean.counters["day_closes"]
        a, b = clean.forecasts, failed.forecasts
        assert a.skus == b.skus and a.first_close == b.first_close
        np.testing.assert_allclose(b.mean, a.mean, rtol=0, atol=1e-12)
        shift = [failed.model.correction.predict_one(s, 1.0) - 1.0 for s in ("A", "B")]
        assert shift != [0.0, 0.0]  # River did learn something to compare
        assert shift == [clean.model.correction.predict_one(s, 1.0) - 1.0 for s in ("A", "B")]
        assert list(failed.sales.series["A"].units) == list(clean.sales.series["A"].units)


def test_a_rebuild_the_disk_still_refuses_makes_the_next_batch_wait(tmp_path):
    """The rebuild after a rollback reads the ledger; when that read fails too, the next batch
    must fail as the store's error (held, retried, 503), not as its own: before, the raw
    sqlite3 error sent the batch down the poison path, dead-lettered."""
    with Gateway(config(tmp_path)) as gw:
        gw.ingest([ev("r-A", "A", "receipt", 10, 1)], "wms")
        fail_next_commit(gw)
        watch = gw.shelf_watch
        real = watch.fresh

        def still_failing():
            raise sqlite3.OperationalError("disk I/O error")

        watch.fresh = still_failing
        with pytest.raises(StoreError):
            gw.ingest([ev("s1", "A", "sale", 1, 2)], "pos")
        with pytest.raises(StoreError):  # the pending rebuild fails again: the batch waits
            gw.ingest([ev("s1", "A", "sale", 1, 2)], "pos")
        watch.fresh = real
        assert gw.ingest([ev("s1", "A", "sale", 1, 2)], "pos").accepted == 1
        assert gw.stock("A").on_hand == 9 and gw.ledger.dead_letters() == []
