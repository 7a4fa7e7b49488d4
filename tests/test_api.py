"""The HTTP API over a real ledger, served by real uvicorn on a free loopback port."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from api.app import create_app
from api.runtime import LedgerRuntime, StateDirRuntime
from api.settings import ApiSettings
from edge_runtime.messages import ReplenishmentAlert, StockoutAlert
from edge_runtime.store.events import MAX_PAYLOAD_BYTES
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.outbox import Outbox
from tests.api_server import ApiServer

TOKEN = "test-token-123456"
STORE = "S1"


def event(event_id: str, sku: str = "A-1", kind: str = "receipt", qty=5, **extra) -> dict:
    when = extra.pop("event_time", "2026-01-05T08:00:00+00:00")
    return {
        "event_id": event_id,
        "store_id": STORE,
        "sku": sku,
        "type": kind,
        "qty": qty,
        "event_time": when,
        "source": "wms",
        **extra,
    }


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "state" / "ledger.sqlite", STORE)
    yield led
    led.close()


def serve(runtime, **settings):
    return ApiServer(create_app(runtime, ApiSettings(**settings))).start()


@pytest.fixture
def api(ledger):
    runtime = LedgerRuntime(ledger)
    server = serve(runtime, token=TOKEN)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c
    server.stop()
    runtime.close()


def test_health_and_readiness(api):
    assert api.get("/health").json()["store_id"] == STORE
    ready = api.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["checks"] == {"ledger": "ok", "bundle": "optional: no bundle installed"}


def test_single_event_is_durable_idempotent_and_visible_as_stock(api, ledger):
    first = api.post("/v1/events", json=event("r1"))
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    again = api.post("/v1/events", json=event("r1"))
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    stock = api.get("/v1/stock/A-1").json()
    assert (stock["on_hand"], stock["available"], stock["events"]) == (5, 5, 1)
    assert stock["last_event_time"].startswith("2026-01-05T08:00:00")
    assert ledger.event_count() == 1


def test_rejected_event_names_the_field_and_is_dead_lettered(api, ledger):
    response = api.post("/v1/events", json=event("bad", qty=-3))
    assert response.status_code == 422
    body = response.json()
    assert body["rejected"] == 1 and body["rejections"][0]["field"] == "qty"
    assert "qty must be > 0" in body["rejections"][0]["reason"]
    letters = ledger.dead_letters()
    assert letters[0]["source"] == "api" and letters[0]["field"] == "qty"
    assert ledger.event_count() == 0


def test_a_rejection_lists_every_problem_of_the_event(api):
    bad = {**event("bad2", qty=-3), "source": "till", "colour": "red"}
    body = api.post("/v1/events", json=bad).json()
    [rejection] = body["rejections"]
    fields = [p["field"] for p in rejection["problems"]]
    assert fields[0] == rejection["field"] and sorted(fields) == ["colour", "qty", "source"]


def test_batch_judges_each_event_on_its_own(api, ledger):
    batch = [event("b1"), event("b2", store_id="S9"), event("b3", sku="B", kind="sale", qty=1)]
    response = api.post("/v1/events/batch", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["rejections"][0]["index"] == 1 and body["rejections"][0]["field"] == "store_id"
    assert ledger.stock("B").on_hand == -1  # a sale beyond the book is kept and reported
    assert body["conflicts"] == 1


def test_broken_json_batch_is_refused_whole(api, ledger):
    response = api.post("/v1/events/batch", content=b'[{"event_id": ')
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["rejections"][0]["reason"]
    assert len(ledger.dead_letters()) == 1


def test_huge_payload_is_413_and_dead_lettered(api, ledger):
    huge = json.dumps([event(f"h{i}", reason="x" * 200) for i in range(20_000)]).encode()
    assert len(huge) > MAX_PAYLOAD_BYTES
    response = api.post("/v1/events/batch", content=huge)
    assert response.status_code == 413
    assert "exceeds" in response.json()["rejections"][0]["reason"]
    assert ledger.dead_letters()[0]["field"] == "payload"
    assert ledger.event_count() == 0


def test_huge_json_body_elsewhere_is_413_with_a_reason(api):
    skus = ["x" * 60] * 100_000
    response = api.post("/v1/predictions", json={"skus": skus})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_writes_need_the_token(ledger):
    runtime = LedgerRuntime(ledger)
    with serve(runtime, token=TOKEN) as server:
        no_token = httpx.post(server.url + "/v1/events", json=event("x"))
        assert no_token.status_code == 401 and no_token.headers["www-authenticate"] == "Bearer"
        assert no_token.json()["error"] == "unauthorized"
        wrong = httpx.post(
            server.url + "/v1/events", json=event("x"), headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        assert httpx.put(server.url + "/v1/bundle", content=b"x").status_code == 401
        assert httpx.get(server.url + "/v1/stock").status_code == 200  # reads open by default
    assert ledger.event_count() == 0 and ledger.dead_letters() == []


def test_no_token_configured_means_no_writes(ledger):
    with serve(LedgerRuntime(ledger)) as server:
        response = httpx.post(server.url + "/v1/events", json=event("x"))
        assert response.status_code == 403 and "no API token" in response.json()["message"]


def test_reads_can_be_closed(ledger):
    with serve(LedgerRuntime(ledger), token=TOKEN, reads_open=False) as server:
        assert httpx.get(server.url + "/v1/stock").status_code == 401
        assert httpx.get(server.url + "/metrics").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(server.url + "/v1/stock", headers=auth).status_code == 200
        assert httpx.get(server.url + "/health").status_code == 200  # probes stay open


def test_stock_pages_and_errors_are_json(api):
    api.post("/v1/events/batch", json=[event(f"p{i}", sku=f"SKU-{i:02d}") for i in range(25)])
    page = api.get("/v1/stock", params={"offset": 20, "limit": 10}).json()
    assert page["total"] == 25 and [s["sku"] for s in page["items"]] == [
        f"SKU-{i:02d}" for i in range(20, 25)
    ]
    missing = api.get("/v1/stock/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["message"]
    bad = api.get("/v1/stock", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["where"] == ["query.limit"]


def test_alerts_come_from_the_outbox_with_filters(api, ledger):
    box = Outbox(ledger.path)
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    box.put(
        [
            StockoutAlert(store_id=STORE, sku="A-1", model_version="m", probability=0.9,
                          created_at=t0),
            ReplenishmentAlert(store_id=STORE, sku="B", model_version="m", recommended_qty=6,
                               created_at=t0 + timedelta(hours=1)),
        ]
    )  # fmt: skip
    box.close()
    everything = api.get("/v1/alerts").json()["items"]
    assert [a["kind"] for a in everything] == ["replenishment", "stockout"]
    assert everything[0]["schema"] == 1
    only = api.get("/v1/alerts", params={"kind": "stockout"}).json()["items"]
    assert [a["sku"] for a in only] == ["A-1"]
    later = api.get("/v1/alerts", params={"since": "2026-01-05T09:30:00+00:00"}).json()["items"]
    assert [a["sku"] for a in later] == ["B"]
    assert api.get("/v1/alerts", params={"kind": "nonsense"}).status_code == 422


def test_predictions_without_a_bundle_are_a_clear_503(api):
    response = api.get("/v1/predictions/A-1")
    assert response.status_code == 503 and "no model bundle" in response.json()["message"]


def test_metrics_count_ingest(api):
    api.post("/v1/events/batch", json=[event("m1"), event("m2", qty="x")])
    text = api.get("/metrics").text
    assert 'shelfcast_events_ingested_total{transport="api"} 1.0' in text
    assert 'shelfcast_events_rejected_total{transport="api"} 1.0' in text
    assert "shelfcast_outbox_depth 0.0" in text


def test_state_dir_mode_reads_fresh_state_and_refuses_writes(ledger):
    ledger.ingest_raw([event("s1")])
    runtime = StateDirRuntime(ledger.path.parent)
    with serve(runtime, token=TOKEN) as server:
        assert httpx.get(server.url + "/v1/stock/A-1").json()["on_hand"] == 5
        ledger.ingest_raw([event("s2", kind="sale", qty=2)])  # the gateway keeps writing
        assert httpx.get(server.url + "/v1/stock/A-1").json()["on_hand"] == 3
        auth = {"Authorization": f"Bearer {TOKEN}"}
        refused = httpx.post(server.url + "/v1/events", json=event("s3"), headers=auth)
        assert refused.status_code == 503 and "read-only" in refused.json()["message"]
    runtime.close()
    assert ledger.event_count() == 2


def test_array_on_the_single_endpoint_is_refused_and_dead_lettered(api, ledger):
    response = api.post("/v1/events", json=[event("a1")])
    assert response.status_code == 422
    assert "must be a JSON object, got list" in response.json()["rejections"][0]["reason"]
    assert ledger.event_count() == 0 and len(ledger.dead_letters()) == 1


def test_poisonous_events_are_dead_lettered_beside_valid_ones(api, ledger):
    batch = [event("ok1"), event("x1", source={"a": 1}), event("x2", sku="\ud800"), event("ok2")]
    body = json.dumps(batch).encode()  # ensure_ascii keeps the lone surrogate as \\ud800
    response = api.post("/v1/events/batch", content=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert (got["accepted"], got["rejected"]) == (2, 2)
    assert sorted(r["index"] for r in got["rejections"]) == [1, 2]
    assert {d["field"] for d in ledger.dead_letters()} == {"source", "sku"}
    assert ledger.event_count() == 2


ODD_SKUS = ["a/b", "/lead", "trail/", "a//b", "é/ü", "%41", "%2F", "a?b", "a#b", "a b", "+1",
            "x;y", "A&B=C", "1.5kg", "a\\b", "~", "'", '"q"', " "]  # fmt: skip


def test_any_sku_the_ingest_accepts_reads_back(api, ledger):
    unreadable = ["..", ".", "a/../b", "./a", "tab\there", "nul\x00", "\u200b"]
    events = [event(f"k{i}", sku=sku, qty=i + 1) for i, sku in enumerate(ODD_SKUS + unreadable)]
    got = api.post("/v1/events/batch", json=events).json()
    assert got["accepted"] == len(ODD_SKUS)  # a SKU no URL can name is refused, with why
    assert {r["index"] for r in got["rejections"]} == set(range(len(ODD_SKUS), len(events)))
    assert all(r["field"] == "sku" for r in got["rejections"])
    for i, sku in enumerate(ODD_SKUS):
        response = api.get("/v1/stock/" + quote(sku, safe="/"))
        assert response.status_code == 200, (sku, response.text)
        assert (response.json()["sku"], response.json()["on_hand"]) == (sku, i + 1)
        encoded = api.get("/v1/stock/" + quote(sku, safe=""))  # "/" as %2F works too
        assert encoded.status_code == 200 and encoded.json()["sku"] == sku


def test_method_not_allowed_lists_every_documented_method(api):
    response = api.request("OPTIONS", "/v1/bundle")
    assert response.status_code == 405 and response.headers["allow"] == "GET, PUT"
