"""The API's live view across reconnects, against a real JetStream: each rewatch replaces the
key-value watches (their subscriptions do not pile up) and the view keeps following the buckets."""

from __future__ import annotations

import asyncio
import json

from hub.api import HubRuntime, HubSettings
from hub.live_view import read_cursors
from hub.streams import CURSOR_BUCKET, FLEET_BUCKET

pytest_plugins = ["tests.nats_server"]


async def _until(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the view never caught up"
        await asyncio.sleep(0.05)


def test_rewatching_twice_keeps_the_subscriptions_and_the_view_follows(nats_server):
    async def scenario():
        rt = HubRuntime(HubSettings(nats_url=nats_server.url, token=None))
        await rt.start()
        try:
            fleet = await rt.js.key_value(FLEET_BUCKET)
            subs = len(rt.nc._subs)
            for n in range(2):  # what the client's reconnected callback does
                await rt._rewatch()
                await asyncio.wait_for(rt._tasks[0], 30)  # the new watches have loaded
                await fleet.put(f"S{n}", json.dumps({"status": "online", "n": n}).encode())
                await _until(lambda n=n: rt.view.fleet.get(f"S{n}", {}).get("n") == n)
                assert len(rt.nc._subs) == subs, f"subscriptions grew after rewatch {n + 1}"
        finally:
            await rt.stop()

    asyncio.run(scenario())


def test_the_api_reads_cursors_for_the_fleet_report_and_does_not_follow_them(nats_server):
    """A cursor moves about once per two stock messages at a trickle: the API leaves the
    bucket unwatched (no consumer on it, no delivery per move) and reads it when asked."""

    async def scenario():
        rt = HubRuntime(HubSettings(nats_url=nats_server.url, token=None))
        await rt.start()
        try:
            info = await rt.js.stream_info(f"KV_{CURSOR_BUCKET}")
            assert info.state.consumer_count == 0, "the API follows every cursor move"
            cursors = await rt.js.key_value(CURSOR_BUCKET)
            await cursors.put("S1", json.dumps({"seq": 7, "at": "2026-01-05T10:00:00Z"}).encode())
            report = {
                r["store_id"]: r for r in rt.view.fleet_report(cursors=await read_cursors(rt.js))
            }
            assert (report["S1"]["last_stock_seq"], report["S1"]["last_figure_at"]) == (
                7,
                "2026-01-05T10:00:00Z",
            )
        finally:
            await rt.stop()

    asyncio.run(scenario())
