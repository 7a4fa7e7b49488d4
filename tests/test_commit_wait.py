"""``[ingest] commit_wait_s``: MQTT events found waiting may wait for more to share their commit,
never past the uplink window's due time, and each is acknowledged only after that commit."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from edge_runtime.gateway import Gateway
from edge_runtime.ingest.mqtt_intake import MqttIntake
from tests.test_gateway import config, event


def intake_with(wait_s: float, due_in: float | None, arrivals: list[bytes]):
    """An intake whose pause lets ``arrivals`` come in; returns it, its commits, acks, pauses."""
    commits, acks, pauses = [], [], []
    parse = lambda payload, topic_source: ([payload], [])  # noqa: E731 -- one event a payload
    intake = MqttIntake(
        parse,
        lambda events, rejections, source: commits.append(list(events)),
        lambda received: acks.extend((mid, len(commits)) for mid, _ in received),
        wait_s=wait_s,
        pause=lambda s: (pauses.append(s), [intake.put(p, "pos", 10 + i, 1) for i, p in
                                            enumerate(arrivals)]),
        due_in=None if due_in is None else (lambda: due_in),
    )  # fmt: skip
    return intake, commits, acks, pauses


def test_payloads_that_come_during_the_wait_share_one_commit_and_are_acked_after_it():
    intake, commits, acks, pauses = intake_with(0.05, None, [b"b", b"c"])
    intake.put(b"a", "pos", 1, 1)
    intake.run_once()
    assert pauses == [0.05]
    assert commits == [[b"a", b"b", b"c"]]
    assert acks == [(1, 1), (10, 1), (11, 1)]  # every ack after the one commit


def test_the_wait_ends_when_the_uplink_window_falls_due():
    intake, commits, _, pauses = intake_with(0.05, 0.01, [b"b"])
    intake.put(b"a", "pos", 1, 1)
    intake.run_once()
    assert pauses == [0.01] and commits == [[b"a", b"b"]]
    intake, commits, _, pauses = intake_with(0.05, 0.0, [b"b"])  # due now: no wait
    intake.put(b"a", "pos", 1, 1)
    intake.run_once()
    assert pauses == [] and commits == [[b"a"]]


def test_no_wait_without_a_payload_nor_by_default():
    intake, commits, _, pauses = intake_with(0.05, None, [b"b"])
    intake.run_once()  # nothing waiting: the worker's idle round does not sleep
    assert pauses == [] and commits == []
    intake, commits, _, pauses = intake_with(0.0, None, [b"b"])
    intake.put(b"a", "pos", 1, 1)
    intake.run_once()
    assert pauses == [] and commits == [[b"a"]]


@pytest.mark.mqtt
@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto_pub")
@pytest.mark.parametrize("wait_s", ["0", "0.5"])
def test_a_gateway_commits_sales_that_come_within_the_wait_together(tmp_path, mosquitto, wait_s):
    cfg = config(tmp_path, mosquitto, SHELFCAST_INGEST_COMMIT_WAIT_S=wait_s,
                 SHELFCAST_UPLINK_INTERVAL_S="0.5")  # fmt: skip
    with Gateway(cfg).start() as gw:
        assert gw.transport.wait_connected(10)
        gw.ingest([event(k, f"K{k}", "receipt", 50) for k in range(6)], "wms")
        gw.flush(10)
        groups = []
        commit = gw.intake._commit
        gw.intake._commit = lambda events, *rest: (
            groups.append(len(events)),
            commit(events, *rest),
        )
        lines = "".join(json.dumps(event(10 + k, f"K{k}", "sale", 1)) + "\n" for k in range(6))
        pub = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", "1", "-l",
             "-t", "shelfcast/S1/events/pos"], stdin=subprocess.PIPE, text=True,
        )  # fmt: skip
        for line in lines.splitlines(keepends=True):  # 30 ms apart: each alone without a wait
            pub.stdin.write(line)
            pub.stdin.flush()
            time.sleep(0.03)
        pub.stdin.close()
        pub.wait(10)
        deadline = time.monotonic() + 10
        while gw.counters["ingested"] < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gw.counters["ingested"] == 12  # every sale committed (and acknowledged)
        assert [gw.stock(f"K{k}").on_hand for k in range(6)] == [49] * 6
        assert sum(groups) == 6
        assert (len(groups) <= 2) if wait_s != "0" else (len(groups) >= 3), groups
