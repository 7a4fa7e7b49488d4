"""A gateway checks a bundle's models in ONNX Runtime once per bundle and trust: its restarts
open no session before a model is used, and nothing else gets through on that record."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edge_runtime.bundles import BundleTrust, verify
from edge_runtime.checked_models import CheckedModels
from edge_runtime.config import load_config
from edge_runtime.forecast.scoring import Scorer
from edge_runtime.gateway import Gateway
from feature_store.spec import names
from models.bundle import BundleError
from tests.signed_bundles import key_pair, make_bundle, public_key_env
from tests.tampered_bundles import CASES, REASONS

TRUST = BundleTrust(public_key=str(key_pair()[1]))


def test_models_are_checked_once_and_again_when_the_bundle_or_the_trust_changes(tmp_path):
    root, checked = make_bundle(tmp_path / "b"), CheckedModels(tmp_path / "bundle.checked")
    opened: dict = {}
    verify(root, TRUST, opened, checked)
    assert set(opened) == {"demand", "anomaly"}  # checked in ONNX Runtime, recorded
    again: dict = {}
    assert verify(root, TRUST, again, checked).model_version == "b" and again == {}
    for trust in (BundleTrust(TRUST.public_key, max_daily_units=50.0), BundleTrust(None, True)):
        assert not checked.covers(root, trust)  # another ceiling, another key: checked again
    other = make_bundle(tmp_path / "other")
    assert not checked.covers(other, TRUST)
    checked.path.write_text("not a digest\n")
    verify(root, TRUST, opened := {}, checked)
    assert set(opened) == {"demand", "anomaly"}


@pytest.mark.parametrize("case", ["outputs_nan", "outputs_negative", "off_reference"])
def test_a_record_never_lets_other_models_through_at_the_same_path(tmp_path, case):
    """Signed bundles whose models fail their checks, put where a checked bundle was: the
    record is of the files' digests and signature, not of the place."""
    root, checked = make_bundle(tmp_path / "b"), CheckedModels(tmp_path / "bundle.checked")
    verify(root, TRUST, None, checked)
    bad = CASES[case](tmp_path / case)
    shutil.rmtree(root)
    shutil.copytree(bad, root)
    with pytest.raises(BundleError, match=REASONS[case]):
        verify(root, TRUST, None, checked)


def test_a_restart_with_its_checked_bundle_opens_the_sessions_only_when_used(tmp_path):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
           "SHELFCAST_MQTT_ENABLED": "false", "SHELFCAST_BUNDLE": str(make_bundle(tmp_path / "b")),
           **public_key_env()}  # fmt: skip
    with Gateway(load_config(env=env)) as gw:
        assert set(gw.model.scorer.opened) == {"demand", "anomaly"}  # installed: checked
    with Gateway(load_config(env=env)) as gw:
        scorer = gw.model.scorer
        assert scorer.opened == [] and gw.bundle_problem is None
        x = np.random.default_rng(0).random((5, len(names())), dtype=np.float32)
        fresh = Scorer.from_bundle(gw.bundle)
        assert np.array_equal(scorer.demand(x)[0], fresh.demand(x)[0])
        assert scorer.opened == ["demand"]
        gw._open_sessions().join(30)  # what the worker starts after its first commit
        assert set(scorer.opened) == {"demand", "anomaly"}
