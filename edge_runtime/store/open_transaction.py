"""Stock as the open ledger transaction has written it, for decisions made before COMMIT (the
ledger's in-memory states are updated only after it).

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:")
>>> _ = conn.execute("CREATE TABLE stock (sku TEXT PRIMARY KEY, on_hand INTEGER)")
>>> _ = conn.executemany("INSERT INTO stock VALUES (?, ?)", [("A", 0), ("B", 3)])
>>> stored = {"A": SkuState("A", on_hand=0), "B": SkuState("B", on_hand=3)}
>>> sorted(empty_shelves(stored, {"A": SkuState("A", on_hand=2), "C": SkuState("C", on_hand=0)}))
['C']
>>> list(skus_in_order(conn))
['A', 'B']
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping

from edge_runtime.store.stock import SkuState, StockState
from feature_store.censored_demand import shelf_empty


def states_in_transaction(
    written: Mapping[str, SkuState], clock_us: int, safety_buffer: int
) -> list[StockState]:
    """What callers see of the SKU states the open transaction has written (``written``: the
    ledger's folded states, the stock table's new rows field for field; kept in memory, not
    read back)."""
    as_of = max([clock_us, *(s.last_us for s in written.values())])
    return [StockState.of(s, safety_buffer, as_of) for s in written.values()]


def empty_shelves(
    stored: Mapping[str, SkuState], current: Mapping[str, SkuState | None]
) -> set[str]:
    """SKUs whose shelf is empty at this point of a batch: a closing day's censored SKUs
    (``feature_store.censored_demand``). ``current``: the states the batch has reached, for
    every SKU it touches; ``stored``: the ledger's folded states (``Ledger.folded_states``),
    as committed for every other SKU.

    Why from memory, not the stock table: the table holds the same states, and reading it
    whole at every close cost more than the loop over them."""
    empty = {sku for sku, s in stored.items() if s.on_hand == 0 and sku not in current}
    empty.update(sku for sku, s in current.items() if s is not None and shelf_empty(s.on_hand))
    return empty


def skus_in_order(conn: sqlite3.Connection) -> Iterator[str]:
    """Every SKU in the stock table's order: the order its SKUs were first stored in (rows are
    updated in place and keep their rowid), so a close decides in a stable order."""
    for (sku,) in conn.execute("SELECT sku FROM stock ORDER BY rowid"):
        yield sku
