"""The demand model's LightGBM fits on a Dask cluster (``lightgbm.dask``), data-parallel.

One global model learns across every series, so its fit cannot be cut by series as the feature
rows and baselines are (:mod:`training.engine`); LightGBM's own distributed learner instead
gives each worker a share of the rows, builds its histograms there and merges them across
workers for every split. This is for training matrices that outgrow one process's memory or
time. It is asked for (``shelfcast train --engine dask --fit-on-cluster``), never implied by the
engine: the trees it grows differ slightly from a single process's (each worker bins its own
rows and draws its own bagging sample), so the bundle's metrics then agree with a single
process's to a statistical tolerance (a few per cent), not to the float tolerance of every other
step on the engine.

>>> DaskFit.__name__  # a real 2-worker cluster fits in tests/test_engine.py
'DaskFit'
"""

from __future__ import annotations

import warnings

import numpy as np


class DaskFit:
    """Fits one LightGBM estimator on the workers of a Dask ``client``: the rows are cut into
    one contiguous block per worker and each block is sent to its own worker, so every worker
    learns (LightGBM's data-parallel tree learner); returns the fitted booster, which then
    lives in this process like a local fit's (ONNX export, predictions)."""

    def __init__(self, client) -> None:
        self.client = client

    def __call__(self, estimator, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None):
        from lightgbm.dask import DaskLGBMRegressor

        workers = sorted(self.client.scheduler_info()["workers"])
        blocks = [b for b in np.array_split(np.arange(len(y)), len(workers)) if len(b)]
        held: list = []  # the scattered futures, referenced until the fit is done
        spread = [self._on_workers(a, blocks, workers, held) for a in (X, y, weight)]
        # lightgbm.dask gives each worker as many threads as Dask gives it (one on a local
        # cluster), whatever the estimator says.
        params = {k: v for k, v in estimator.get_params().items() if k != "n_jobs"}
        model = DaskLGBMRegressor(client=self.client, **params)
        with warnings.catch_warnings():
            # It warns of the n_jobs it always sets itself, whatever the caller gave.
            warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
            model.fit(spread[0], spread[1], sample_weight=spread[2])
        return model.booster_

    def _on_workers(
        self, a: np.ndarray | None, blocks: list[np.ndarray], workers: list[str], held: list
    ):
        """``a``'s rows as a Dask array whose ``i``-th block is held by the ``i``-th worker.

        Each block gets a key of its own (``hash=False``): with content-hashed keys, the next
        estimator's fit on the same rows scatters under the same key while the last fit's
        futures are being released, and the scheduler may drop the data the new fit needs
        ("lost dependencies"). ``held`` keeps the futures alive for the fit's length."""
        import dask.array as da

        if a is None:
            return None
        parts = []
        for rows, worker in zip(blocks, workers, strict=False):
            part = np.ascontiguousarray(a[rows[0] : rows[-1] + 1])
            future = self.client.scatter(part, workers=[worker], direct=True, hash=False)
            held.append(future)
            parts.append(da.from_delayed(future, shape=part.shape, dtype=part.dtype))
        return da.concatenate(parts, axis=0)


def cluster_fit(engine) -> DaskFit | None:
    """The fit on ``engine``'s cluster when it was asked for (``DaskEngine(fit_on_cluster=True)``),
    else ``None``: the demand model then fits in this process."""
    if engine is None or not getattr(engine, "fit_on_cluster", False):
        return None
    return DaskFit(engine.client)
