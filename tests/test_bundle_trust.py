"""Whose bundles a gateway runs and what their models may output: signatures, the reference set,
the atomic switch of the current bundle, and the keys training signs with."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.bundles import BundleTrust, install, verify, versions_dir
from edge_runtime.config import ConfigError, load_config
from edge_runtime.forecast.scoring import Scorer
from edge_runtime.gateway import Gateway
from feature_store.spec import ANOMALY_FEATURES, names, spec_dict
from models.bundle import BundleError, write_bundle
from shelfcast.cli import main
from tests.signed_bundles import key_pair, make_bundle, onnx_model, public_key_env
from tests.tampered_bundles import CASES, REASONS, constant_demand_model
from training.signing_key import signer_for

TRUST = BundleTrust(public_key=str(key_pair()[1]))


def test_a_signed_bundle_with_its_reference_set_is_accepted(tmp_path):
    bundle = verify(make_bundle(tmp_path / "good"), TRUST)
    assert bundle.model_version == "good"
    reference = json.loads((bundle.path / "reference.json").read_text())
    assert set(reference["models"]) == {"demand", "anomaly"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_tampered_bundle_is_refused_with_a_one_line_reason(tmp_path, case):
    root = CASES[case](tmp_path / case)
    with pytest.raises(BundleError) as refused:
        verify(root, TRUST)
    message = str(refused.value)
    assert REASONS[case] in message and "\n" not in message
    assert str(tmp_path) not in message  # the reason names files, never where they sit


def test_without_a_public_key_bundles_are_refused_unless_unsigned_ones_are_allowed(tmp_path):
    root = make_bundle(tmp_path / "b")
    with pytest.raises(BundleError, match=r"no public key .* allow_unsigned"):
        verify(root, BundleTrust())
    (root / "signature.json").unlink()
    assert verify(root, BundleTrust(allow_unsigned=True)).model_version == "b"
    # Allowing unsigned bundles never lets a wrong signature through when a key is configured.
    wrong = CASES["edited_metadata_other_key"](tmp_path / "other")
    with pytest.raises(BundleError, match="does not verify"):
        verify(wrong, BundleTrust(public_key=TRUST.public_key, allow_unsigned=True))


def test_a_bundle_without_a_reference_set_is_refused(tmp_path):
    models = {
        "demand": constant_demand_model(len(names()), 2.0),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
    }
    root = write_bundle(tmp_path / "b", models, spec_dict(), {"model_version": "b"})
    with pytest.raises(BundleError, match="no reference set"):
        verify(root, BundleTrust(allow_unsigned=True))


def test_the_ceiling_on_demand_is_the_gateways_setting(tmp_path):
    root = CASES["outputs_1e30"](tmp_path / "b")
    with pytest.raises(BundleError, match="plausible ceiling of 100000 units"):
        verify(root, TRUST)
    strict = BundleTrust(public_key=TRUST.public_key, max_daily_units=1.0)
    with pytest.raises(BundleError, match="ceiling of 1 units"):
        verify(make_bundle(tmp_path / "good"), strict)  # its row means reach above 1


# ---- the gateway ---------------------------------------------------------------------------


def gateway_env(tmp_path, **more) -> dict[str, str]:
    return {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
            "SHELFCAST_MQTT_ENABLED": "false", **more}  # fmt: skip


def test_the_gateway_refuses_a_tampered_bundle_at_start_naming_it(tmp_path):
    root = CASES["edited_metadata_unsigned"](tmp_path / "edited")
    env = gateway_env(tmp_path, SHELFCAST_BUNDLE=str(root), **public_key_env())
    with pytest.raises(BundleError, match=f"bundle {root} refused: the bundle is unsigned"):
        Gateway(load_config(env=env))
    assert not (tmp_path / "state" / "bundle").exists()


def test_a_configured_bundle_needs_a_key_or_the_development_switch(tmp_path):
    root = make_bundle(tmp_path / "b")
    with pytest.raises(ConfigError, match="no public key checks its signature"):
        load_config(env=gateway_env(tmp_path, SHELFCAST_BUNDLE=str(root)))
    with pytest.raises(ConfigError, match=r"model\.public_key: .* does not exist"):
        load_config(env=gateway_env(tmp_path, SHELFCAST_MODEL_PUBLIC_KEY=str(tmp_path / "no")))
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    env = gateway_env(tmp_path, SHELFCAST_MODEL_PUBLIC_KEY=str(not_a_key))
    with pytest.raises(BundleError, match=r"not-a-key\.pem is not a PEM public key"):
        Gateway(load_config(env=env))
    (root / "signature.json").unlink()
    env = gateway_env(tmp_path, SHELFCAST_BUNDLE=str(root), SHELFCAST_MODEL_ALLOW_UNSIGNED="true")
    with Gateway(load_config(env=env)) as gw:
        assert gw.bundle.model_version == "b"


def test_an_installed_bundle_signed_by_another_key_is_not_used_after_a_restart(tmp_path):
    env = gateway_env(tmp_path, SHELFCAST_BUNDLE=str(make_bundle(tmp_path / "b")),
                      **public_key_env())  # fmt: skip
    with Gateway(load_config(env=env)) as gw:
        assert gw.bundle.model_version == "b"
    other = tmp_path / "other-key"
    assert main(["keygen", "--out", str(other / "k.key")]) == 0
    env = gateway_env(tmp_path, SHELFCAST_MODEL_PUBLIC_KEY=str(other / "k.pub"))
    with Gateway(load_config(env=env)) as gw:
        assert gw.bundle is None and "does not verify" in gw.bundle_problem


def test_a_restart_with_the_installed_bundle_verifies_its_copy_without_installing_again(
    tmp_path,
):
    env = gateway_env(tmp_path, SHELFCAST_BUNDLE=str(make_bundle(tmp_path / "b")),
                      **public_key_env())  # fmt: skip
    current = tmp_path / "state" / "bundle"
    with Gateway(load_config(env=env)) as gw:
        installed = current.resolve()
        assert gw.bundle.path == installed
    with Gateway(load_config(env=env)) as gw:  # the same bundle: its copy is used as it is
        assert gw.bundle.path == installed == current.resolve()
        assert gw.model is not None and gw.bundle_problem is None
    model = installed / "demand.onnx"
    model.write_bytes(model.read_bytes() + b"\0")  # the copy damaged: installed afresh
    with Gateway(load_config(env=env)) as gw:
        assert gw.bundle.path == current.resolve() != installed
        assert gw.model is not None and gw.bundle_problem is None


def test_the_scorer_keeps_the_sessions_the_verification_opened(tmp_path):
    sessions: dict = {}
    bundle = verify(make_bundle(tmp_path / "b"), TRUST, sessions)
    assert set(sessions) == {"demand", "anomaly"}
    reused, fresh = Scorer.from_bundle(bundle, sessions=sessions), Scorer.from_bundle(bundle)
    assert reused._sessions == sessions and fresh.opened == []  # opened when first used
    x = np.random.default_rng(0).random((5, len(names())), dtype=np.float32)
    assert np.array_equal(reused.demand(x)[0], fresh.demand(x)[0])
    assert fresh.opened == ["demand"] and fresh._sessions["demand"] is not sessions["demand"]
    threaded = Scorer.from_bundle(bundle, threads=2, sessions=sessions)  # other options: own
    threaded.open_all()
    assert threaded._sessions["demand"] is not sessions["demand"]


def test_a_new_bundle_at_start_is_installed_even_beside_an_installed_one(tmp_path):
    env = gateway_env(tmp_path, SHELFCAST_BUNDLE=str(make_bundle(tmp_path / "b")),
                      **public_key_env())  # fmt: skip
    with Gateway(load_config(env=env)):
        pass
    for case in ("edited_metadata_old_signature", "outputs_nan"):
        env["SHELFCAST_BUNDLE"] = str(CASES[case](tmp_path / case))
        with pytest.raises(BundleError, match=f"refused: .*{REASONS[case]}"):
            Gateway(load_config(env=env))
    env["SHELFCAST_BUNDLE"] = str(make_bundle(tmp_path / "c"))
    with Gateway(load_config(env=env)) as gw:
        assert gw.bundle.model_version == "c"


# ---- the atomic switch ------------------------------------------------------------------


def test_the_current_bundle_is_a_symlink_flipped_without_a_gap(tmp_path):
    current = tmp_path / "state" / "bundle"
    builds = [make_bundle(tmp_path / "build" / f"v{i}") for i in range(5)]
    install(verify(builds[0], TRUST), current, TRUST)
    stop, gaps, reads = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            reads[0] += 1
            if not (current / "manifest.json").is_file():
                gaps.append(reads[0])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for build in builds[1:]:
            installed = install(verify(build, TRUST), current, TRUST)
    finally:
        stop.set()
        thread.join()
    assert gaps == [] and reads[0] > 0
    assert current.is_symlink() and not os.path.isabs(os.readlink(current))
    assert installed.path == current.resolve() and installed.model_version == "v4"
    kept = sorted(p.name.split("-")[0] for p in versions_dir(current).iterdir())
    assert kept == ["v3", "v4"]  # the current one and the one before it
    assert [p.name for p in current.parent.iterdir() if p.name.startswith(".")] == []


def test_a_directory_from_an_earlier_gateway_becomes_the_previous_version(tmp_path):
    current = tmp_path / "state" / "bundle"
    make_bundle(current)  # the layout before symlinks: a plain directory
    install(verify(make_bundle(tmp_path / "build" / "new"), TRUST), current, TRUST)
    assert current.is_symlink() and verify(current, TRUST).model_version == "new"
    earlier = [p for p in versions_dir(current).rglob("metadata.json") if "earlier" in str(p)]
    assert len(earlier) == 1 and json.loads(earlier[0].read_text())["model_version"] == "bundle"


def test_a_refused_copy_leaves_the_current_bundle_and_no_debris(tmp_path):
    current = tmp_path / "state" / "bundle"
    install(verify(make_bundle(tmp_path / "build" / "v1"), TRUST), current, TRUST)
    good = verify(make_bundle(tmp_path / "build" / "v2"), TRUST)
    (good.path / "reference.json").write_text("{}")  # changed after it was verified
    with pytest.raises(BundleError, match="SHA-256"):
        install(good, current, TRUST)
    assert verify(current, TRUST).model_version == "v1"
    assert len(list(versions_dir(current).iterdir())) == 1


# ---- the signing key ---------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, capsys):
    key = tmp_path / "keys" / "signing.key"
    assert main(["keygen", "--out", str(key)]) == 0
    assert (key.stat().st_mode & 0o777) == 0o600 and key.with_suffix(".pub").exists()
    assert "SHELFCAST_MODEL_PUBLIC_KEY" in capsys.readouterr().out
    before = key.read_bytes()
    assert main(["keygen", "--out", str(key)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err and key.read_bytes() == before


def test_training_creates_only_the_default_key_and_says_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    said: list[str] = []
    signer = signer_for(None, env={}, say=said.append)
    assert Path("var/keys/bundle-signing.key").exists() and len(said) == 1
    assert "var/keys/bundle-signing.pub" in said[0] and signer.key_id
    with pytest.raises(BundleError, match=r"signing key typo\.key does not exist; create it"):
        signer_for("typo.key", env={}, say=said.append)
    assert not Path("typo.key").exists()
