"""The floor benchmark's minimal store process and hub worker (``benchmarks/hub_floor*.py``)
against a real Mosquitto and a real JetStream: the store commits a sale before anything else,
acknowledges it to the broker only after JetStream has acknowledged its stock message, and the
worker puts each store x SKU's newest on hand in the stock bucket."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import nats
import paho.mqtt.client as mqtt

from benchmarks.hub import GatewayProcess
from benchmarks.hub_floor import STORE_SCRIPT, FloorWorker
from benchmarks.hub_floor_worker import FLOOR_STREAM, ensure_floor, unapplied
from hub.live_view import LiveView
from hub.network_view import sku_key
from hub.streams import STOCK_BUCKET
from tests.mosquitto import wait

pytest_plugins = ["tests.nats_server"]


def _send(port: int, store: str, event: dict) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="till")
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(f"shelfcast/{store}/events/pos", json.dumps(event), qos=1).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


def _stock_messages(url: str) -> list[dict]:
    async def read() -> list[dict]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        try:
            last = (await js.stream_info(FLOOR_STREAM)).state.last_seq
            return [json.loads((await js.get_msg(FLOOR_STREAM, s)).data)
                    for s in range(1, last + 1)]  # fmt: skip
        finally:
            await nc.close()

    return asyncio.run(read())


def _ledger_ids(path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT event_id FROM events")]


def test_a_sale_is_committed_first_and_acknowledged_only_after_jetstream(
    mosquitto, nats_server, tmp_path
):
    def start() -> GatewayProcess:
        gw = GatewayProcess("S1", tmp_path, mosquitto.port, nats_server.url, [], False,
                            script=STORE_SCRIPT)  # fmt: skip
        gw.expect("ready")
        return gw

    ledger = tmp_path / "S1.floor.sqlite"
    gw = start()
    # No stream takes the store's stock subject yet: JetStream cannot acknowledge the publish.
    _send(mosquitto.port, "S1", {"event_id": "c1", "type": "cycle_count", "sku": "A", "qty": 5})
    assert wait(lambda: _ledger_ids(ledger) == ["c1"], 20), "the count was never committed"
    gw.proc.kill()  # committed, publish unacknowledged: the broker must still hold it
    gw.wait()

    async def make_stream() -> None:
        nc = await nats.connect(nats_server.url)
        await ensure_floor(nc.jetstream())
        await nc.close()

    asyncio.run(make_stream())
    gw = start()  # the broker delivers the count again; the ledger already holds it
    assert wait(lambda: len(_stock_messages(nats_server.url)) == 1, 20)
    assert _stock_messages(nats_server.url)[0]["on_hand"] == {"A": 5}
    assert _ledger_ids(ledger) == ["c1"]
    assert gw.ask("drain") == "drained"
    gw.quit()
    gw.wait()

    gw = start()  # acknowledged this time: nothing of A comes again, only the new sale of B
    _send(mosquitto.port, "S1", {"event_id": "s1", "type": "sale", "sku": "B", "qty": 1})
    assert wait(lambda: len(_stock_messages(nats_server.url)) == 2, 20)
    assert _stock_messages(nats_server.url)[1]["on_hand"] == {"B": 0}
    assert json.loads(gw.ask("stock A")) == 5
    gw.quit()
    gw.wait()


def test_the_worker_puts_each_store_sku_newest_figure_and_acknowledges(nats_server, tmp_path):
    worker = FloorWorker(nats_server.url, tmp_path / "worker.log")
    try:

        async def scenario() -> dict:
            nc = await nats.connect(nats_server.url)
            js = nc.jetstream()
            for seq, on_hand in ((1, {"A": 5, "B": 2}), (2, {"A": 4})):
                body = json.dumps({"seq": seq, "on_hand": on_hand}).encode()
                await js.publish("shelfcast.S1.stock", body, headers={"Nats-Msg-Id": f"m{seq}"})
            for _ in range(200):
                if await unapplied(js) == 0:
                    break
                await asyncio.sleep(0.05)
            left = await unapplied(js)
            kv = await js.key_value(STOCK_BUCKET)
            view = LiveView()
            for sku in ("A", "B"):
                view.put(STOCK_BUCKET, sku_key("S1", sku),
                         json.loads((await kv.get(sku_key("S1", sku))).value))  # fmt: skip
            await nc.close()
            return {"left": left, "view": view}

        out = asyncio.run(scenario())
    finally:
        worker.stop()
    assert out["left"] == 0
    assert out["view"].by_sku["A"]["S1"]["on_hand"] == 4
    assert out["view"].by_sku["A"]["S1"]["seq"] == 2
    assert out["view"].by_sku["B"]["S1"]["on_hand"] == 2
