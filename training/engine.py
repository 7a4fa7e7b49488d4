"""Where training's per-series heavy steps run: in this process, or on a Dask cluster.

The steps that fan out are the ones that treat each series on its own: the training feature rows
(of the final fit and of every backtest fold), the statsforecast baselines of every backtest fold
and the batch forecast of every series. They are cut into partitions of whole series (a series
is never split: its features and its baselines need all of its days), each partition runs as
one task, and the results come back in series order, so the caller cannot tell which engine ran
them. The global demand model (one LightGBM over all series) cannot be cut so, but each
backtest fold's fit and the final fit are independent: each is one task
(:meth:`Engine.map_shared`, the panel sent to each worker once; :mod:`training.fold_fits`),
growing the trees this process would. With ``fit_on_cluster`` each fit is instead
data-parallel on the workers (:mod:`training.distributed_fit`), whose trees then differ
slightly. Single process is the default; Dask is for data too large for one core (see
docs/records/distributed-engine.md).

>>> engine = LocalEngine()
>>> engine.map(sum, [[1, 2], [3]])
[3, 3]
>>> engine.map_shared(pow, 2, [3, 4])  # 2**3, 2**4: the shared argument goes first
[8, 16]
>>> [p.tolist() for p in series_partitions(5, 2)]
[[0, 1, 2], [3, 4]]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from feature_store.batch import Panel

ENGINES = ("local", "dask")
# Tasks per worker: enough that one slow partition does not leave the other workers idle.
PARTITIONS_PER_WORKER = 4
# Series per task at most: a national assortment becomes many tasks of a size a worker holds
# comfortably (its panel and forecasts, not its features: those go block by block).
MAX_SERIES_PER_PARTITION = 20_000


# A local cluster's workers run numpy on large arrays; two of Dask's defaults nearly doubled
# their CPU time per series: MALLOC_TRIM_THRESHOLD_ (fixing it turns off glibc's adaptive mmap
# threshold, so every array over 128 KiB is a fresh mmap and page faults) and the statistical
# profiler sampling the task thread every 10 ms.
_LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    # Its memory manager drops all but one replica of a key no queued task needs yet; the
    # panel ``map_shared`` broadcasts would then be sent to a worker again for its next fit.
    "distributed.scheduler.active-memory-manager.start": False,
}


class Engine(Protocol):
    """Runs ``fn`` on each partition and returns the results in partition order."""

    workers: int

    def map(self, fn: Callable[[Any], Any], parts: Sequence[Any]) -> list: ...

    def map_shared(
        self,
        fn: Callable[[Any, Any], Any],
        shared: Any,
        items: Sequence[Any],
        done: Callable[[int, Any], None] | None = None,
    ) -> list:
        """``fn(shared, item)`` for each item, results in item order; ``shared`` goes to each
        worker once; ``done(i, result)`` is called as each item finishes."""
        ...


class LocalEngine:
    """This process, one partition after the other: the default for small data.

    >>> done = []
    >>> LocalEngine().map_shared(pow, 2, [3, 4], done=lambda i, r: done.append((i, r)))
    [8, 16]
    >>> done  # each result as it comes: a progress bar's hook
    [(0, 8), (1, 16)]
    """

    workers = 1

    def map(self, fn: Callable[[Any], Any], parts: Sequence[Any]) -> list:
        return [fn(p) for p in parts]

    def map_shared(self, fn, shared, items, done=None) -> list:
        results = []
        for i, item in enumerate(items):
            results.append(fn(shared, item))
            if done is not None:
                done(i, results[-1])
        return results

    def close(self) -> None:
        return None


class DaskEngine:
    """A Dask ``distributed`` cluster: a given ``address`` (``tcp://host:8786``), else a local
    cluster of ``workers`` processes, one thread each, on loopback, stopped by :meth:`close`.

    A local cluster's workers each run in a scheduler session of their own
    (:mod:`training.worker_session`): on a busy machine they then get a CPU share each, not
    one share between them; ``pin`` also keeps each on a core of its own. ``fit_on_cluster``:
    the demand model's LightGBM fits run on the workers too (:mod:`training.distributed_fit`).

    >>> DaskEngine.__name__  # a real cluster starts in tests/test_engine.py
    'DaskEngine'
    """

    def __init__(
        self,
        workers: int = 2,
        address: str | None = None,
        pin: bool = False,
        fit_on_cluster: bool = False,
    ) -> None:
        import dask
        from distributed import Client, LocalCluster

        from training.worker_session import OwnSession

        self._cluster = None
        self.fit_on_cluster = fit_on_cluster
        if address is None:
            with dask.config.set(_LOCAL_WORKER_CONFIG):
                self._cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    # The scheduler's HTTP endpoint on a free loopback port, without the dashboard.
                    dashboard_address="127.0.0.1:0",
                    scheduler_kwargs={"dashboard": False},
                )
            address = self._cluster.scheduler_address
        self.client = Client(address)
        if self._cluster is not None:
            self.client.register_plugin(OwnSession(pin=pin))
        self.workers = max(1, len(self.client.scheduler_info()["workers"]))

    def map(self, fn: Callable[[Any], Any], parts: Sequence[Any]) -> list:
        futures = self.client.map(fn, list(parts), pure=False)
        return self.client.gather(futures)

    def map_shared(self, fn, shared, items, done=None) -> list:
        """``shared`` is scattered to every worker once (a key of its own, ``hash=False``, so
        a second call with the same bytes cannot lose it as the first call's is released);
        ``done`` is called in completion order."""
        from distributed import as_completed

        [held] = self.client.scatter([shared], broadcast=True, hash=False)
        futures = [self.client.submit(fn, held, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(futures)
        for future, result in as_completed(futures, with_results=True):
            results[index[future.key]] = result
            if done is not None:
                done(index[future.key], result)
        return results

    def peak_memory_bytes(self) -> dict[str, int]:
        """Each worker process's peak resident memory (Linux ``ru_maxrss``)."""
        return self.client.run(_peak_rss_bytes)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _peak_rss_bytes() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def engine_for(
    name: str = "local", workers: int = 2, address: str | None = None, fit_on_cluster: bool = False
) -> Engine:
    """The engine a command asked for (``--engine``, ``--workers``, ``--scheduler``, and
    ``shelfcast train --fit-on-cluster``)."""
    if name == "local":
        if fit_on_cluster:
            raise ValueError("--fit-on-cluster needs --engine dask")
        return LocalEngine()
    if name == "dask":
        return DaskEngine(workers=workers, address=address, fit_on_cluster=fit_on_cluster)
    raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")


def series_partitions(n_series: int, parts: int) -> list[np.ndarray]:
    """``parts`` contiguous runs of series indices (fewer when there are fewer series)."""
    parts = max(1, min(int(parts), n_series))
    return [p for p in np.array_split(np.arange(n_series), parts) if len(p)]


def partitions_for(engine: Engine | None, n_series: int) -> list[np.ndarray]:
    """The partitions of ``n_series`` an engine runs: one for a single process (nothing to
    gain from cutting), a few per worker on a cluster, and more when they would exceed
    ``MAX_SERIES_PER_PARTITION``.

    >>> from types import SimpleNamespace
    >>> two_workers = SimpleNamespace(workers=2)
    >>> len(partitions_for(LocalEngine(), 100_000)), len(partitions_for(two_workers, 100))
    (1, 8)
    >>> len(partitions_for(two_workers, 1_000_000))
    50
    """
    workers = 1 if engine is None else engine.workers
    if isinstance(engine, LocalEngine) or engine is None:
        return series_partitions(n_series, 1)
    parts = max(workers * PARTITIONS_PER_WORKER, -(-n_series // MAX_SERIES_PER_PARTITION))
    return series_partitions(n_series, parts)


def panel_series(panel: Panel, rows: np.ndarray, days: int | None = None) -> Panel:
    """The panel of the series ``rows`` (and only its first ``days`` days, when given): what
    one partition's task needs, and nothing more to ship."""
    end = panel.n_days if days is None else int(days)
    rows = np.asarray(rows)
    if len(rows) and np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        # A contiguous run (every partition is one): a view, not a copy of its series.
        rows = slice(int(rows[0]), int(rows[0]) + len(rows))

    def cut(a):
        return None if a is None else a[rows, :end]

    return Panel(
        keys=panel.keys[rows] if isinstance(rows, slice) else [panel.keys[i] for i in rows],
        start=panel.start,
        units=panel.units[rows, :end],
        price=cut(panel.price),
        promo=cut(panel.promo),
        event=None if panel.event is None else panel.event[:end],
        future_events=panel.future_events,
        grain=panel.grain,
        known_ahead=panel.known_ahead,
        censored=cut(panel.censored),
    )


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine``, ``--workers`` and ``--scheduler`` for every command that fans out."""
    from configuration.command_options import positive_int

    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="where per-series baselines, training rows and forecasts run: local (this process, default) or "
        "dask (a local cluster of --workers processes, or --scheduler)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="Dask worker processes for --engine dask (default 2)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="address of a running Dask scheduler (tcp://host:8786) instead of a local cluster",
    )
