"""Shrink alerts from counts and write-offs are the same whatever the batch boundaries: their
evidence (units expected and counted) is the SKU's stock at the count or write-off itself, not
at the end of the batch it came in. Real gateways on real SQLite files."""

from __future__ import annotations

from itertools import pairwise

from edge_runtime.gateway import Gateway
from tests.test_gateway_model import config, ev


def shrink_alerts(gw: Gateway) -> list[dict]:
    """The anomaly alerts as a consumer receives them, without the fields a clock sets."""
    out = []
    for m in gw.recent_messages("anomaly", limit=1000):
        out.append({k: v for k, v in m.items() if k not in ("created_at", "confidence")})
    return sorted(out, key=lambda m: m["message_id"])


def test_count_and_write_off_alerts_do_not_depend_on_where_batches_end(tmp_path):
    """A write-off of 12 followed by sales, then two counts of B that each find units missing,
    with a sale between them. In one batch the write-off's evidence must not read the stock
    after the sales, nor the second count of B swallow the first."""
    events = [
        ev("r-A", "A", "receipt", 60, 5, 8),
        ev("r-B", "B", "receipt", 60, 5, 8),
        ev("w-A", "A", "adjustment", -12, 5, 9),
        ev("s-A1", "A", "sale", 3, 5, 10),
        ev("s-A2", "A", "sale", 4, 5, 11),
        ev("c-B1", "B", "cycle_count", 40, 5, 12),
        ev("s-B", "B", "sale", 2, 5, 13),
        ev("c-B2", "B", "cycle_count", 20, 5, 14),
        ev("s-B2", "B", "sale", 1, 5, 15),
    ]
    found = []
    for name, cuts in (("one", [0, len(events)]), ("split", [0, 3, 6, 8, len(events)])):
        with Gateway(config(tmp_path / name)) as gw:
            for start, end in pairwise(cuts):
                gw.ingest(events[start:end], "pos")
            found.append(shrink_alerts(gw))
    one, split = found
    evidence = {m["cause_event_id"]: m["evidence"] for m in split}
    assert {c: (e["expected"], e["counted"]) for c, e in evidence.items()} == {
        "w-A": (60, 48),  # the stock at the write-off, not after the sales that follow it
        "c-B1": (60, 40),  # c-B2 finds 18 missing: close to what c-B1 taught, no alert
    }
    assert one == split
