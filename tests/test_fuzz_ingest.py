"""10,000+ malformed or hostile messages through API ingest and through MQTT ingest: no crash,
each one dead-lettered with a reason, the ledger unchanged by them. Then mixed batches (valid
events beside duplicates, reused ids and implausible ones) through both: every item applied, an
idempotent duplicate or dead-lettered, none vanished, and both paths giving the same reasons.

The gateway is real (ledger, rule policy, outbox), the API is served by real uvicorn, the broker
is a real Mosquitto. Messages that are JSON values travel in batches of 500 (each item is still
judged on its own), broken ones travel alone; see ``tests/fuzz_messages.py``.
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer
from tests.fuzz_messages import (
    RUNTIME_CRASHERS,
    Hostile,
    expected,
    history,
    hostile_messages,
    mixed_payloads,
    mqtt_payloads,
    post_all,
    post_mixed,
    publish_all,
    publish_mixed,
)
from tests.mosquitto import Mosquitto, mosquitto_binary

TOKEN = "fuzz-token-0123456789"
N = 10_000


def gateway(tmp_path, broker: Mosquitto | None = None) -> Gateway:
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    if broker is None:
        return Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"}))
    cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)
    return Gateway(cfg).start()


def seed(gw: Gateway) -> None:
    gw.ingest(
        [
            {"event_id": f"seed-{i}", "store_id": "S1", "sku": f"F-{i}", "type": "receipt",
             "qty": 10 + i, "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
            for i in range(50)
        ],
        "seed",
    )  # fmt: skip


def snapshot(gw: Gateway) -> tuple:
    return gw.ledger.event_count(), gw.ledger.stocks(0, 10_000)


def dead_letters(gw: Gateway) -> tuple[int, int]:
    """(rows, rows without a reason) in the dead-letter store, read through its own connection."""
    with sqlite3.connect(gw.cfg.ledger_path) as conn:
        rows, blank = conn.execute(
            "SELECT count(*), coalesce(sum(reason IS NULL OR reason = ''), 0) FROM dead_letters"
        ).fetchone()
    return rows, blank


def test_api_ingest_dead_letters_every_hostile_message(tmp_path):
    gw = gateway(tmp_path)
    seed(gw)
    before = snapshot(gw)
    messages = hostile_messages(N, "S1", seed=7)
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
        counts = post_all(server.url, TOKEN, messages)
        assert httpx.get(server.url + "/health").status_code == 200  # still serving
    assert counts["5xx"] == 0 and counts["accepted"] == 0
    assert counts["rejected"] == N
    assert dead_letters(gw) == (N, 0)
    assert snapshot(gw) == before and gw.ledger.verify() == []
    gw.close()


def wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def run_mqtt_fuzz(
    tmp_path, messages: list[Hostile], timeout: float = 60, expected: int | None = None
) -> None:
    """Publish ``messages``; expect ``expected`` dead letters (default one per message)."""
    expected = len(messages) if expected is None else expected
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (make test installs it)")
    with Mosquitto(tmp_path / "broker") as broker:
        gw = gateway(tmp_path, broker)
        try:
            assert gw.transport.wait_connected(10)
            seed(gw)
            before = snapshot(gw)
            payloads = (
                [m.encode() for m in messages]
                if expected != len(messages)
                else mqtt_payloads(messages)
            )
            publish_all(broker.port, payloads)
            wait_for(lambda: dead_letters(gw)[0] >= expected, timeout)
            assert dead_letters(gw) == (expected, 0)
            assert gw._worker is not None and gw._worker.is_alive()  # no crash
            assert snapshot(gw) == before and gw.ledger.verify() == []
        finally:
            gw.close()


@pytest.mark.mqtt
def test_mqtt_ingest_dead_letters_every_hostile_message(tmp_path):
    messages = [
        m for m in hostile_messages(N + 1500, "S1", seed=8) if m.category not in RUNTIME_CRASHERS
    ]
    assert len(messages) >= N
    run_mqtt_fuzz(tmp_path, messages[: N + 200])


@pytest.mark.mqtt
def test_mqtt_ingest_dead_letters_payloads_the_parser_crashes_on(tmp_path):
    messages = [m for m in hostile_messages(3000, "S1", seed=9) if m.category in RUNTIME_CRASHERS]
    run_mqtt_fuzz(tmp_path, messages, timeout=30)


@pytest.mark.mqtt
def test_mqtt_large_batch_with_one_poisonous_event_judges_every_event(tmp_path):
    # A batch over the gateway's 64 KiB grouping limit takes its own path; one event in it the
    # parser crashes on must still leave every other event judged on its own.
    padding = "p" * 250  # a long (valid-length) reason pushes the batch past 64 KiB
    events = [
        {"event_id": f"big-{i}", "store_id": "S9", "sku": "A", "type": "sale", "qty": 1,
         "event_time": "2026-01-05T10:00:00+00:00", "source": "pos", "reason": padding}
        for i in range(299)
    ]  # fmt: skip
    events.append({**events[0], "event_id": "big-poison", "store_id": "S1", "type": ["sale"]})
    run_mqtt_fuzz(tmp_path, [Hostile("large_batch", obj=events)], timeout=10, expected=300)


# ---- mixed batches: every item applied, an idempotent duplicate, or dead-lettered ----------------

MIXED = 400  # payloads: ~2,000 items


def ledger_counts(gw: Gateway) -> tuple[int, int]:
    """(events, dead letters) in the ledger file, read through its own connection."""
    with sqlite3.connect(gw.cfg.ledger_path) as conn:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    return events, dead


def reasons(gw: Gateway) -> list[tuple]:
    """Every dead letter's (field, reason, index in its payload), sorted."""
    with sqlite3.connect(gw.cfg.ledger_path) as conn:
        rows = conn.execute("SELECT field, reason, batch_index FROM dead_letters").fetchall()
    return sorted(rows, key=repr)


