"""Read-modify-write of JSON values in a JetStream key-value bucket, safe between workers.

Every write names the revision it read (compare-and-set): when another worker wrote the key in
between, the write is refused and the change is recomputed from the newer value. A cache of
revisions spares the read when this worker was the last writer (the common case). A key not in
the cache is read first, all of a batch's at once, unless the caller knows such keys are new
(a store whose figures this worker has written from the first): those are written as new
(revision 0) unread, and read only when that is refused. The writes of a batch go out together
and their answers fill one list, awaited once with one timeout (``patch_many``): a merged uplink
window costs one wait and one future, not one of each per SKU. Writes in flight are bounded
(``IN_FLIGHT`` per connection), and so are reads (``limit``, shared by a worker's patchers): a
store's opening count of thousands of SKUs queues here instead of overflowing the client's
buffer and timing out.

>>> Patcher.__name__
'Patcher'
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]
"""Old value (None when absent) -> new value, or None to leave the key as it is."""
IN_FLIGHT = 256  # key-value requests a worker has outstanding at most
WRITE_TIMEOUT_S = 10.0  # a batch's acknowledgements, all of them, within this
_EXPECTED_LAST = "Nats-Expected-Last-Subject-Sequence"
_WRONG_LAST = (10071, 10164)  # JetStream's "wrong last sequence" error codes
# json.dumps(value, separators=...) builds an encoder per call: one for every SKU written
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


class Answers:
    """JetStream's answers to a batch of publishes, by position; ``done`` holds them all once
    the last has come (one future for the batch, not one per message).

    >>> async def two():
    ...     answers = Answers(2)
    ...     answers.put(1, {"seq": 8})
    ...     answers.put(0, {"seq": 7})
    ...     return await answers.done
    >>> asyncio.run(two())
    [{'seq': 7}, {'seq': 8}]
    """

    def __init__(self, n: int):
        self.values: list[dict[str, Any]] = [{}] * n
        self.left = n
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.numbers: list[int] = []  # of the publishes sent, to give up on after a timeout
        if n == 0:
            self.done.set_result(self.values)

    def put(self, i: int, value: dict[str, Any]) -> None:
        self.values[i] = value
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(self.values)


class AckedPublishes:
    """Publishes to JetStream whose acknowledgements come back to one inbox of this
    connection, told apart by a number: no inbox, timer, task or future per message (as a
    request makes), and a refused write comes back as its error (nats-py's ``publish_async``
    raises it inside its reply handler instead, leaving the caller waiting). At most
    ``in_flight`` publishes wait for their answer; a publish past that waits for room.

    >>> acks = AckedPublishes(nc=None)  # ``await acks.start()`` subscribes to its inbox
    >>> acks.prefix, acks.room
    ('', 256)
    """

    def __init__(self, nc: Any, in_flight: int = IN_FLIGHT):
        self.nc = nc
        self.prefix = ""
        self.room = in_flight
        self._freed: asyncio.Future | None = None  # resolved when room frees up
        self._next = itertools.count(1)
        self._waiting: dict[int, tuple[Answers, int]] = {}

    async def start(self) -> AckedPublishes:
        self.prefix = self.nc.new_inbox() + "."
        await self.nc.subscribe(self.prefix + "*", cb=self._on_reply)
        return self

    async def publish(
        self, subject: str, data: bytes, headers: dict[str, str], answers: Answers, i: int
    ) -> None:
        """Send; JetStream's answer (``{"seq": ...}`` or ``{"error": ...}``) goes to
        position ``i`` of ``answers``."""
        while self.room <= 0:
            if self._freed is None or self._freed.done():
                self._freed = asyncio.get_running_loop().create_future()
            await self._freed
        self.room -= 1
        n = next(self._next)
        self._waiting[n] = (answers, i)
        answers.numbers.append(n)
        try:
            await self.nc.publish(subject, data, reply=f"{self.prefix}{n}", headers=headers)
        except BaseException:
            self._forget(n)
            raise

    def forget(self, answers: Answers) -> None:
        """Give up on the answers of ``answers`` still to come (their room is freed)."""
        for n in answers.numbers:
            self._forget(n)

    def _forget(self, n: int) -> bool:
        if self._waiting.pop(n, None) is None:
            return False
        self.room += 1
        if self._freed is not None and not self._freed.done():
            self._freed.set_result(None)
        return True

    async def _on_reply(self, msg: Any) -> None:
        n = int(msg.subject[len(self.prefix) :])
        entry = self._waiting.get(n)
        if entry is None or not self._forget(n):
            return  # given up on (timed out)
        if not msg.data:  # a status without a body: no stream took it (503)
            entry[0].put(
                entry[1], {"error": {"code": 503, "err_code": 0, "description": "no responders"}}
            )
        else:
            entry[0].put(entry[1], json.loads(msg.data))


class Patcher:
    """Compare-and-set JSON updates on one bucket (``kv``, whose stream takes the publishes
    on ``$KV.<bucket>.<key>`` sent through ``acks``), with a revision cache."""

    def __init__(
        self, acks: AckedPublishes, bucket: str, kv: Any, limit: asyncio.Semaphore | None = None
    ):
        self.acks = acks
        self.kv = kv
        self.subject = f"$KV.{bucket}."
        self.limit = limit or asyncio.Semaphore(IN_FLIGHT)
        self._cache: dict[str, tuple[int, dict[str, Any] | None]] = {}

    async def read(self, key: str) -> tuple[int, dict[str, Any] | None]:
        from nats.js.errors import KeyNotFoundError

        try:
            async with self.limit:
                entry = await self.kv.get(key)
        except KeyNotFoundError:
            self._cache[key] = (0, None)
            return 0, None
        if entry.value is None or entry.operation is not None:  # deleted or purged
            self._cache[key] = (entry.revision or 0, None)
            return entry.revision or 0, None
        value = json.loads(entry.value)
        self._cache[key] = (entry.revision, value)
        return entry.revision, value

    def seen(self, key: str, revision: int, value: dict[str, Any]) -> None:
        """Another writer's ``value`` at ``revision``, seen on a watch: the cache takes it
        when newer than what it holds (the next write needs no read first)."""
        if revision > self._cache.get(key, (0, None))[0]:
            self._cache[key] = (revision, value)

    def cached(self, key: str) -> dict[str, Any] | None:
        """The value this patcher last read or wrote at ``key`` (None: not known here)."""
        entry = self._cache.get(key)
        return None if entry is None else entry[1]

    async def patch(self, key: str, change: Change, attempts: int = 50) -> dict[str, Any] | None:
        """Apply ``change`` to the key's value; returns what was written (None: nothing)."""
        written = await self.patch_many({key: change}, attempts)
        return written.get(key)

    async def patch_many(
        self, changes: dict[str, Change], attempts: int = 50, unknown_are_new: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Apply each change to its key, all writes in flight together; returns what was
        written, by key. A key another writer moved is read again and its change recomputed.
        ``unknown_are_new``: keys not in the cache are written as new without a read first."""
        if not unknown_are_new:
            await asyncio.gather(*(self.read(k) for k in changes if k not in self._cache))
        written: dict[str, dict[str, Any]] = {}
        pending = changes
        for _ in range(attempts):
            refused = await self._write(pending, written)
            if not refused:
                return written
            await asyncio.gather(*(self.read(k) for k in refused))
            pending = {k: changes[k] for k in refused}
        raise RuntimeError(f"keys {sorted(pending)[:3]}: {attempts} concurrent writers in a row")

    async def _write(self, changes: dict[str, Change], written: dict) -> list[str]:
        """One round of compare-and-set writes; returns the keys whose write was refused."""
        sent: list[tuple[str, dict[str, Any], int]] = []
        for key, change in changes.items():
            rev, old = self._cache.get(key, (0, None))  # unknown here: written as new
            new = change(old)
            if new is not None:
                sent.append((key, new, rev))
        if not sent:
            return []
        answers = Answers(len(sent))
        try:
            for i, (key, new, rev) in enumerate(sent):
                data = _COMPACT(new).encode()
                await self.acks.publish(
                    self.subject + key, data, {_EXPECTED_LAST: str(rev)}, answers, i
                )
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                values = await answers.done
        except BaseException:
            self.acks.forget(answers)
            for key, *_ in sent:
                self._cache.pop(key, None)  # maybe written after all: read it next time
            raise
        refused, failed = [], []
        for (key, new, _rev), answer in zip(sent, values, strict=True):
            error = answer.get("error")
            if error is None:
                self._cache[key] = (answer["seq"], new)
                written[key] = new
            elif error.get("err_code") in _WRONG_LAST:
                refused.append(key)  # another writer came first (or the key exists)
            else:
                self._cache.pop(key, None)
                failed.append(f"key {key!r} not written: {error.get('description')}")
        if failed:  # the written ones are cached: a second attempt finds them done
            raise RuntimeError(failed[0])
        return refused
