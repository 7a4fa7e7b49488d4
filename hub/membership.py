"""Which hub worker owns which partition: live workers in a key-value bucket, a shared rule.

Every worker puts its name in ``shelfcast_workers`` every ``MEMBER_HEARTBEAT_S`` and watches the
bucket; a worker not heard of for ``MEMBER_TTL_S`` is dead (a clean stop deletes its key at
once). Each worker applies the same rule to the same live set, ``owners``: partitions dealt
round-robin over the sorted names, so N workers share ``PARTITIONS`` evenly and agree without
talking. A starting worker listens for one heartbeat period before it takes any partition:
workers started together then agree at once, rather than the first taking every partition and
handing most back (messages it held of those would wait for redelivery). Ownership only keeps a store's messages on one worker for speed; it is never needed for
correctness (while it moves, two workers may briefly share a partition; the view's per-store
sequence and compare-and-set writes make that harmless).

>>> owners(["w2", "w1"], 4)
{0: 'w1', 1: 'w2', 2: 'w1', 3: 'w2'}
>>> owners([], 2)
{}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from hub.streams import MEMBER_HEARTBEAT_S, MEMBER_TTL_S, WORKERS_BUCKET

log = logging.getLogger(__name__)


def owners(live: Iterable[str], partitions: int) -> dict[int, str]:
    """Partition -> the live worker that owns it (the one rule every worker applies)."""
    names = sorted(set(live))
    return {p: names[p % len(names)] for p in range(partitions)} if names else {}


class Membership:
    """This worker's heartbeat and its view of the others; ``on_change(live names)`` whenever
    the live set changes."""

    def __init__(self, js: Any, name: str, on_change: Callable[[set[str]], Awaitable[None]]):
        self.js = js
        self.name = name
        self.on_change = on_change
        self.seen: dict[str, float] = {}  # worker -> monotonic time it was last heard of
        self.live: set[str] = set()
        self._kv: Any = None
        self._listening = True  # until one heartbeat period has passed: no partition taken

    async def run(self) -> None:
        """Heartbeat, watch and re-evaluate until cancelled (then say goodbye)."""
        self._kv = await self.js.key_value(WORKERS_BUCKET)
        await self._beat()
        watcher = await self._kv.watchall()
        tasks = [asyncio.create_task(self._watch(watcher)), asyncio.create_task(self._tick())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                await self._kv.delete(self.name)  # the others take its partitions now

    async def _beat(self) -> None:
        await self._kv.put(self.name, str(time.time()).encode())
        self.seen[self.name] = time.monotonic()

    async def _watch(self, watcher: Any) -> None:
        while True:
            entry = await watcher.updates(timeout=None)
            if entry is None:
                continue  # the initial values are all in
            if entry.operation is None:
                self.seen[entry.key] = time.monotonic()
            else:  # deleted: a clean stop
                self.seen.pop(entry.key, None)
            await self._evaluate()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(MEMBER_HEARTBEAT_S)
            try:
                await self._beat()
            except Exception as err:  # no quorum for a moment: the others may drop us; we retry
                log.warning("worker %s: heartbeat not stored (%s)", self.name, err)
            self._listening = False
            await self._evaluate()

    async def _evaluate(self) -> None:
        if self._listening:
            return
        now = time.monotonic()
        live = {w for w, t in self.seen.items() if now - t <= MEMBER_TTL_S} | {self.name}
        if live != self.live:
            log.info("workers alive: %s", ", ".join(sorted(live)))
            self.live = live
            await self.on_change(live)
