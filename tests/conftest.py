"""Shared pytest fixtures: where the real data is (and a skip that says why when it is absent),
and the key training signs bundles with."""

from __future__ import annotations

import pytest

from configuration.data_dir import ENV_VAR, data_dir

# Fixtures `mosquitto` and `mosquitto_tls`: a real broker on a free port (tests/mosquitto.py).
pytest_plugins = ["tests.mosquitto", "tests.small_disk"]


@pytest.fixture(scope="session")
def real_data_dir():
    """The real data directory; skips (with the reason) only when it is absent. CI always has it."""
    root = data_dir()
    if not root.exists():
        pytest.skip(f"real data absent: {root} does not exist (set {ENV_VAR})")
    return root


@pytest.fixture(autouse=True)
def test_signing_key(monkeypatch):
    """Training in tests signs with the fixed test key (tests/signed_bundles.py), so no run
    creates the default key under the checkout's var/keys."""
    from tests.signed_bundles import key_pair

    monkeypatch.setenv("SHELFCAST_SIGNING_KEY", str(key_pair()[0]))
