"""Training loss weights that make each series count in the fit as it counts in the backtest.

The demand model works in units of the series' scale (``DemandModel.normalize``), but its
accuracy is judged per series in units of the series' in-sample naive error (RMSSE, scaled
pinball). Without weights, a series whose scale is tiny and whose sales are lumpy (one wholesale
order of 8,000 units after months of near-zero days) contributes targets of thousands of scale
units and dominates the squared and Tweedie losses, while the metric counts it like any other
series. Weighting each row by ``scale^2 / naive MSE`` (mean model) and ``scale / naive MAE``
(quantile models) makes the loss of a series, in model units, the numerator of its metric. The
weights shape training only: nothing about them reaches the ONNX graph.

A label whose step was out of stock (``Panel.censored``: the shelf closed empty) weighs 0: its
sales are not its demand, and its estimated demand (``feature_store.censored_demand``) is an
estimate, not an observation. Such steps still feed the features as their estimated demand;
only the loss leaves them out.

>>> import numpy as np
>>> from feature_store.batch import Panel
>>> p = Panel(keys=[("S", "A"), ("S", "B")], start=np.datetime64("2024-01-01"),
...           units=np.array([[1.0, 3.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0]]))
>>> w = metric_weights(p, np.array([0, 0, 1]), np.array([1.0, 2.0, 1.0]), cutoff=3)
>>> w.mean.round(3).tolist(), w.quantile.round(3).tolist()  # series B cannot be scored: weight 0
([0.4, 1.6, 0.0], [0.667, 1.333, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from feature_store.batch import Panel
from models.demand import DemandModel
from training.engine import Engine
from training.metrics import Scales
from training.partitioned_training_rows import training_rows_on


@dataclass(frozen=True)
class MetricWeights:
    """Per-row weights for the mean model (``mean``) and the quantile models (``quantile``),
    each normalised to mean 1 over the rows that count; ``target``: each row's target step,
    when known (what ``DemandModel.fit`` holds the last steps out by to lift its P90)."""

    mean: np.ndarray
    quantile: np.ndarray
    target: np.ndarray | None = None


def _normalised(w: np.ndarray) -> np.ndarray:
    counted = w > 0
    return w / w[counted].mean() if counted.any() else np.ones_like(w)


def metric_weights(
    panel: Panel, series: np.ndarray, scale: np.ndarray, cutoff: int
) -> MetricWeights:
    """Weights of training rows of ``series`` whose model scale is ``scale``, the metric scales
    taken from each series' history up to ``cutoff`` (the training data, never the test days).
    A series with no naive error yet (no sale, or constant) cannot be scored: weight 0."""
    mse = np.zeros(len(panel.keys))
    mae = np.zeros(len(panel.keys))
    for s in np.unique(series):
        sc = Scales.of(panel.units[s, : cutoff + 1])
        mse[s], mae[s] = sc.mse, sc.mae
    scale = np.asarray(scale, dtype=np.float64)
    rows_mse, rows_mae = mse[series], mae[series]
    mean = np.where(rows_mse > 0, scale**2 / np.where(rows_mse > 0, rows_mse, 1.0), 0.0)
    quantile = np.where(rows_mae > 0, scale / np.where(rows_mae > 0, rows_mae, 1.0), 0.0)
    return MetricWeights(_normalised(mean), _normalised(quantile))


def weighted_training_rows(
    panel: Panel,
    close: np.ndarray,
    last_day: int,
    stride: int = 7,
    seed: int = 0,
    labelled: np.ndarray | None = None,
    engine: Engine | None = None,
    **rows,
) -> tuple[np.ndarray, np.ndarray, MetricWeights]:
    """Training matrix, labels and their metric weights from the days up to ``last_day``;
    ``rows``: :func:`~feature_store.batch.training_index`'s ``max_horizon`` and ``recent``.
    ``labelled`` (bool, series x days): a row whose target day is not labelled (a day too short
    of stock to know its demand) weighs 0, though that day still feeds the features; so does a
    row whose target step is censored (``panel.censored``).
    ``engine`` (:mod:`training.engine`) computes the rows per partition of whole series (the
    same rows on every engine); ``close`` is used in this process only."""
    X, y, series, target = training_rows_on(
        engine, panel, last_day, stride=stride, seed=seed, close=close, **rows
    )
    w = metric_weights(panel, series, DemandModel.scale(X), cutoff=last_day)
    w = replace(without_censored_labels(w, panel, series, target), target=target)
    if labelled is not None:
        w = _kept(w, np.asarray(labelled, bool)[series, target])
    return X, y, w


def without_censored_labels(
    w: MetricWeights, panel: Panel, series: np.ndarray, target: np.ndarray
) -> MetricWeights:
    """``w`` with the rows whose target step is censored (``panel.censored``) at 0, the rest
    normalised again.

    >>> p = Panel(keys=[("S", "A")], start=np.datetime64("2024-01-01"), units=np.ones((1, 3)),
    ...           censored=np.array([[False, True, False]]))
    >>> w = MetricWeights(np.ones(3), np.ones(3))
    >>> without_censored_labels(w, p, np.zeros(3, int), np.arange(3)).mean.tolist()
    [1.0, 0.0, 1.0]
    """
    if panel.censored is None:
        return w
    return _kept(w, ~panel.censored[series, target])


def _kept(w: MetricWeights, kept: np.ndarray) -> MetricWeights:
    return MetricWeights(_normalised(w.mean * kept), _normalised(w.quantile * kept), w.target)
