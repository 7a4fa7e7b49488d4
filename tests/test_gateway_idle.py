"""An idle gateway sleeps: its worker and its hub link take a turn only when something is due
(a window, a PUBACK or mark, an upkeep look, a heartbeat), not on a fixed short tick."""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
from collections import Counter

import nats

from edge_runtime.config import load_config
from edge_runtime.gateway import TICK_S, Gateway
from edge_runtime.ingest.mqtt_intake import Backoff
from edge_runtime.transport.outbox_pump import MARK_IDLE_S, OutboxPump

IDLE_S = 1.0  # edge_runtime.gateway.IDLE_S

pytest_plugins = ["tests.nats_server"]


class Transport:
    """What the pump asks a transport while deciding how long the worker may sleep."""

    window = 200

    def __init__(self, inflight: int = 0, connected: bool = True):
        self.inflight, self.connected = inflight, connected


def pump() -> OutboxPump:
    p = OutboxPump(None, {"sent": 0}, Counter(), Backoff(), lambda: True, threading.Lock())
    p.backlog = False
    return p


def test_the_pump_lets_the_worker_sleep_until_something_is_due():
    p = pump()
    window = Transport().window
    assert p.wait_s(None, TICK_S, IDLE_S) == IDLE_S  # no MQTT
    assert p.wait_s(Transport(), TICK_S, IDLE_S) == IDLE_S  # nothing in flight, nothing to mark
    # A trickle's rows in flight or to mark: taken and marked by the next event's turn or soon.
    assert p.wait_s(Transport(inflight=1), TICK_S, IDLE_S) == MARK_IDLE_S
    p.acked = [7]
    assert p.wait_s(Transport(), TICK_S, IDLE_S) == MARK_IDLE_S
    # Half the window in flight: its PUBACKs (which wake nobody) free room for the next rows.
    assert p.wait_s(Transport(inflight=window // 2), TICK_S, IDLE_S) == TICK_S
    assert p.wait_s(Transport(connected=False), TICK_S, IDLE_S) == TICK_S
    p.fresh.append(object())
    assert p.wait_s(Transport(), TICK_S, IDLE_S) == TICK_S


def test_an_idle_worker_takes_a_turn_a_second_not_one_a_tick(tmp_path):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path),
           "SHELFCAST_MQTT_ENABLED": "false", "SHELFCAST_UPLINK_INTERVAL_S": "0.05"}  # fmt: skip
    gw = Gateway(load_config(env=env))
    turns = []
    real = gw.intake.run_once
    gw.intake.run_once = lambda: turns.append(1) or real()
    gw.start()
    try:
        time.sleep(0.3)  # the start's own turns
        before = len(turns)
        time.sleep(1.5)
        assert len(turns) - before <= 3  # was 75 at a 20 ms tick
        for i in (1, 2):  # the first commit carries a window; the worker writes the second's
            gw.ingest({"event_id": f"e{i}", "store_id": "S1", "sku": "A", "type": "receipt",
                       "qty": 1, "event_time": "2026-01-05T08:00:00+00:00",
                       "source": "wms"})  # fmt: skip
        assert gw.uplink.waiting
        t = time.monotonic()
        while gw.uplink.waiting and time.monotonic() - t < 1.0:
            time.sleep(0.005)
        assert time.monotonic() - t < 0.2  # its due time, not a second's sleep
    finally:
        t = time.monotonic()
        gw.close()
    assert time.monotonic() - t < IDLE_S / 2  # close wakes the sleeping worker


class CountingSelector(selectors.DefaultSelector):
    """Counts the event loop's turns (one select a turn)."""

    turns = 0

    def select(self, timeout=None):
        CountingSelector.turns += 1
        return super().select(timeout)


def test_an_idle_hub_link_does_not_poll(nats_server, tmp_path):
    from edge_runtime.transport.jetstream_uplink import JetStreamUplink

    class Link(JetStreamUplink):
        def _run(self) -> None:
            loop = asyncio.SelectorEventLoop(CountingSelector())
            try:
                loop.run_until_complete(self._main())
            finally:
                loop.close()

    async def streams() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await js.add_stream(name="UP", subjects=["shelfcast.S1.*"])
        await nc.close()

    asyncio.run(streams())
    link = Link(nats_server.url, str(tmp_path / "ledger.sqlite"), "S1", ingest=lambda e: None,
                heartbeat_s=60.0).start()  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not link.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        before = CountingSelector.turns
        time.sleep(3.0)
        # A poll for missed wakes a second, one expiring pull request at most: a few turns each.
        assert CountingSelector.turns - before <= 15  # was ~45: a 0.1 s poll, 0.25 s, 1 s
    finally:
        t = time.monotonic()
        link.close()
    assert time.monotonic() - t < 2.0


class AckingTransport(Transport):
    """Acknowledges the one row a turn a trickle's sale brings."""

    broker_dropped = None

    def __init__(self):
        super().__init__()
        self.seq = 0

    def take_acked(self) -> list[int]:
        self.seq += 1
        return [self.seq]

    def publish(self, rows) -> None:
        pass


class CountingOutbox:
    def __init__(self):
        self.marks: list[list[int]] = []

    def mark_sent(self, seqs, by_kind) -> int:
        self.marks.append(list(seqs))
        return len(seqs)


def test_a_trickle_marks_its_acknowledged_rows_in_batches_not_one_transaction_a_sale(
    monkeypatch,
):
    box = CountingOutbox()
    p = OutboxPump(box, {"sent": 0}, Counter(), Backoff(), lambda: True, threading.Lock())
    p.backlog = False
    clock = [1000.0]
    monkeypatch.setattr("edge_runtime.transport.outbox_pump.time.monotonic", lambda: clock[0])
    t = AckingTransport()
    for _ in range(15):  # 15 sales a second, a pump turn each
        p.pump(t)
        clock[0] += 1 / 15
    assert len(box.marks) <= 5  # not 15: each mark carries several sales' rows
    assert sum(len(m) for m in box.marks) + len(p.acked) == 15  # none lost meanwhile
