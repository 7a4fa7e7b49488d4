"""The rule policy and the uplink inside the gateway (no broker): crossings, restarts, deltas."""

from __future__ import annotations

import gzip
import json

from edge_runtime.config import load_config
from edge_runtime.decide.decisions import RulePolicy
from edge_runtime.gateway import Gateway
from edge_runtime.store.stock import Conflict, SkuState, StockState


def state(sku, on_hand, reserved=0):
    return StockState.of(SkuState(sku, on_hand=on_hand, reserved=reserved, last_us=0), 0, 0)


def test_alerts_fire_on_crossings_only_and_round_to_packs():
    policy = RulePolicy("S1", reorder_point=4, order_up_to=20, pack_size=6)
    assert policy.decide([state("A", 10)], {}, []) == []
    (repl,) = policy.decide([state("A", 3)], {}, [])
    assert repl.kind == "replenishment" and repl.recommended_qty == 18  # 17 -> 3 packs of 6
    assert policy.decide([state("A", 2)], {}, []) == []  # still low: the order is open
    (out,) = policy.decide([state("A", 5, reserved=5)], {}, [])
    assert out.kind == "stockout" and out.reason_codes == ["ATP_ZERO"] and out.atp == 0
    assert policy.decide([state("A", 0)], {}, []) == []
    assert policy.decide([state("A", 30)], {}, []) == []  # receipt: episode closed
    assert [m.kind for m in policy.decide([state("A", 0)], {}, [])] == [
        "replenishment",
        "stockout",
    ]


def test_conflicts_become_conflict_messages():
    c = Conflict("A", "e9", "reservation_short", "o1", 3, 1, 2, 1, 0, 1_767_603_600_000_000)
    (msg,) = RulePolicy("S1").decide([], {}, [c])
    assert msg.kind == "conflict" and msg.loser_event_id == "e9"
    assert (msg.qty_requested, msg.qty_granted, msg.reason_codes) == (3, 1, ["RESERVATION_SHORT"])
    assert msg.evidence["shortfall"] == 2 and msg.event_time.year == 2026


def ev(i, sku, kind, qty):
    return {
        "event_id": f"e{i}",
        "store_id": "S1",
        "sku": sku,
        "type": kind,
        "qty": qty,
        "event_time": f"2026-01-05T10:00:{i:02d}+00:00",
        "source": "pos",
    }


def cfg(tmp_path):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path)}
    return load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})


def test_restart_neither_repeats_alerts_nor_loses_uplink_deltas(tmp_path):
    gw = Gateway(cfg(tmp_path))
    gw.ingest([ev(0, "A", "receipt", 3), ev(1, "A", "sale", 2)], "api")
    gw.ingest(ev(2, "A", "sale", 1), "api")  # replenishment, then stock-out
    (first,) = gw.uplink.flush()
    gw.ingest(ev(3, "B", "receipt", 9), "api")  # changed, not yet sent up when it stops
    kinds = [m["kind"] for m in gw.recent_messages()]
    gw.close()
    gw = Gateway(cfg(tmp_path))  # restart: levels and the uplink baseline come from the files
    gw.ingest(ev(4, "A", "receipt", 1), "api")  # A was out, now low: no new alert
    assert [m["kind"] for m in gw.recent_messages()] == kinds
    (second,) = gw.uplink.flush()
    rows = {r[0]: r for r in json.loads(gzip.decompress(second.payload))["deltas"]}
    assert rows["B"][1:] == [9, 0, 9, 9, 1]  # the delta from before the restart is not lost
    assert rows["A"][1] == 1 and rows["A"][5] == 1  # only what changed since the last uplink
    first_rows = json.loads(gzip.decompress(first.payload))
    assert first_rows["deltas"] == [["A", 0, 0, 0, 0, 3]]
    assert [x[1] for x in first_rows["exceptions"]] == ["replenishment", "stockout"]
    gw.close()


def test_bad_payloads_are_dead_lettered_not_lost(tmp_path):
    with Gateway(cfg(tmp_path)) as gw:
        result = gw.ingest(
            b'[{"event_id": "x"}, ' + json.dumps(ev(1, "A", "receipt", 2)).encode() + b"]"
        )
        assert (result.accepted, result.rejected) == (1, 1)
        assert gw.ledger.dead_letters()[0]["field"] == "store_id"
        assert gw.stock("A").on_hand == 2


class BrokenPolicy(RulePolicy):
    def decide(self, states, causes, conflicts):
        raise OverflowError("date value out of range")


def test_a_failing_policy_costs_alerts_never_events(tmp_path):
    with Gateway(cfg(tmp_path), policy=BrokenPolicy("S1")) as gw:
        result = gw.ingest([ev(0, "A", "receipt", 3), ev(1, "A", "sale", 3)], "api")
        assert result.accepted == 2 and gw.stock("A").on_hand == 0
        # Decided (and failed) once per state change: the receipt, then the sale.
        assert gw.counters["policy_errors"] == 2 and gw.recent_messages() == []
        assert gw.ledger.dead_letters() == []
