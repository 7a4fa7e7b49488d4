"""The network view's once-only rule against a real JetStream (KV buckets): a stock message
applied twice, out of order, by two workers at once, or after a worker died half-way through
it, counts once. Reserved units are summed from deltas, so any repeat shows in them."""

from __future__ import annotations

import asyncio
import gzip
import json

import nats

from hub.network_view import APPLIED, EARLY, REPEAT, NetworkView, _sku_change, sku_key
from hub.streams import ensure

pytest_plugins = ["tests.nats_server"]


def stock_message(seq, prev, rows):
    """What a gateway's link publishes: gzip UplinkDeltas JSON and its seq headers."""
    body = {"kind": "uplink", "store_id": "S1", "model_version": "m1", "deltas": rows,
            "window_end": f"2026-01-05T10:00:{seq:02d}+00:00"}  # fmt: skip
    headers = {"Shelfcast-Seq": str(seq), "Shelfcast-Prev-Seq": str(prev)}
    return "shelfcast.S1.stock", headers, gzip.compress(json.dumps(body).encode())


M1 = stock_message(3, 0, [["A", 5, 2, 5, 3, 2], ["B", 1, 1, 1, 0, 2]])
M2 = stock_message(7, 3, [["A", -1, 1, 4, 1, 2]])


async def _views(url, n=1):
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure(js)
    views = [await NetworkView(js).open() for _ in range(n)]
    return nc, views


async def _figure(view, sku):
    return (await view.stock.read(sku_key("S1", sku)))[1]


def run(coro):
    return asyncio.run(coro)


def test_a_repeat_and_an_early_message_count_once_in_order(nats_server):
    async def scenario():
        nc, (view,) = await _views(nats_server.url)
        assert await view.apply(*M2) == EARLY  # its predecessor has not been applied
        assert await view.apply(*M1) == APPLIED
        assert await view.apply(*M1) == REPEAT
        assert await view.apply(*M2) == APPLIED
        assert await view.apply(*M2) == REPEAT
        a, b = await _figure(view, "A"), await _figure(view, "B")
        await nc.close()
        return a, b

    a, b = run(scenario())
    assert (a["on_hand"], a["reserved"], a["atp"], a["seq"]) == (4, 3, 1, 7)
    assert (b["on_hand"], b["reserved"]) == (1, 1)


def test_a_worker_dead_half_way_through_a_message_leaves_nothing_to_double(nats_server):
    async def scenario():
        nc, (dead, alive) = await _views(nats_server.url, 2)
        payload = M1[2]
        body = json.loads(gzip.decompress(payload))
        # The first worker wrote SKU A, then died before B and before the store's cursor.
        row = body["deltas"][0]
        await dead.stock.patch(sku_key("S1", "A"), _sku_change("S1", [(3, body, row)]))
        assert await alive.apply(*M1, deliveries=2) == APPLIED
        a, b = await _figure(alive, "A"), await _figure(alive, "B")
        await nc.close()
        return a, b

    a, b = run(scenario())
    assert a["reserved"] == 2 and b["reserved"] == 1


def test_two_workers_applying_the_same_messages_at_once_count_them_once(nats_server):
    async def scenario():
        nc, views = await _views(nats_server.url, 2)
        await asyncio.gather(*(v.apply(*M1) for v in views))
        outcomes = []
        while EARLY in outcomes or not outcomes:
            outcomes = await asyncio.gather(*(v.apply(*M2) for v in views))
        a = await _figure(views[0], "A")
        await nc.close()
        return a

    a = run(scenario())
    assert a["reserved"] == 3 and a["on_hand"] == 4


def test_a_backlog_applied_as_one_batch_counts_each_message_once(nats_server):
    """A worker merges a store's queued messages (out of order, one repeated) into one write
    per SKU and one cursor move."""

    async def scenario():
        nc, (view,) = await _views(nats_server.url)
        merged = await view.apply_stock("S1", [(h, p, 1) for _, h, p in (M2, M1, M1)])
        a = await _figure(view, "A")
        await nc.close()
        return merged, a

    merged, a = run(scenario())
    assert merged == [APPLIED, APPLIED, REPEAT]
    assert (a["on_hand"], a["reserved"], a["atp"], a["seq"]) == (4, 3, 1, 7)


