"""A local Dask worker's share of the CPU: its own scheduler session, and optionally its own core.

Why: Linux's autogroup scheduler (``/proc/sys/kernel/sched_autogroup_enabled``, on by default
on desktop and many server kernels) shares CPU time fairly between *sessions*, not processes.
A :class:`distributed.LocalCluster`'s worker processes inherit the driver's session, so on a
machine where other sessions are busy, two workers split the one share one worker had, and a
second worker adds almost nothing. A worker in a session of its own gets a share of its own, as
a ``dask-worker`` started as a service (or on its own machine) does. Pinning each worker to a
core of its own (``pin``) keeps two workers from queueing on the same core.

>>> plugin = OwnSession(pin=False)
>>> plugin.name
'shelfcast-own-session'
"""

from __future__ import annotations

import contextlib
import os

from distributed import WorkerPlugin


def cpu_for(worker_name: object, cpus: list[int]) -> int | None:
    """The core a worker named ``worker_name`` runs on: local workers are named 0, 1, ...

    >>> cpu_for(3, [0, 1])
    1
    >>> cpu_for("tcp://a:1", [0, 1]) is None
    True
    """
    try:
        return cpus[int(str(worker_name)) % len(cpus)]
    except ValueError:
        return None


class OwnSession(WorkerPlugin):
    """Puts the worker process in a new session (and on core ``name % cpus`` with ``pin``)."""

    name = "shelfcast-own-session"

    def __init__(self, pin: bool = False) -> None:
        self.pin = pin

    def setup(self, worker) -> None:
        with contextlib.suppress(OSError):  # already a session leader: it has its own share
            os.setsid()
        if self.pin and hasattr(os, "sched_setaffinity"):
            cpu = cpu_for(worker.name, sorted(os.sched_getaffinity(0)))
            if cpu is not None:
                _pin_threads(cpu)


def _pin_threads(cpu: int) -> None:
    """Every thread of this process on ``cpu`` (an affinity is per thread; the task threads
    started later inherit it)."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            os.sched_setaffinity(int(tid), {cpu})
