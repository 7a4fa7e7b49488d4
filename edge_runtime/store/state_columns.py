"""The SKU states one decision reviews, as columns: SKUs and available-to-promise read once.

A store day's close decides every SKU of the store (thousands), and a decision needs, for every
one of them, only its SKU and its available-to-promise (stock-out risk, order-up-to); the full
``StockState`` (confidence, times, counters) only goes into the few messages it publishes.
:class:`StateColumns` holds the two columns and builds a SKU's ``StockState`` when it is first
asked for. It is a ``Sequence[StockState]``: any policy may iterate it as the list of states.

>>> from edge_runtime.store.stock import SkuState
>>> cols = StateColumns.of_sku_states([SkuState("A", on_hand=5, reserved=2)], 1, [0])
>>> cols.skus, cols.available.tolist(), cols[0].available, cols[0].sku
(['A'], [2.0], 2, 'A')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

import numpy as np

from edge_runtime.store.stock import SkuState, StockState


class StateColumns(Sequence[StockState]):
    """``skus[i]``, ``available[i]`` (float64) and ``self[i]``, the ``StockState`` of SKU ``i``
    (built by ``make(i)`` on first use, then kept). See the module docstring.

    >>> from edge_runtime.store.stock import SkuState, StockState
    >>> built = []
    >>> def make(i):
    ...     built.append(i)
    ...     return StockState.of(SkuState(["A", "B"][i], on_hand=3), 0, 0)
    >>> cols = StateColumns(["A", "B"], np.array([3.0, 3.0]), make)
    >>> cols[1].sku, cols[1].on_hand, len(cols), built  # only B's state was built, once
    ('B', 3, 2, [1])
    """

    __slots__ = ("_built", "_make", "available", "skus")

    def __init__(self, skus: list[str], available: np.ndarray, make: Callable[[int], StockState]):
        self.skus = skus
        self.available = available
        self._make = make
        self._built: dict[int, StockState] = {}

    @classmethod
    def of_states(cls, states: Sequence[StockState]) -> StateColumns:
        """Columns over states already built (a list, or columns: returned as they are)."""
        if isinstance(states, StateColumns):
            return states
        states = list(states)
        available = np.fromiter((s.available for s in states), dtype=np.float64, count=len(states))
        return cls([s.sku for s in states], available, states.__getitem__)

    @classmethod
    def of_sku_states(
        cls, stored: Sequence[SkuState], safety_buffer: int, as_of_us: Sequence[int]
    ) -> StateColumns:
        """Columns over ledger states: ``self[i]`` is ``StockState.of(stored[i], safety_buffer,
        as_of_us[i])``, the very state a list of them would hold."""
        available = np.fromiter(
            (s.available(safety_buffer) for s in stored),
            dtype=np.float64,
            count=len(stored),
        )

        def make(i: int) -> StockState:
            return StockState.of(stored[i], safety_buffer, as_of_us[i])

        return cls([s.sku for s in stored], available, make)

    def take(self, index: Sequence[int]) -> StateColumns:
        """The columns of rows ``index`` (in that order), sharing the states built so far."""
        pick = list(index)
        return StateColumns(
            [self.skus[i] for i in pick], self.available[pick], lambda k: self[pick[k]]
        )

    def __len__(self) -> int:
        return len(self.skus)

    @overload
    def __getitem__(self, i: int) -> StockState: ...

    @overload
    def __getitem__(self, i: slice) -> list[StockState]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(len(self.skus))[i]]
        if i < 0:
            i += len(self.skus)
        if not 0 <= i < len(self.skus):
            raise IndexError(i)
        state = self._built.get(i)
        if state is None:
            state = self._built[i] = self._make(i)
        return state