def test_a_crash_inside_a_merged_batch_leaves_nothing_to_double(nats_server):
    async def scenario():
        nc, (dead, alive) = await _views(nats_server.url, 2)
        b1, b2 = (json.loads(gzip.decompress(m[2])) for m in (M1, M2))
        # The first worker merged M1 and M2 and wrote SKU A (not B, not the cursor), then died.
        rows = [(3, b1, b1["deltas"][0]), (7, b2, b2["deltas"][0])]
        await dead.stock.patch(sku_key("S1", "A"), _sku_change("S1", rows))
        # Another worker gets them one at a time.
        assert await alive.apply(*M1, deliveries=2) == APPLIED
        assert await alive.apply(*M2, deliveries=2) == APPLIED
        a, b = await _figure(alive, "A"), await _figure(alive, "B")
        await nc.close()
        return a, b

    a, b = run(scenario())
    assert (a["reserved"], a["on_hand"], a["seq"]) == (3, 4, 7)
    assert (b["reserved"], b["on_hand"]) == (1, 1)


def test_figures_ahead_of_the_cursor_go_on_here_and_count_once_elsewhere(nats_server):
    """A worker writes a batch's figures and moves the store's cursor later (``settle``): it
    goes on from its own figures meanwhile, and a worker that takes the store over before the
    cursor moved applies those messages again without counting them twice."""

    async def scenario():
        nc, (first, second) = await _views(nats_server.url, 2)
        m1, m2 = [(h, p, 1) for _, h, p in (M1, M2)]
        assert await first.apply_stock("S1", [m1], settle=False) == [APPLIED]
        assert await first.apply_stock("S1", [m2], settle=False) == [APPLIED]  # not early
        unsettled = (await second.cursor.read("S1"))[1]
        # The first worker dies here: the second gets both messages again.
        assert await second.apply_stock("S1", [m1, m2]) == [APPLIED, APPLIED]
        a, b = await _figure(second, "A"), await _figure(second, "B")
        await first.settle("S1")  # a late settle never moves the cursor back
        cursor = (await second.cursor.read("S1"))[1]
        await nc.close()
        return unsettled, a, b, cursor

    unsettled, a, b, cursor = run(scenario())
    assert unsettled is None
    assert (a["on_hand"], a["reserved"], a["seq"]) == (4, 3, 7)
    assert (b["on_hand"], b["reserved"]) == (1, 1)
    assert cursor["seq"] == 7


def alert(kind, **fields):
    return f"shelfcast.S1.{kind}", {}, json.dumps({"kind": kind, "sku": "A", **fields}).encode()


async def _writes(js) -> int:
    return (await js.stream_info("KV_shelfcast_stock")).state.last_seq


def test_an_alerts_notes_on_a_figure_are_one_write_and_a_repeat_none(nats_server):
    """A replenishment alert's confidence and reorder point, and a batch of alerts and a
    conflict about one SKU, each cost the SKU's figure one write; one that says what the
    figure says already costs none."""

    async def scenario():
        nc, (view,) = await _views(nats_server.url)
        js = nc.jetstream()
        start = await _writes(js)
        await view.apply(*alert("replenishment", confidence=0.8, reorder_point=7.5))
        one = await _writes(js) - start
        conflict = {"message_id": "c1", "rule": "last_unit", "qty_requested": 1}
        outcomes = await view.apply_many(
            "shelfcast.S1.replenishment",
            [alert("replenishment", confidence=c, reorder_point=r)[1:] for c, r in
             ((0.7, 8.0), (0.6, 9.0), (0.6, 9.5))],
        )  # fmt: skip
        await view.apply(*alert("conflict", **conflict))
        batch = await _writes(js) - start - one
        await view.apply(*alert("replenishment", confidence=0.6, reorder_point=9.5))
        repeat = await _writes(js) - start - one - batch
        figure = await _figure(view, "A")
        await nc.close()
        return one, outcomes, batch, repeat, figure

    one, outcomes, batch, repeat, figure = run(scenario())
    assert (one, batch, repeat) == (1, 2, 0)  # the batch: one write, the conflict: one
    assert outcomes == [APPLIED] * 3
    assert (figure["ledger_confidence"], figure["reorder_point"]) == (0.6, 9.5)
    assert figure["last_conflict"]["message_id"] == "c1"
