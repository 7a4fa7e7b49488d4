"""The fleet's model refresh in the twin: every ``every_days`` of a replay the centre trains a new
bundle on all the days before, and the store's gateway swaps it in.

A deployed fleet does not run one model for two months: the centre retrains on the sales the
stores send and the hub rolls the new bundle out. :class:`ModelRefresh` is the centre's side of
that in the twin: on day ``k x every_days`` of a replay it trains a bundle exactly as the
benchmark trains the first one (``training.train.train``, the same trees and features, no
backtest: the backtest does not change the fit) on :func:`centre_history`: the real history before
the replay, then the twin's own days as a store reports them, its sales with every day whose shelf
closed empty flagged ``stockout`` (the censored treatment training already gives its labels),
never the twin's hidden demand. ``twin.gateway_engine.GatewayPolicy`` swaps the bundle in as a
gateway does (``edge_runtime.decide.engine.DecisionEngine.model_for``).

Bundles are cached by a digest of what they were trained on, so a replay run twice trains once.

>>> ModelRefresh(None, every_days=28).due(28), ModelRefresh(None, every_days=28).due(14)
(True, False)
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from twin.store import DemandPanel


def centre_history(
    frame: pd.DataFrame,
    panel: DemandPanel,
    start: int,
    sold: np.ndarray,
    empty: np.ndarray,
) -> pd.DataFrame:
    """The canonical history the centre trains on at day ``start + sold.shape[1]`` of a replay.

    ``frame``'s rows before the replay's first day (``panel.dates[start]``), then one row per
    replayed SKU-day that sold or closed with an empty shelf (once the SKU has sold: a store
    reports the items it carries): ``units`` what the twin sold,
    ``stockout`` 1 where the shelf closed empty, the day's price from the history. ``sold`` and
    ``empty`` are (SKUs, replayed days) in panel order.

    >>> import pandas as pd
    >>> from twin.store import DemandPanel
    >>> f = pd.DataFrame({"store_id": "s", "sku": "a", "units": [3.0, 5.0],
    ...                   "date": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    >>> p = DemandPanel.from_frame(f)
    >>> h = centre_history(f, p, 1, np.array([[2.0]]), np.array([[True]]))
    >>> h[["units", "stockout"]].values.tolist()
    [[3.0, 0.0], [2.0, 1.0]]
    """
    import pandas as pd

    before = frame[frame["date"] < np.datetime64(panel.dates[start], "ns")].copy()
    before["stockout"] = 0.0
    days = sold.shape[1]
    # A SKU enters the reports with its first sale: before it the store does not carry it, so
    # an empty shelf then is no stock-out (the gateway has no series for it either).
    carried = (panel.units[:, :start] > 0).any(axis=1)[:, None] | (np.cumsum(sold, axis=1) > 0)
    keep = (sold > 0) | (empty & carried)
    sku_i, day_i = np.nonzero(keep)
    rows = {
        "store_id": before["store_id"].iloc[0] if len(before) else panel.store_id,
        "sku": panel.skus[sku_i].astype(str),
        "date": pd.to_datetime(panel.dates[start : start + days][day_i]),
        "units": sold[sku_i, day_i].astype(np.float64),
        "stockout": empty[sku_i, day_i].astype(np.float64),
    }
    if "price" in frame.columns and panel.price_daily is not None:
        rows["price"] = panel.price_daily[sku_i, start + day_i]
    out = pd.concat([before, pd.DataFrame(rows)], ignore_index=True)
    return out.sort_values(["store_id", "sku", "date"], kind="stable", ignore_index=True)


class ModelRefresh:
    """The centre's retraining every ``every_days`` of a replay (see the module docstring).

    ``frame`` is the canonical history the first bundle was trained on (rows before the replay
    are read, never after); ``cache`` the directory of the bundles trained (one per distinct
    training history). ``seconds`` lists each training's wall-clock time. ``keep_correction``
    False: the gateway starts River's correction afresh with each new bundle (a variant; a
    gateway keeps it, ``edge_runtime.decide.engine``).

    >>> ModelRefresh(None, every_days=14).due(0)
    False
    """

    def __init__(
        self,
        frame: pd.DataFrame | None,
        every_days: int,
        trees: int = 200,
        cache: str | Path = "var/bench/twin_refresh",
        keep_correction: bool = True,
    ):
        if every_days < 1:
            raise ValueError(f"every_days must be >= 1 (got {every_days})")
        self.frame, self.every_days, self.trees = frame, int(every_days), trees
        self.cache, self.keep_correction = Path(cache), keep_correction
        self.seconds: list[float] = []

    def due(self, day: int) -> bool:
        """Whether a new bundle is swapped in on the morning of replay day ``day`` (0: first)."""
        return day > 0 and day % self.every_days == 0

    def bundle(self, panel: DemandPanel, start: int, sold: np.ndarray, empty: np.ndarray) -> Path:
        """A bundle trained on :func:`centre_history` (cached by its digest)."""
        from training.train import TrainConfig, train

        history = centre_history(self.frame, panel, start, sold, empty)
        digest = hashlib.sha256(
            history.to_csv(index=False).encode() + f"{self.trees}".encode()
        ).hexdigest()[:16]
        out = self.cache / f"{panel.dates[start + sold.shape[1] - 1]}_{digest}"
        if (out / "manifest.json").exists():
            return out
        last = panel.dates[start + sold.shape[1] - 1]
        source = f"twin refresh: history to {last}, the replay's days as sold, {self.trees} trees"
        t0 = time.perf_counter()
        train(history, out, TrainConfig(folds=0, n_estimators=self.trees, baselines=False),
              source, track=False)  # fmt: skip
        self.seconds.append(round(time.perf_counter() - t0, 1))
        return out
