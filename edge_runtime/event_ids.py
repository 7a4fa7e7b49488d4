"""The ledger's idempotency index: every event id it ever logged, at ~16 bytes an id.

Why not a set of strings: the log has no ``event_id`` index (a random-key B-tree cut durable
throughput ~3.5x, see ``edge_runtime.ledger``), so the ids live in memory, and a Python set of
UUID strings costs ~127 bytes an id: ~1 GB a year for a store logging 20,000 events a day,
on a gateway that also has to start by reading them all.

Here the newest ids stay in a set (exact, cheap to add) and, every ``compact_every`` ids, fold
into one sorted array of 128-bit BLAKE2b digests (16 bytes each); a lookup is a binary search.
Two different ids share a 128-bit digest with probability ~n^2 / 2^129: ~1e-25 for a hundred
million ids, far below a disk's undetected error rate, so a digest match is a duplicate.

>>> ids = EventIds(compact_every=2)
>>> ids.update(["a", "b", "c"])          # 3 >= 2 recent ids: all fold into the digests
>>> "a" in ids, "c" in ids, "d" in ids
(True, True, False)
>>> ids.unknown(["d", "b", "e"]), len(ids)
(['d', 'e'], 3)
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b

import numpy as np

DIGEST_DTYPE = "S16"


def digests(ids: Iterable[str]) -> np.ndarray:
    """128-bit digests of ``ids`` as an ``S16`` array (comparable, sortable)."""
    raw = b"".join(blake2b(i.encode(), digest_size=16).digest() for i in ids)
    return np.frombuffer(raw, dtype=DIGEST_DTYPE)


class EventIds:
    """Set-like membership of event ids: recent ids exact, older ones as sorted digests."""

    def __init__(self, compact_every: int = 50_000):
        self.compact_every = compact_every
        self._recent: set[str] = set()
        self._folded = np.empty(0, dtype=DIGEST_DTYPE)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._recent or bool(self._in_folded(digests([event_id]))[0])

    def __len__(self) -> int:
        return len(self._recent) + len(self._folded)

    @property
    def nbytes(self) -> int:
        """Bytes of the folded digests (the recent set is bounded by ``compact_every``)."""
        return int(self._folded.nbytes)

    def unknown(self, ids: list[str]) -> list[str]:
        """The ids of ``ids`` not seen before, in order (one vectorised search for the batch)."""
        fresh = [i for i in ids if i not in self._recent]
        if not fresh or not len(self._folded):
            return fresh
        seen = self._in_folded(digests(fresh))
        return [i for i, s in zip(fresh, seen, strict=True) if not s]

    def update(self, ids: Iterable[str], unseen: bool = False) -> None:
        """Remember ``ids``; fold the recent ones into the digest array once there are enough.

        ``unseen=True``: the caller just had them from :meth:`unknown` (the ledger after its
        commit), so the second search is skipped."""
        self._recent.update(ids if unseen else self.unknown(list(ids)))
        if len(self._recent) >= self.compact_every:
            self.compact()

    def load(self, ids: Iterable[str], chunk: int = 65_536) -> None:
        """Fold many ids at once (a ledger reading its log): digests chunk by chunk, one sort,
        so the strings never all sit in memory together."""
        parts, batch = [self._folded], []
        for event_id in ids:
            batch.append(event_id)
            if len(batch) == chunk:
                parts.append(digests(batch))
                batch = []
        parts.append(digests(batch))
        self._folded = _distinct(np.sort(np.concatenate(parts)))

    def compact(self) -> None:
        """Fold every recent id into the sorted digest array."""
        if not self._recent:
            return
        new = np.sort(digests(self._recent))
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        self._folded = _distinct(np.sort(np.concatenate([self._folded, new]), kind="stable"))
        self._recent = set()

    def _in_folded(self, keys: np.ndarray) -> np.ndarray:
        """Which of ``keys`` are among the folded digests (binary search)."""
        folded = self._folded
        if not len(folded):
            return np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(folded, keys), len(folded) - 1)
        return folded[at] == keys


def _distinct(sorted_keys: np.ndarray) -> np.ndarray:
    """A sorted array without repeats (a log may hold an id twice only if written by hand)."""
    if len(sorted_keys) < 2:
        return sorted_keys
    keep = np.empty(len(sorted_keys), dtype=bool)
    keep[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=keep[1:])
    return sorted_keys if keep.all() else sorted_keys[keep]
