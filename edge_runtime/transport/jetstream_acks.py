"""JetStream publishes whose acknowledgements come back on one reply subscription of our own.

nats-py's ``publish_async`` takes, for every message, a semaphore through ``asyncio.wait_for``,
a random token from ``os.urandom``, a future with a done callback, and builds a ``PubAck``
dataclass from each reply. The hub link forwards a window or an alert at a time, fifty or more
a second, so that was a sizeable share of its thread. Here a connection's replies share one
inbox (``_INBOX.<nuid>.<n>``, ``n`` counting up: a late reply of an abandoned batch matches no
waiting one) and a batch waits on one future, completed by the reply that was last missing.
The messages themselves (subject, headers, payload) are what ``publish_async`` would send.

>>> acks_failure(b'{"stream":"S","seq":3}', None), acks_failure(b'{"error":{"code":503}}', None)
(None, "JetStream refused a message: {'code': 503}")
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

Publish = tuple[str, bytes, dict[str, str]]  # subject, payload, headers


def acks_failure(data: bytes, headers: dict[str, str] | None) -> str | None:
    """Why a JetStream reply is not a stored message's acknowledgement (None: it is one)."""
    if headers and headers.get("Status") == "503":
        return "no JetStream stream listens on the subject (no responders)"
    try:
        reply = json.loads(data)
    except ValueError:
        return f"not a JetStream acknowledgement: {data[:80]!r}"
    if not isinstance(reply, dict) or "error" in reply or reply.get("stream") is None:
        err = reply.get("error") if isinstance(reply, dict) else reply
        return f"JetStream refused a message: {err}"
    return None


class AckedPublisher:
    """Publishes batches on connection ``nc`` and waits for JetStream to store each message;
    one batch at a time (the hub link's forwarding loop)."""

    def __init__(self, nc: Any):
        self._nc = nc
        self._inbox = ""
        self._n = 0
        self._missing: set[str] = set()
        self._done: asyncio.Future | None = None

    async def start(self) -> AckedPublisher:
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)
        return self

    async def _on_reply(self, msg: Any) -> None:
        done = self._done
        if done is None or done.done() or msg.subject not in self._missing:
            return  # a reply of a batch given up on
        failure = acks_failure(msg.data, msg.headers)
        if failure is not None:
            done.set_exception(RuntimeError(failure))
            return
        self._missing.discard(msg.subject)
        if not self._missing:
            done.set_result(None)

    async def publish_all(self, messages: Sequence[Publish], timeout: float) -> None:
        """Publish ``messages`` in order and return once JetStream has stored every one;
        ``TimeoutError`` when they are not all acknowledged within ``timeout`` seconds,
        ``RuntimeError`` when JetStream refused one (the caller sends the batch again)."""
        if not messages:
            return
        loop = asyncio.get_running_loop()
        done = self._done = loop.create_future()
        self._missing = set()
        timer = loop.call_later(timeout, _expire, done, len(messages), timeout)
        try:
            for subject, payload, headers in messages:
                self._n += 1
                reply = f"{self._inbox}.{self._n}"
                self._missing.add(reply)
                await self._nc.publish(subject, payload, reply=reply, headers=headers)
            await done
        finally:
            timer.cancel()
            self._done = None


def _expire(done: asyncio.Future, n: int, timeout: float) -> None:
    if not done.done():
        done.set_exception(TimeoutError(f"{n} acknowledgement(s) not in within {timeout} s"))
