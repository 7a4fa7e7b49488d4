"""The hub link's publisher against a real nats-server: each message stored as given (subject,
headers, payload), a batch returns only once all are stored, and a message no stream takes or
a missing acknowledgement raises, so the link sends the batch again."""

from __future__ import annotations

import asyncio

import nats

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
