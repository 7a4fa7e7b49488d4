"""The rollout state machine on its own (hub/rollout.py): the transitions the end-to-end tests
(tests/test_hub_rollout.py) do not reach in their time, fed reports and a clock by hand."""

from __future__ import annotations

import json
import tarfile
from io import BytesIO

import pytest

from hub.rollout import Command, Rollout, Thresholds, check_canaries
from hub.rollout_desk import archive_metadata, served_stores


def installed(rid="r1", action="install", **more):
    return {"rollout_id": rid, "action": action, "state": "installed", "events": 0, **more}


def test_promotion_waits_for_the_observation_then_covers_the_rest_of_the_fleet():
    r = Rollout("r1", "v2", ["S1", "S2"], Thresholds(observe_s=100))
    assert r.start(0) == [Command("S1", "install"), Command("S2", "install")]
    assert r.report("S1", installed(), 1) == [] and r.phase == "canary"
    r.report("S2", installed(), 5)
    assert r.phase == "observing" and r.observe_until == 105
    assert r.tick(104, ["S1", "S2", "S3", "S4"]) == []
    assert r.tick(105, ["S1", "S2", "S3", "S4"]) == [
        Command("S3", "install"),
        Command("S4", "install"),
    ]
    r.report("S3", installed(), 106)
    assert r.phase == "promoting" and not r.deciding  # S4 is offline: the next rollout may go
    r.report("S4", {**installed(), "state": "refused", "error": "disk full"}, 500)
    assert r.phase == "promoted" and r.status()["stores"]["S4"]["report"]["error"] == "disk full"


def test_a_bundle_that_names_its_stores_is_promoted_to_those_stores_only():
    r = Rollout("r1", "v2", ["S1"], Thresholds(observe_s=0), serves=["S1", "S3"])
    r.start(0)
    r.report("S1", installed(), 1)
    assert r.tick(2, ["S1", "S2", "S3", "S4"]) == [Command("S3", "install")]
    assert r.status()["serves"] == ["S1", "S3"]


def test_the_stores_a_bundle_serves_come_from_its_metadata_and_bound_its_canaries():
    meta = json.dumps({"model_version": "v2", "stores": ["TX_2", "TX_1"]}).encode()
    out = BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("metadata.json")
        info.size = len(meta)
        tar.addfile(info, BytesIO(meta))
    serves = served_stores(archive_metadata(out.getvalue()))
    assert serves == ["TX_1", "TX_2"]
    check_canaries(["TX_1"], serves)
    with pytest.raises(ValueError, match="canaries CA_1 are not among the stores the bundle"):
        check_canaries(["TX_1", "CA_1"], serves)
    assert served_stores({"model_version": "v1"}) is None  # names none: every store


def test_a_silent_canary_halts_after_the_install_timeout():
    r = Rollout("r1", "v2", ["S1", "S2"], Thresholds(install_timeout_s=60))
    r.start(0)
    r.report("S1", installed(), 1)
    assert r.tick(60) == [] and r.phase == "canary"
    assert r.tick(61) == [Command("S1", "rollback"), Command("S2", "rollback")]
    assert r.reason == "canary S2: no answer within 60s"
    r.report("S1", installed(action="rollback", state="rolled_back"), 62)
    assert r.phase == "rolling_back"
    r.report("S2", installed(action="rollback", state="rolled_back"), 63)
    assert r.phase == "rolled_back"


def test_few_events_or_another_rollouts_reports_do_not_halt():
    r = Rollout("r1", "v2", ["S1"], Thresholds(min_events=50, observe_s=10))
    r.start(0)
    assert r.report("S1", installed(events=10, errors=5, error_rate=0.5), 1) == []
    assert r.report("S1", installed(rid="r0", events=500, error_rate=0.9), 2) == []
    assert r.phase == "observing"
    assert r.report("S1", installed(events=60, errors=5, error_rate=0.083), 3)
    assert r.phase == "rolling_back" and "error rate 0.083" in r.reason


def test_a_refusing_canary_is_not_sent_back_but_the_others_are():
    r = Rollout("r1", "v2", ["S1", "S2"], Thresholds())
    r.start(0)
    r.report("S1", installed(), 1)
    out = r.report("S2", {**installed(), "state": "refused", "error": "bad signature"}, 2)
    assert out == [Command("S1", "rollback")] and "S2 refused" in r.reason
    # S1's install report arriving late is about the install, not the rollback: ignored
    assert r.report("S1", installed(), 3) == [] and r.phase == "rolling_back"
    r.report("S1", installed(action="rollback", state="rolled_back"), 4)
    assert r.phase == "rolled_back"
