"""The MQTT intake: payloads the broker delivered, committed in groups and acknowledged only
after their commit; held and retried with back-off while the store refuses writes.

Why groups: one ledger transaction per payload would cost a fsync each. Payloads of one source
are committed together (up to ``GROUP_MAX_EVENTS`` events); each is still parsed on its own,
so a rejection keeps its index in its payload. A store failure acknowledges nothing: the
payloads stay here (the broker would redeliver them anyway) and nothing new is taken meanwhile.

Payloads group by themselves only while the worker is busy. With ``wait_s`` (``[ingest]
commit_wait_s``) the worker that finds payloads waiting lets more come for up to that long,
never past the uplink window's due time (``due_in``): then one commit, its fsync, the worker's
round and the window's own write serve all of them, at the price of that wait in their
acknowledgement. With a short uplink window (a hub's online view) the events wait for the
window they would have waited for anyway, so what the hub sees is not later.

>>> intake = MqttIntake(lambda p, topic_source: ([], []), lambda *a: None, lambda acks: None)
>>> intake.put(b"[]", "pos", 1, 1); intake.run_once(); intake.empty(), intake.held
(True, [])
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

from edge_runtime.store.events import MAX_EVENTS_PER_PAYLOAD, Event, Rejection
from edge_runtime.store.store_failure import StoreError

log = logging.getLogger(__name__)

GROUP_MAX_EVENTS = min(5000, MAX_EVENTS_PER_PAYLOAD)  # events per ledger transaction
TAKE_MAX = 10_000  # payloads taken from the inbox per round
# A refused write (full disk) is retried after these pauses, doubling: cheap (the write fails
# fast) and quick to resume once space is back.
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0

Item = tuple[bytes, str, int, int]  # payload, source (the topic's level), mid, qos
Parse = Callable[..., tuple[list[Event], list[Rejection]]]
Commit = Callable[[list[Event], list[Rejection], str], object]  # raises StoreError: none kept
Ack = Callable[[list[tuple[int, int]]], None]  # (mid, qos) of payloads committed, in order


class Backoff:
    """The pause before the next attempt at a write the store refused, doubling each time.

    >>> b = Backoff(); b.grow(); b.grow(); b.s
    0.4
    """

    def __init__(self) -> None:
        self.s = 0.0
        self.at = 0.0

    def grow(self) -> None:
        self.s = min(RETRY_MAX_S, max(RETRY_MIN_S, self.s * 2))
        self.at = time.monotonic() + self.s

    def waiting(self) -> bool:
        return time.monotonic() < self.at


class MqttIntake:
    """Payloads from MQTT to the ledger (see the module docstring). ``commit`` stores one
    group; ``ack`` acknowledges a group's payloads to the broker after its commit; ``wake``
    is set when a payload arrives (the worker waits on it)."""

    def __init__(self, parse: Parse, commit: Commit, ack: Ack,
                 wake: threading.Event | None = None, wait_s: float = 0.0,
                 pause: Callable[[float], object] = time.sleep,
                 due_in: Callable[[], float] | None = None):  # fmt: skip
        self._parse, self._commit, self._ack = parse, commit, ack
        self.wait_s = wait_s  # how long waiting payloads may wait for more to share their commit
        self._due_in = due_in  # seconds until the uplink window falls due: the wait ends then
        self._pause = pause  # sleeps (the gateway's: ends early when it stops)
        self.backoff = Backoff()
        self._wake = wake  # set by each put: the worker's cue
        self._inbox: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.held: list[Item] = []  # payloads the store refused: retried first, unacknowledged
        self.store_problem: str | None = None  # the ledger refused a write; not yet resolved

    def put(self, payload: bytes, source: str, mid: int, qos: int) -> None:
        self._inbox.put((payload, source, mid, qos))
        wake = self._wake
        # Only when not set already: a set takes a lock and notifies, on paho's thread for
        # every message of a backlog, and once per round of the worker is all it needs.
        if wake is not None and not wake.is_set():
            wake.set()

    def empty(self) -> bool:
        return self._inbox.empty()

    def run_once(self) -> None:
        """Ingest what MQTT delivered. After a store failure the unacknowledged payloads are
        held here and retried first, with backoff, and nothing new is taken meanwhile."""
        if self.held:
            if self.backoff.waiting():
                return
            items, self.held = self.held, []
        else:
            self._wait_for_company()
            items = []
            try:
                while len(items) < TAKE_MAX:
                    items.append(self._inbox.get_nowait())
            except queue.Empty:
                pass
        if not items:
            return
        try:
            self.held = self._ingest(items)
        except Exception:  # a bug, not the store: logged; unacknowledged, redelivered later
            log.exception("ingest of %d MQTT payload(s) failed", len(items))
        if self.held:
            self.backoff.grow()
        else:
            self.backoff.s = 0.0

    def _wait_for_company(self) -> None:
        """Let the payloads of the next ``wait_s`` share the commit of those waiting (see the
        module docstring)."""
        if self.wait_s <= 0 or self._inbox.empty():
            return
        pause = self.wait_s if self._due_in is None else min(self.wait_s, self._due_in())
        if pause > 0:
            self._pause(pause)

    def _ingest(self, items: list[Item]) -> list[Item]:
        """Commit payloads in few transactions; acknowledge each only after its commit.

        Returns the items not committed because the store failed (none acknowledged)."""
        done: set[int] = set()  # id() of items committed and acknowledged
        try:
            for source, events, rejections, members in self.groups(items):
                self._commit(events, rejections, source)  # a store failure raises: they wait
                self._ack([(mid, qos) for _, _, mid, qos in members])
                done.update(map(id, members))
        except StoreError as err:
            left = [item for item in items if id(item) not in done]
            self.store_failed(err, f"{len(left)} MQTT payload(s) held, not acknowledged")
            return left
        return []

    def groups(
        self, items: list[Item]
    ) -> Iterator[tuple[str, list[Event], list[Rejection], list[Item]]]:
        """``(source, events, rejections, items)`` to commit in order: each payload parsed on
        its own (rejections keep their index in it; the topic's source level is judged too),
        the payloads of one source together up to ``GROUP_MAX_EVENTS`` events."""
        groups: dict[str, tuple[list[Event], list[Rejection], list[Item]]] = {}
        for item in items:
            payload, source = item[0], item[1]
            events, rejections = self._parse(payload, topic_source=source)
            group = groups.setdefault(source, ([], [], []))
            group[0].extend(events)
            group[1].extend(rejections)
            group[2].append(item)
            if len(group[0]) + len(group[1]) >= GROUP_MAX_EVENTS:
                yield source, *groups.pop(source)
        for source, group in groups.items():
            yield source, *group

    def store_failed(self, err: StoreError, consequence: str) -> None:
        """Log a store failure once per episode; it lasts until nothing is held any more and
        the ledger's last write succeeded (a small write can fit on a nearly full disk while
        a batch does not)."""
        if self.store_problem is None:
            self.store_problem = str(err)
            log.error("%s: %s; retrying with backoff up to %g s", err, consequence, RETRY_MAX_S)

    def recovered(self, ledger_problem: str | None) -> bool:
        """True once, when a store failure episode ends (nothing held, the ledger writes)."""
        if self.store_problem and not self.held and ledger_problem is None:
            self.store_problem = None
            return True
        return False
