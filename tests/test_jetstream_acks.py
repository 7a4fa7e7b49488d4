"""The hub link's publisher against a real nats-server: each message stored as given (subject,
headers, payload), a batch returns only once all are stored, and a message no stream takes or
a missing acknowledgement raises, so the link sends the batch again."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from edge_runtime.transport.jetstream_acks import AckedPublisher

pytest_plugins = ["tests.nats_server"]


def test_a_batch_is_stored_as_given_and_a_repeat_is_dropped_by_its_id(nats_server):
    async def main() -> list:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await js.add_stream(name="UP", subjects=["up.>"], duplicate_window=60)
        pub = await AckedPublisher(nc).start()
        batch = [
            (f"up.S1.{kind}", bytes([i]) * 40, {"Nats-Msg-Id": f"m{i}", "Shelfcast-Seq": str(i)})
            for i, kind in enumerate(["stock", "stockout", "stock"], start=1)
        ]
        await pub.publish_all(batch, 5.0)
        await pub.publish_all(batch[:1], 5.0)  # re-sent after a crash: acknowledged, dropped
        sub = await js.pull_subscribe("up.>", durable="check")
        got = await sub.fetch(3, timeout=5)
        info = await js.stream_info("UP")
        await nc.close()
        return [(m.subject, m.data, dict(m.headers)) for m in got] + [info.state.messages]

    *got, count = asyncio.run(main())
    assert count == 3
    assert [(s, d, h["Nats-Msg-Id"], h["Shelfcast-Seq"]) for s, d, h in got] == [
        ("up.S1.stock", b"\x01" * 40, "m1", "1"),
        ("up.S1.stockout", b"\x02" * 40, "m2", "2"),
        ("up.S1.stock", b"\x03" * 40, "m3", "3"),
    ]


def test_no_stream_or_no_acknowledgement_raises(nats_server):
    async def main() -> list[str]:
        nc = await nats.connect(nats_server.url)
        pub = await AckedPublisher(nc).start()
        seen = []
        try:
            await pub.publish_all([("nowhere.x", b"a", {"Nats-Msg-Id": "x"})], 5.0)
        except RuntimeError as err:
            seen.append(str(err))
        await nc.subscribe("mute.x", cb=_ignore)  # a responder that never answers
        try:
            await pub.publish_all([("mute.x", b"a", {"Nats-Msg-Id": "y"})], 0.2)
        except TimeoutError as err:
            seen.append(str(err))
        await nc.close()
        return seen

    refused, timed_out = asyncio.run(main())
    assert "no responders" in refused
    assert "not in within 0.2 s" in timed_out


async def _ignore(msg) -> None:
    return None


def _window(n: int):
    from datetime import UTC, datetime

    from edge_runtime.transport.uplink import window_message

    end = datetime.now(UTC)
    return window_message(store_id="S1", model_version="r", window_start=end, window_end=end,
                          events=1, deltas=[(f"A{n}", 1, 0, 1, 1, 1)], exceptions=[])  # fmt: skip


def test_handed_rows_are_forwarded_without_a_read_and_a_gap_reads_sqlite(
    nats_server, tmp_path, monkeypatch
):
    from edge_runtime.store.outbox import Outbox
    from edge_runtime.transport import jetstream_uplink as module

    reads = []
    real = module.rows_after
    monkeypatch.setattr(module, "rows_after", lambda *a: reads.append(1) or real(*a))
    monkeypatch.setattr(module, "IDLE_POLL_S", 60.0)  # only wakes read: none times out

    async def stream() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().add_stream(
            name="UP", subjects=["shelfcast.S1.stock", "shelfcast.S1.state"]
        )
        await nc.close()

    asyncio.run(stream())
    box = Outbox(tmp_path / "ledger.sqlite")
    link = module.JetStreamUplink(nats_server.url, str(tmp_path / "ledger.sqlite"), "S1",
                                  heartbeat_s=60.0).start()  # fmt: skip
    try:
        link.wake(box.put([_window(1)]))
        assert link.wait_forwarded(10)
        first = len(reads)
        for n in range(2, 6):  # handed over: forwarded, SQLite not read
            link.wake(box.put([_window(n)]))
            deadline = time.monotonic() + 10
            while link.forwarded < n and time.monotonic() < deadline:
                time.sleep(0.01)
        assert link.forwarded == 5 and len(reads) == first
        box.put([_window(6)])  # a commit not handed over (a gap) ...
        link.wake(box.put([_window(7)]))  # ... found by the next handed one: SQLite is read
        deadline = time.monotonic() + 10
        while link.forwarded < 7 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert link.forwarded == 7 and len(reads) > first
    finally:
        link.close()
        box.close()

    async def stored() -> list[str]:
        nc = await nats.connect(nats_server.url)
        sub = await nc.jetstream().pull_subscribe("shelfcast.S1.stock", durable="check")
        got = await sub.fetch(7, timeout=5)
        await nc.close()
        return [m.headers["Shelfcast-Seq"] for m in got]

    assert asyncio.run(stored()) == [str(n) for n in range(1, 8)]


@pytest.mark.parametrize("fail", [asyncio.CancelledError(), RuntimeError("no ack")])
def test_a_batch_not_acknowledged_is_sent_again_even_when_cancelled(tmp_path, fail):
    from edge_runtime.store.outbox import Outbox
    from edge_runtime.transport.jetstream_uplink import JetStreamUplink

    class Publisher:
        def __init__(self, fail: BaseException | None):
            self.fail, self.sent = fail, []

        async def publish_all(self, batch, timeout) -> None:
            if self.fail is not None:
                raise self.fail
            self.sent.extend(h["Shelfcast-Seq"] for _, _, h in batch)

    box = Outbox(tmp_path / "ledger.sqlite")
    link = JetStreamUplink("nats://127.0.0.1:1", str(tmp_path / "ledger.sqlite"), "S1")
    try:
        assert asyncio.run(link._forward_once(Publisher(None))) == 0  # reads: all known
        link.wake(box.put([_window(1)]))  # handed over
        with pytest.raises(type(fail)):
            asyncio.run(link._forward_once(Publisher(fail)))
        ok = Publisher(None)
        assert asyncio.run(link._forward_once(ok)) == 1 and ok.sent == ["1"]
    finally:
        link.close()
        box.close()
