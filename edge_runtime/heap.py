"""Keep the garbage collector's full passes short in a long-running gateway process.

Why: the gateway imports River, which pulls in pandas, SciPy and scikit-learn; with the ledger,
bundle and per-SKU state that is about 160,000 objects the collector tracks. Each full (oldest
generation) collection walks all of them, about 100-150 ms on the 2-core box, and holds the GIL
while it does: every event arriving then waits, which was the largest term in the
event-to-alert p99 (``benchmarks/latency.py``). Those objects live as long as the process, so
after start-up they are moved to the permanent generation (``gc.freeze``): later full passes
walk only what was created since. Cyclic garbage among the frozen objects is never freed, so
this is for service entrypoints (``shelfcast run`` / ``serve``), not for library callers that
make many gateways in one process.

>>> import gc
>>> freeze_startup_heap() > 0
True
>>> gc.unfreeze()  # a doctest must not leave the test process frozen
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then exclude every surviving object from later collections; returns how
    many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
