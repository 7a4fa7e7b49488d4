"""The SKUs one review of the forecast policy decides, in columns
(``edge_runtime.decide.forecast_policy``): those with a forecast (:class:`Rows`) and those
decided on ATP alone (:class:`Bare`).

>>> unit(float("nan")), unit(1.5), unit(0.25)
(1.0, 1.0, 0.25)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_runtime.decide.decisions import Cause
from edge_runtime.store.state_columns import StateColumns


@dataclass
class Rows:
    """The SKUs being decided, with their forecast over the lead time and the protection period."""

    states: StateColumns  # a full state built only for a SKU that gets a message
    causes: list[Cause | None]
    when: list[str]
    mean: np.ndarray  # daily, over the lead time
    p90: np.ndarray
    mean_protect: np.ndarray  # daily, over lead time + review period
    p90_protect: np.ndarray
    buffer: np.ndarray | None  # the marginal safety buffer per row, when the table has one


@dataclass
class Bare:
    """The SKUs without a forecast (decided on ATP alone), as columns: a SKU's full state is
    built only if it publishes (a day's close has hundreds of them and alerts few)."""

    states: StateColumns
    causes: list[Cause | None]
    when: list[str | None]

    def __len__(self) -> int:
        return len(self.states)


def unit(p: float) -> float:
    """A probability as published: NaN (a degenerate forecast) counts as certain."""
    p = float(p)
    return 1.0 if p != p else min(max(p, 0.0), 1.0)


def out_probability(bare: Bare) -> np.ndarray:
    """Without a forecast all that is known is whether ATP is zero: probability 1 or 0."""
    return (bare.states.available <= 0).astype(np.float64)
