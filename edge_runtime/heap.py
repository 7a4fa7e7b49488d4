"""Keep the garbage collector out of a gateway's start and its full passes short afterwards.

Why: the gateway imports River, which pulls in pandas, SciPy and scikit-learn; with the ledger,
bundle and per-SKU state that is about 160,000 objects the collector tracks. Each full (oldest
generation) collection walks all of them, about 100-150 ms on the 2-core box, and holds the GIL
while it does: every event arriving then waits, which was the largest term in the
event-to-alert p99 (``benchmarks/latency.py``). Those objects live as long as the process, so
after start-up they are moved to the permanent generation (``gc.freeze``): later full passes
walk only what was created since. Cyclic garbage among the frozen objects is never freed, so
this is for service entrypoints (``shelfcast run`` / ``serve``), not for library callers that
make many gateways in one process.

Until then the collector is paused (:func:`pause_collector`): a start's imports, snapshots and
first commit make almost nothing but objects that survive, so its collections (about 240 of
them, ~0.1 CPU-s) only delayed the first acknowledgement after a restart; the one pass that
sorts garbage from survivors runs in :func:`freeze_startup_heap`, after that acknowledgement.

>>> import gc
>>> pause_collector(); gc.isenabled()
False
>>> freeze_startup_heap() > 0, gc.isenabled()
(True, True)
>>> gc.unfreeze()  # a doctest must not leave the test process frozen
"""

from __future__ import annotations

import gc


def pause_collector() -> None:
    """No cyclic collection until :func:`freeze_startup_heap` (see the module docstring)."""
    gc.disable()


def resume_collector() -> None:
    """Collect again, nothing frozen: a start that failed (its process ends, or a caller goes on)."""
    gc.enable()


def freeze_startup_heap() -> int:
    """Collect once, then exclude every surviving object from later collections, and collect
    again from here on (after :func:`pause_collector`); returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    gc.enable()
    return gc.get_freeze_count()
