"""Concurrent ingest requests share transactions, yet each gets exactly its own answer."""

from __future__ import annotations

import asyncio

import httpx

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer

TOKEN = "group-token-0123456"


def event(event_id: str, qty=1, **more) -> dict:
    return {"event_id": event_id, "store_id": "S1", "sku": f"G-{event_id[-1]}", "type": "receipt",
            "qty": qty, "event_time": "2026-01-05T08:00:00+00:00", "source": "wms", **more}  # fmt: skip


def requests() -> list[tuple[str, object, dict]]:
    """(path, body, expected answer) — each expectation is what the request gets on its own."""
    out = []
    for i in range(300):
        kind = i % 5
        if kind == 0:
            out.append(
                ("/v1/events", event(f"s{i}"), {"accepted": 1, "rejected": 0, "status": 200})
            )
        elif kind == 1:
            bad = event(f"b{i}", qty=-1)
            out.append(("/v1/events", bad, {"accepted": 0, "rejected": 1, "status": 422}))
        elif kind == 2:
            body = [
                event(f"a{i}"),
                event(f"a{i}"),
                event(f"a{i}", qty=2),
                event(f"x{i}", store_id="S9"),
            ]  # a duplicate, a reused id, a foreign store
            out.append(("/v1/events/batch", body, {"accepted": 1, "duplicates": 1, "rejected": 2,
                                                   "index": [2, 3], "status": 200}))  # fmt: skip
        elif kind == 3:
            out.append(("/v1/events/batch", event(f"o{i}", source={}), {"accepted": 0, "rejected": 1,
                                                                        "status": 422}))  # fmt: skip
        else:
            out.append(
                ("/v1/events", [event(f"l{i}")], {"accepted": 0, "rejected": 1, "status": 422})
            )
    return out


async def fire(url: str, reqs) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=32)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as c:
        return await asyncio.gather(*(c.post(path, json=body) for path, body, _ in reqs))


def test_each_request_gets_its_own_answer_from_a_shared_commit(tmp_path):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    gw = Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"}))
    reqs = requests()
    app = create_app(gw, ApiSettings(token=TOKEN))
    committer, commits = app.state.committer, []
    real_ingest = committer._ingest

    def counted(payload, source):  # the real ingest, counted: how many transactions ran
        commits.append(len(payload) if isinstance(payload, list) else 1)
        return real_ingest(payload, source)

    committer._ingest = counted
    with ApiServer(app) as server:
        responses = asyncio.run(fire(server.url, reqs))
        replay = asyncio.run(fire(server.url, reqs[:50]))  # same events again: duplicates only
    for (path, _, want), response in zip(reqs, responses, strict=True):
        got = response.json()
        assert response.status_code == want["status"], (path, got)
        assert got["accepted"] == want["accepted"] and got["rejected"] == want["rejected"], got
        assert got["duplicates"] == want.get("duplicates", 0), got
        if "index" in want:
            assert sorted(r["index"] for r in got["rejections"]) == want["index"]
    assert sum(r.json()["accepted"] for r in replay) == 0
    assert max(commits) > 3  # requests did share commits
    valid = sum(w["accepted"] for _, _, w in reqs)
    assert gw.ledger.event_count() == valid
    gw.close()
