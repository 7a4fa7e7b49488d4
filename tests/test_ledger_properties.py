"""Property tests: the ledger's final state depends only on the set of events.

The ledger folds each SKU in event-time order, so for *every* event type arrival order and
duplication do not matter; these tests check that on a real SQLite file for random streams,
random interleavings, random duplications and random batch boundaries, and that rebuilding
from the log gives exactly the stored state.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_runtime.store.events import LEDGER_TYPES
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.stock import fold

STORE = "S1"
# Every ledger type, plus one sensor reading (which must never change stock).
KINDS = [*sorted(LEDGER_TYPES), "shelf_units"]


@st.composite
def streams(draw):
    n = draw(st.integers(1, 40))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        if kind == "adjustment":
            qty = draw(st.sampled_from([-3, -1, 1, 2]))
        elif kind in ("cycle_count", "shelf_units"):
            qty = draw(st.integers(0, 8))
        else:
            qty = draw(st.integers(1, 5))
        d = {
            "event_id": f"e{i:03d}",
            "store_id": STORE,
            "sku": draw(st.sampled_from(["A", "B", "C"])),
            "type": kind,
            "qty": qty,
            # few distinct minutes, so equal event times (ties) are common
            "event_time": f"2026-01-05T10:{draw(st.integers(0, 9)):02d}:00+00:00",
            "source": "pos",
        }
        if kind in ("reservation", "reservation_release", "fulfilment"):
            d["order_id"] = f"o{i}"
        out.append(d)
    return out


@st.composite
def arrivals(draw):
    """A stream, then the same events permuted, with duplicates, cut into random batches."""
    events = draw(streams())
    extra = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    shuffled = draw(st.permutations(events + extra))
    cuts = sorted(draw(st.lists(st.integers(0, len(shuffled)), max_size=6)))
    bounds = [0, *cuts, len(shuffled)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    return events, batches


def reference(events, buffer=0):
    by_sku: dict[str, list] = {}
    for d in events:
        if d["type"] == "shelf_units":
            continue
        ts = int(d["event_time"][14:16])
        by_sku.setdefault(d["sku"], []).append(
            (d["type"], d["qty"], ts, d["event_id"], d.get("order_id"))
        )
    return {sku: fold(sku, rows, buffer)[0] for sku, rows in by_sku.items()}


def observable(state):
    return (state.on_hand, state.reserved, state.sold, state.shrink, state.gain, state.events)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(arrivals(), st.integers(0, 2))
def test_any_interleaving_and_duplication_gives_the_same_state(case, buffer):
    events, batches = case
    with (
        tempfile.TemporaryDirectory() as tmp,
        Ledger(Path(tmp) / "l.sqlite", STORE, safety_buffer=buffer) as led,
    ):
        for batch in batches:
            led.ingest_raw(batch)
        assert led.event_count() == len(events)
        assert led.verify() == []
        got = {sku: observable(s) for sku, s in led.stored_states().items()}
    want = {sku: observable(s) for sku, s in reference(events, buffer).items()}
    assert got == want


@SETTINGS
@given(arrivals())
def test_reopen_after_every_batch_equals_one_pass(case):
    events, batches = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "l.sqlite"
        for batch in batches:
            with Ledger(path, STORE) as led:
                led.ingest_raw(batch)
        with Ledger(path, STORE) as led:
            assert led.verify() == []
            stored = led.stored_states()
        with Ledger(Path(tmp) / "one.sqlite", STORE) as one:
            one.ingest_raw(events)
            assert one.stored_states() == stored


@SETTINGS
@given(streams())
def test_available_is_never_negative_and_reserved_never_exceeds_stock(events):
    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "l.sqlite", STORE) as led:
        for d in events:  # one at a time: every intermediate state is checked
            led.ingest_raw(d)
            for s in led.stocks(limit=10):
                assert s.available >= 0
                assert 0 <= s.reserved <= max(s.on_hand, 0)
