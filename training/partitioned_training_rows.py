"""The demand model's training rows computed per partition of whole series, on any engine.

Building the training matrix is the heavy part of preparing a fit: every close-day feature of
every series and day, then a row per (series, close day, horizon). Each series' rows need only
that series' days, so the rows are computed partition by partition (:mod:`training.engine`), each
task sent its own series and nothing else, and concatenated in series order. The close days'
random phases are drawn once for the whole panel (:func:`feature_store.batch.training_phases`),
so every engine gives the very rows a single process gives, byte for byte. The fit on them
(one LightGBM over all series) stays one process.

>>> from feature_store.batch import Panel
>>> p = Panel(keys=[("S", "A"), ("S", "B")], start=np.datetime64("2024-01-01"),
...           units=np.arange(80.0).reshape(2, 40))
>>> X, y, series, target = training_rows_on(LocalEngine(), p, last_day=39)
>>> X.shape[0] == len(y) == len(series), sorted(set(series.tolist())), int(target.max())
(True, [0, 1], 39)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feature_store.batch import (
    MAX_HORIZON,
    Panel,
    close_features,
    feature_rows,
    raise_no_training_rows,
    training_index,
    training_phases,
)
from training.engine import Engine, LocalEngine, panel_series, partitions_for

MIN_AGE = 7  # a series' first close day: its 7th day (training_index's default)


@dataclass(frozen=True)
class RowsTask:
    """What one partition's task gets: its own series' panel, where they start in the whole
    panel, their phases, and the row rules."""

    panel: Panel
    first_series: int
    phases: np.ndarray
    last_day: int
    stride: int
    max_horizon: int
    recent: int | None


def partition_rows(task: RowsTask) -> tuple[np.ndarray, ...]:
    """``(X, y, series, target day)`` of one partition, ``series`` indexing the whole panel."""
    return _rows(task, close_features(task.panel))


def _rows(task: RowsTask, close: np.ndarray) -> tuple[np.ndarray, ...]:
    panel = task.panel
    series, day, horizon = training_index(
        panel,
        task.last_day,
        stride=task.stride,
        min_age=MIN_AGE,
        max_horizon=task.max_horizon,
        recent=task.recent,
        phases=task.phases,
    )
    X = feature_rows(panel, close, series, day, horizon)
    y = np.nan_to_num(panel.units[series, day + horizon], nan=0.0)
    return X, y, series + task.first_series, day + horizon


def training_rows_on(
    engine: Engine | None,
    panel: Panel,
    last_day: int,
    stride: int = 7,
    seed: int = 0,
    max_horizon: int = MAX_HORIZON,
    recent: int | None = None,
    close: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training matrix, labels, each row's series index and target day from the days up to ``last_day``,
    computed on ``engine``: in this process for ``None`` or a local engine (reusing ``close``,
    the panel's close features, when the caller has them), else a task per partition."""
    parts = partitions_for(engine, len(panel.keys))
    phases = training_phases(len(panel.keys), stride, seed)
    rules = dict(last_day=int(last_day), stride=stride, max_horizon=max_horizon, recent=recent)
    if engine is None or isinstance(engine, LocalEngine):
        whole = RowsTask(panel, 0, phases, **rules)
        results = [_rows(whole, close_features(panel) if close is None else close)]
    else:
        # Each task is sent its own series only; results come back in partition order.
        tasks = [RowsTask(panel_series(panel, p), int(p[0]), phases[p], **rules) for p in parts]
        results = engine.map(partition_rows, tasks)
    X, y, series, target = (np.concatenate([r[i] for r in results]) for i in range(4))
    if not len(series):
        raise_no_training_rows(MIN_AGE, last_day)
    return X, y, series, target
