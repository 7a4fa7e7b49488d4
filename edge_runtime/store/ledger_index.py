"""A snapshot of the ledger's in-memory lookups (event ids, per-SKU log positions) at a log position.

Why: the log has no secondary index (see ``edge_runtime.store.ledger``), so the ledger keeps the event-id
digests and each SKU's log positions in memory. Rebuilding them means reading and hashing every
event ever logged: seconds for a million events, during which the gateway cannot commit and its
broker queue fills. A snapshot written every so often (and at close) lets a start read only the
events logged after it.

A snapshot is trusted only for the ledger it was written from and only if the log still holds,
at its position, the event it names (the log is append-only: what is at or before that position
never changes). Anything else (no file, another ledger's file, a torn or unreadable file) is
ignored and the lookups are rebuilt from the whole log, as before.

>>> import tempfile, os
>>> from array import array
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "ledger.index.npz")
>>> hi = np.array([1, 5], dtype=np.uint64); lo = np.array([2, 7], dtype=np.uint64)
>>> save_index(path, IndexSnapshot("L1", 3, "e3", hi, lo, {"A": array("q", [1, 3])}))
>>> snap = load_index(path, "L1")
>>> snap.upto, snap.last_id, list(snap.positions["A"]), load_index(path, "L2") is None
(3, 'e3', [1, 3], True)
>>> tmp.cleanup()
"""

from __future__ import annotations

import logging
import os
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass
class IndexSnapshot:
    """The lookups as of log position ``upto`` (whose event is ``last_id``) of ledger ``ledger_id``.

    >>> IndexSnapshot("L1", 0, "", np.empty(0, np.uint64), np.empty(0, np.uint64), {}).upto
    0
    """

    ledger_id: str
    upto: int
    last_id: str
    hi: np.ndarray
    lo: np.ndarray
    positions: dict[str, array]


def save_index(path: str | Path, snap: IndexSnapshot) -> None:
    """Write ``snap`` atomically (temporary file, fsync, rename): a crash leaves the old one."""
    path = Path(path)
    skus = list(snap.positions)
    counts = np.fromiter((len(snap.positions[s]) for s in skus), dtype=np.int64, count=len(skus))
    seqs = (
        np.concatenate([np.frombuffer(snap.positions[s], dtype=np.int64) for s in skus])
        if skus
        else np.empty(0, dtype=np.int64)
    )
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            meta=np.array([str(FORMAT), snap.ledger_id, str(snap.upto), snap.last_id]),
            hi=snap.hi,
            lo=snap.lo,
            skus=np.array(skus, dtype=str),
            counts=counts,
            seqs=seqs,
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_index(path: str | Path, ledger_id: str) -> IndexSnapshot | None:
    """The snapshot at ``path`` if it is readable and of ledger ``ledger_id``; else None."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt, owner, upto, last_id = (str(v) for v in z["meta"])
            if fmt != str(FORMAT) or owner != ledger_id:
                log.warning("ledger index %s is not this ledger's; rebuilt from the log", path)
                return None
            hi, lo = z["hi"], z["lo"]
            skus, counts, seqs = z["skus"].tolist(), z["counts"], z["seqs"]
    except Exception as err:  # a torn or foreign file only costs a slower start
        log.warning("ledger index %s unreadable (%s); rebuilt from the log", path, err)
        return None
    if len(hi) != len(lo) or int(counts.sum()) != len(seqs):
        log.warning("ledger index %s is inconsistent; rebuilt from the log", path)
        return None
    positions: dict[str, array] = {}
    start = 0
    raw = seqs.astype(np.int64, copy=False)
    for sku, n in zip(skus, counts.tolist(), strict=True):
        a = array("q")
        a.frombytes(raw[start : start + n].tobytes())
        positions[sku] = a
        start += n
    return IndexSnapshot(ledger_id, int(upto), last_id, hi, lo, positions)
