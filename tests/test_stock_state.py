"""``StockState.of``: the very object the dataclass would build, frozen, whatever its speed."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from edge_runtime.store.confidence import confidence
from edge_runtime.store.stock import SkuState, StockState, iso_utc


def test_of_builds_what_the_dataclass_builds_and_it_stays_frozen():
    s = SkuState("A", on_hand=9, reserved=2, last_count_us=5_000_000, first_us=1_000_000,
                 discrepancy=0.2, last_us=9_000_000, shrink=1, gain=2, sold=3, received=4,
                 damaged=5, events=6)  # fmt: skip
    made = StockState.of(s, safety_buffer=3, as_of_us=86_400_000_000)
    expected = StockState(
        "A", 9, 2, 3, 4, confidence(5_000_000, 1_000_000, 0.2, 86_400_000_000),
        iso_utc(5_000_000), iso_utc(9_000_000), 1, 2, 3, 4, 5, 6,
    )  # fmt: skip
    assert type(made) is StockState and made == expected and hash(made) == hash(expected)
    assert dataclasses.asdict(made) == dataclasses.asdict(expected)
    assert pickle.loads(pickle.dumps(made)) == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.on_hand = 0
    never_sold = StockState.of(SkuState("B", on_hand=-2), safety_buffer=1, as_of_us=0)
    assert never_sold.available == 0 and never_sold.last_event_time is None
