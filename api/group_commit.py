"""Group commit for HTTP ingest: concurrent requests share one durable ledger transaction.

Each ingest is durable (fsync) before it is answered, so one transaction per request caps
single-event ingest at the disk's sync rate. Requests that arrive while a transaction is being
committed wait for the next one and go in together (at most ``max_events`` events), then each
gets its own answer: its accepted, duplicate and rejected counts, its rejections indexed within
its own payload, and its conflicts. Every event is judged exactly as it would be alone: the
combined payload goes through the same ``ingest`` (parse, validate, dead-letter) as one request.

Only small JSON bodies are grouped; large or unparsable ones are ingested on their own, as is
every request of a group whose combined ingest raised (a store failure: each request then gets
its own answer or error).

>>> split_counts([["a", "b"], ["b"]], new_ids={"a", "b"}, rejected={0: set(), 1: set()})
[(2, 0), (0, 1)]
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from edge_runtime.store.ledger import IngestResult

GROUP_BYTES = 64 * 1024  # bigger bodies are ingested alone (their own size limits apply)


@dataclass
class _Pending:
    body: bytes
    items: list[Any]
    batch: bool  # the payload was a JSON array (its rejections carry an index)
    future: asyncio.Future


def _event_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("event_id")
        return value if isinstance(value, str) else None
    return None


def split_counts(
    ids: list[list[str | None]], new_ids: set[str], rejected: dict[int, set[int]]
) -> list[tuple[int, int]]:
    """(accepted, duplicates) per request: the first valid occurrence of a new id is accepted."""
    remaining = set(new_ids)
    out = []
    for r, request_ids in enumerate(ids):
        accepted = duplicates = 0
        for i, event_id in enumerate(request_ids):
            if i in rejected[r]:
                continue
            if event_id in remaining:
                remaining.discard(event_id)
                accepted += 1
            else:
                duplicates += 1
        out.append((accepted, duplicates))
    return out


class GroupCommitter:
    """Coalesces concurrent ingest requests of one app (all calls on its event loop).

    >>> GroupCommitter(lambda payload, source: None, source="api")._max_events
    5000
    """

    def __init__(
        self, ingest: Callable[[Any, str], IngestResult], source: str, max_events: int = 5000
    ):
        self._ingest = ingest
        self._source = source
        self._max_events = max_events
        self._queue: list[_Pending] = []
        self._running = False
        self._task: asyncio.Future | None = None

    async def submit(self, body: bytes) -> IngestResult:
        """Ingest ``body`` (an event or an array), grouped with concurrent requests if small."""
        decoded = self._decode(body)
        if decoded is None:
            return await run_in_threadpool(self._ingest, body, self._source)
        batch = isinstance(decoded, list)
        items = decoded if batch else [decoded]
        if len(items) > self._max_events:
            return await run_in_threadpool(self._ingest, body, self._source)
        pending = _Pending(body, items, batch, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if not self._running:
            self._running = True
            self._task = asyncio.ensure_future(self._drain())
        return await pending.future

    @staticmethod
    def _decode(body: bytes) -> Any:
        if len(body) > GROUP_BYTES:
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None  # the parser says why, on the request's own path

    async def _drain(self) -> None:
        try:
            while self._queue:
                group, size = [], 0
                while self._queue and size + len(self._queue[0].items) <= self._max_events:
                    pending = self._queue.pop(0)
                    group.append(pending)
                    size += len(pending.items)
                if not group:  # one request larger than a group: alone
                    group.append(self._queue.pop(0))
                await self._commit(group)
        finally:
            self._running = False

    async def _commit(self, group: list[_Pending]) -> None:
        if len(group) == 1:  # nothing to share: exactly the request's own path
            only = group[0]
            await self._settle(only, lambda: self._ingest(only.body, self._source))
            return
        combined = [item for p in group for item in p.items]
        try:
            result = await run_in_threadpool(self._ingest, combined, self._source)
        except Exception:
            for p in group:  # one at a time: each request gets its own answer or error
                await self._settle(p, lambda p=p: self._ingest(p.body, self._source))
            return
        for p, share in zip(group, self._split(group, result), strict=True):
            if not p.future.done():
                p.future.set_result(share)

    async def _settle(self, p: _Pending, call: Callable[[], IngestResult]) -> None:
        try:
            result = await run_in_threadpool(call)
        except Exception as err:
            if not p.future.done():
                p.future.set_exception(err)
            return
        if not p.future.done():
            p.future.set_result(result)

    @staticmethod
    def _split(group: list[_Pending], result: IngestResult) -> list[IngestResult]:
        offsets, start = [], 0
        for p in group:
            offsets.append(start)
            start += len(p.items)
        shares = [IngestResult() for _ in group]
        rejected: dict[int, set[int]] = {r: set() for r in range(len(group))}
        for rej in result.rejections:
            r = _owner(offsets, rej.index or 0)
            local = (rej.index or 0) - offsets[r]
            rejected[r].add(local)
            shares[r].rejections.append(replace(rej, index=local if group[r].batch else None))
            shares[r].rejected += 1
        ids = [[_event_id(item) for item in p.items] for p in group]
        new_ids = {e.event_id for e in result.events}
        for share, (accepted, duplicates) in zip(
            shares, split_counts(ids, new_ids, rejected), strict=True
        ):
            share.accepted, share.duplicates = accepted, duplicates
        owner_of = {}
        for r, request_ids in enumerate(ids):
            for event_id in request_ids:
                owner_of.setdefault(event_id, r)
        for conflict in result.conflicts:
            shares[owner_of.get(conflict.event_id, 0)].conflicts.append(conflict)
        return shares


def _owner(offsets: list[int], index: int) -> int:
    r = 0
    while r + 1 < len(offsets) and offsets[r + 1] <= index:
        r += 1
    return r
