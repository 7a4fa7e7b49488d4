"""The ledger's idempotency index: set semantics at a fraction of a set's memory."""

from __future__ import annotations

import tracemalloc
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.store.event_ids import EventIds
from edge_runtime.store.ledger import Ledger

IDS = st.text(min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(st.lists(IDS, max_size=8), max_size=12),
    probes=st.lists(IDS, max_size=20),
    compact_every=st.integers(1, 6),
)
def test_behaves_as_a_set_across_compactions(batches, probes, compact_every):
    ids, want = EventIds(compact_every=compact_every), set()
    for batch in batches:
        assert ids.unknown(batch) == [i for i in batch if i not in want]
        ids.update(batch)
        want.update(batch)
    assert len(ids) == len(want)
    for p in probes + [i for b in batches for i in b]:
        assert (p in ids) == (p in want)


def test_load_folds_a_whole_log_in_chunks():
    ids = EventIds()
    ids.load((f"e{i}" for i in range(1000)), chunk=64)
    assert len(ids) == 1000 and ids.unknown(["e5", "e999", "e1000"]) == ["e1000"]


def test_uuid_ids_take_an_eighth_of_a_set_of_strings():
    made = [uuid.uuid4() for _ in range(200_000)]
    tracemalloc.start()
    as_set = {str(u) for u in made}  # the strings and the table, as the ledger held them
    set_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    ids = EventIds()
    ids.load(as_set)
    assert ids.nbytes == 16 * len(made) and len(ids) == len(made)
    assert ids.nbytes < set_bytes / 6  # measured: 16 against ~127 bytes an id


def test_ledger_refuses_duplicates_of_folded_ids_after_reopening(tmp_path):
    path = tmp_path / "ledger.sqlite"

    def sale(i: int) -> dict:
        return {"event_id": f"s{i}", "store_id": "S1", "sku": "A", "type": "sale", "qty": 1,
                "event_time": f"2026-01-05T08:{i // 60:02d}:{i % 60:02d}+00:00", "source": "pos"}  # fmt: skip

    ledger = Ledger(path, store_id="S1")
    ledger._ids.compact_every = 10  # fold often: most ids below are digests, not strings
    ledger.ingest_raw([sale(i) for i in range(25)])
    assert ledger.ingest_raw([sale(3), sale(24), sale(25)]).duplicates == 2
    ledger.close()
    reopened = Ledger(path, store_id="S1")
    result = reopened.ingest_raw([sale(0), sale(25), sale(26)])
    assert (result.accepted, result.duplicates) == (1, 2)
    assert reopened.stock("A").on_hand == -27 and reopened.verify() == []
    reopened.close()


def test_digests_sharing_a_high_word_are_told_apart_by_the_low_word():
    import numpy as np

    ids = EventIds()
    # Three folded digests, two with the same high word (a 2^-64 event, forced here).
    ids._hi = np.array([5, 7, 7, 9], dtype=np.uint64)
    ids._lo = np.array([1, 2, 3, 4], dtype=np.uint64)
    hi = np.array([7, 7, 7, 8], dtype=np.uint64)
    lo = np.array([2, 3, 4, 2], dtype=np.uint64)
    assert ids._in_folded(hi, lo).tolist() == [True, True, False, False]
