"""Read-modify-write of one JSON value in a JetStream key-value bucket, safe between workers.

Every write names the revision it read (compare-and-set): when another worker wrote the key in
between, the write is refused and the change is recomputed from the newer value. A cache of
revisions spares the read when this worker was the last writer (the common case). Requests in
flight are bounded (``limit``, shared by a worker's patchers): a store's opening count of
thousands of SKUs queues here instead of overflowing the client's buffer and timing out.

>>> Patcher.__name__
'Patcher'
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]
"""Old value (None when absent) -> new value, or None to leave the key as it is."""
IN_FLIGHT = 256  # key-value requests a worker has outstanding at most


class Patcher:
    """Compare-and-set JSON updates on one bucket, with a revision cache."""

    def __init__(self, kv: Any, limit: asyncio.Semaphore | None = None):
        self.kv = kv
        self.limit = limit or asyncio.Semaphore(IN_FLIGHT)
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}

    async def read(self, key: str) -> tuple[int, dict[str, Any] | None]:
        from nats.js.errors import KeyNotFoundError

        try:
            async with self.limit:
                entry = await self.kv.get(key)
        except KeyNotFoundError:
            return 0, None
        if entry.value is None or entry.operation is not None:  # deleted or purged
            return entry.revision or 0, None
        value = json.loads(entry.value)
        self._cache[key] = (entry.revision, value)
        return entry.revision, value

    def cached(self, key: str) -> dict[str, Any] | None:
        """The value this patcher last read or wrote at ``key`` (None: not known here)."""
        entry = self._cache.get(key)
        return None if entry is None else entry[1]

    async def patch(self, key: str, change: Change, attempts: int = 50) -> dict[str, Any] | None:
        """Apply ``change`` to the key's value; returns what was written (None: nothing)."""
        from nats.js.errors import KeyWrongLastSequenceError

        cached = self._cache.get(key)
        rev, old = cached if cached is not None else await self.read(key)
        for _ in range(attempts):
            new = change(old)
            if new is None:
                return None
            data = json.dumps(new, separators=(",", ":")).encode()
            try:
                async with self.limit:
                    if rev == 0:
                        rev = await self.kv.create(key, data)
                    else:
                        rev = await self.kv.update(key, data, last=rev)
            except KeyWrongLastSequenceError:  # another writer came first: recompute from its value
                rev, old = await self.read(key)
                continue
            self._cache[key] = (rev, new)
            return new
        raise RuntimeError(f"key {key!r}: {attempts} concurrent writers in a row, giving up")
