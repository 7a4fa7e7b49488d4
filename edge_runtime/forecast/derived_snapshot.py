"""The gateway's state derived from the event log (daily sales series, River correction), saved
at a ledger position so a restart reads only the events logged after it.

Why: rebuilding each SKU's daily series from a million logged events takes seconds, and a
gateway that is not consuming lets its broker queue fill. The snapshot is the gateway's own
file in its state directory (written atomically: temporary file, fsync, rename), trusted only
for the ledger it was written from and only while the log still holds, at its position, the
event it names; otherwise the series are rebuilt from the log as before.

>>> import tempfile, os
>>> from edge_runtime.forecast.daily_sales import DailySales
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "derived.pickle")
>>> save_derived(path, DerivedSnapshot("L1", 7, "e7", DailySales(), None))
>>> load_derived(path, "L1").upto, load_derived(path, "L2") is None
(7, True)
>>> tmp.cleanup()
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runtime.forecast.daily_sales import DailySales

log = logging.getLogger(__name__)

# 2: the sales series carry each SKU's in-stock level; 3: as one panel; 4: River's means as
# numbers (a gateway before it refuses a 4 and rebuilds; this one reads a 3 as well).
FORMAT = 4
READS = (3, 4)


@dataclass
class DerivedSnapshot:
    """Sales series (and the model's online correction, if any) as of log position ``upto``.

    >>> DerivedSnapshot("L1", 0, "", DailySales(), None).correction is None
    True
    """

    ledger_id: str
    upto: int
    last_id: str
    sales: DailySales
    correction: Any
    # The last close's scoring (``edge_runtime.decide.scored_close``), None without a model; absent
    # from snapshots written before it existed (the class default then answers).
    scored: Any = None


def dump_derived(snap: DerivedSnapshot) -> bytes:
    """The snapshot as bytes (done under the gateway's lock: a consistent copy)."""
    return pickle.dumps((FORMAT, snap), pickle.HIGHEST_PROTOCOL)


def write_derived(path: str | Path, blob: bytes) -> None:
    """Write bytes from :func:`dump_derived` atomically (may run outside the lock)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_derived(path: str | Path, snap: DerivedSnapshot) -> None:
    write_derived(path, dump_derived(snap))


def load_derived(path: str | Path, ledger_id: str) -> DerivedSnapshot | None:
    """The snapshot at ``path`` when readable and of ledger ``ledger_id``; else None."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        fmt, snap = pickle.loads(path.read_bytes())  # our own file in our own state directory
    except Exception as err:  # torn or from another version: only a slower start
        log.warning("derived-state snapshot %s unreadable (%s); rebuilt from the log", path, err)
        return None
    if fmt not in READS or not isinstance(snap, DerivedSnapshot) or snap.ledger_id != ledger_id:
        log.warning("derived-state snapshot %s is not this ledger's; rebuilt from the log", path)
        return None
    return snap