@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory) -> dict:
    """The same mixed payloads through HTTP (real uvicorn) and MQTT (real Mosquitto), each into
    a gateway holding the same history; what each ledger and each path said."""
    payloads = mixed_payloads(MIXED, "S1", seed=11)
    runs = {}
    tmp = tmp_path_factory.mktemp("mixed-http")
    gw = gateway(tmp)
    gw.ingest(history("S1"), "seed")
    before = ledger_counts(gw)
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
        said = post_mixed(server.url, TOKEN, payloads)
    after = ledger_counts(gw)
    runs["http"] = {"said": said, "applied": after[0] - before[0], "dead": after[1] - before[1],
                    "duplicates": said["duplicate"], "reasons": reasons(gw),
                    "sent": [m for m in payloads if m.topic_ok], "verify": gw.ledger.verify()}  # fmt: skip
    gw.close()
    if mosquitto_binary() is None:
        return runs
    tmp = tmp_path_factory.mktemp("mixed-mqtt")
    with Mosquitto(tmp / "broker") as broker:
        gw = gateway(tmp, broker)
        try:
            assert gw.transport.wait_connected(10)
            gw.ingest(history("S1"), "seed")
            before, dups = ledger_counts(gw), gw.counters["duplicates"]
            publish_mixed(broker.port, payloads)
            total = expected(payloads)

            def settled() -> bool:
                events, dead = ledger_counts(gw)
                done = events - before[0] + dead - before[1] + gw.counters["duplicates"] - dups
                return done >= sum(total.values())

            wait_for(settled, 60)
            time.sleep(0.5)  # anything beyond the expected count would show up too
            after = ledger_counts(gw)
            runs["mqtt"] = {"applied": after[0] - before[0], "dead": after[1] - before[1],
                            "duplicates": gw.counters["duplicates"] - dups,
                            "reasons": reasons(gw), "sent": payloads,
                            "verify": gw.ledger.verify()}  # fmt: skip
        finally:
            gw.close()
    return runs


def check_accounting(run: dict) -> None:
    want = expected(run["sent"])
    got = {"applied": run["applied"], "duplicate": run["duplicates"], "refused": run["dead"]}
    assert sum(got.values()) == sum(want.values()), (got, want)  # none vanished
    assert got == want  # and each met its fate: implausible ones were not applied
    assert run["verify"] == []


def test_mixed_batches_over_http_lose_nothing(mixed_runs):
    run = mixed_runs["http"]
    assert run["said"]["5xx"] == 0
    assert {k: run["said"][k] for k in ("applied", "duplicate", "refused")} == expected(run["sent"])
    check_accounting(run)


@pytest.mark.mqtt
def test_mixed_batches_over_mqtt_lose_nothing(mixed_runs):
    if "mqtt" not in mixed_runs:
        pytest.skip("mosquitto not installed (make test installs it)")
    run = mixed_runs["mqtt"]
    check_accounting(run)
    topic = [r for r in run["reasons"] if r[0] == "topic"]
    unknown = sum(len(m.fates) for m in run["sent"] if not m.topic_ok)
    assert len(topic) == unknown > 0 and all("is not one of" in r[1] for r in topic)


@pytest.mark.mqtt
def test_mqtt_and_http_judge_a_payload_alike(mixed_runs):
    if "mqtt" not in mixed_runs:
        pytest.skip("mosquitto not installed (make test installs it)")
    over_mqtt = [r for r in mixed_runs["mqtt"]["reasons"] if r[0] != "topic"]
    assert over_mqtt == mixed_runs["http"]["reasons"]
