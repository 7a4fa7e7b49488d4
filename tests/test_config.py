"""Gateway configuration: file + environment, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_file_then_env_override(tmp_path):
    path = write(
        tmp_path,
        '[gateway]\nstore_id = "S7"\n[mqtt]\nhost = "broker.local"\nport = 1884\n'
        "[policy]\nreorder_point = 3\norder_up_to = 9\n[uplink]\ninterval_s = 5\n",
    )
    cfg = load_config(path, env={"SHELFCAST_MQTT_PORT": "1999", "SHELFCAST_MQTT_USERNAME": "gw"})
    assert cfg.gateway.store_id == "S7"
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.username) == ("broker.local", 1999, "gw")
    assert cfg.policy.reorder_point == 3.0 and cfg.uplink.interval_s == 5.0
    assert cfg.client_id == "shelfcast-gateway-S7"
    assert str(cfg.ledger_path).endswith("ledger.sqlite")


def test_config_path_from_env(tmp_path):
    path = write(tmp_path, '[gateway]\nstore_id = "S8"\n')
    assert load_config(env={"SHELFCAST_CONFIG": str(path)}).gateway.store_id == "S8"


def problems(path=None, **env):
    with pytest.raises(ConfigError) as err:
        load_config(path, env={k.upper(): v for k, v in env.items()})
    return str(err.value)


def test_every_problem_is_reported_with_the_fix(tmp_path):
    text = problems(
        shelfcast_store_id="",
        shelfcast_mqtt_port="70000",
        shelfcast_mqtt_ca_file=str(tmp_path / "missing-ca.pem"),
        shelfcast_mqtt_topic_prefix="a/#",
    )
    assert "gateway.store_id: empty; set [gateway] store_id" in text
    assert "SHELFCAST_STORE_ID" in text
    assert "mqtt.port: expected a TCP port in 1..65535, got 70000" in text
    assert "SHELFCAST_MQTT_PORT='70000'" in text  # where the bad value came from
    assert "missing-ca.pem does not exist" in text and "SHELFCAST_MQTT_CA_FILE" in text
    assert "mqtt.topic_prefix" in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"shelfcast_mqtt_port": "abc"}, "mqtt.port: expected a TCP port in 1..65535, got 'abc'"),
        ({"shelfcast_mqtt_keepalive_s": "x"}, "mqtt.keepalive_s: 'x' is not a valid int"),
        ({"shelfcast_mqtt_tls": "maybe"}, "mqtt.tls: 'maybe' is not a valid bool"),
        ({"shelfcast_mqtt_tls": "true"}, "1883 is the plain-text port but TLS is on"),
        ({"shelfcast_mqtt_password": "x"}, "password given without a username"),
        ({"shelfcast_store_id": "has space"}, "must be 1-64 of A-Z"),
    ],
)
def test_single_problems(env, expected):
    env.setdefault("shelfcast_store_id", "S1")
    assert expected in problems(**env)


def test_file_errors_name_the_file_and_key(tmp_path):
    assert "does not exist" in problems(tmp_path / "none.toml", shelfcast_store_id="S")
    assert "not valid TOML" in problems(write(tmp_path, "[gateway\n"), shelfcast_store_id="S")
    text = problems(write(tmp_path, '[mqtt]\nhots = "x"\n[brokr]\n'), shelfcast_store_id="S")
    assert "[mqtt] hots: unknown key" in text and "unknown section [brokr]" in text


def test_client_certificate_needs_its_key(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    text = problems(
        shelfcast_store_id="S", shelfcast_mqtt_cert_file=str(cert), shelfcast_mqtt_port="8883"
    )
    assert "cert_file given without mqtt.key_file" in text


def test_docs_example_uses_only_known_keys(tmp_path):
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "gateway.md").read_text()
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    path = write(tmp_path, example)
    with pytest.raises(ConfigError) as err:  # the example's certificate files do not exist here
        load_config(path, env={})
    assert all("does not exist" in p for p in err.value.problems), err.value.problems


def test_model_section_from_file_env_and_cli(tmp_path):
    bundle = tmp_path / "bundle-7"
    bundle.mkdir()
    path = write(
        tmp_path,
        f'[gateway]\nstore_id = "S1"\n[model]\nbundle = "{bundle}"\nlead_time_days = 3\n'
        "stockout_threshold = 0.7\nallow_unsigned = true\n",
    )
    cfg = load_config(path, env={"SHELFCAST_MODEL_REVIEW_DAYS": "2"})
    m = cfg.model
    assert (m.bundle, m.lead_time_days, m.review_days) == (str(bundle), 3.0, 2.0)
    assert m.allow_unsigned and m.public_key is None and m.max_daily_units == 100_000
    assert m.stockout_threshold == 0.7
    assert cfg.bundle_dir == Path(cfg.gateway.state_dir) / "bundle"
    assert (
        load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_BUNDLE": ""}).model.bundle is None
    )
    assert load_config(path, env={}, model__bundle=None).model.bundle == str(bundle)
    text = problems(store_id="S1", shelfcast_bundle=str(tmp_path / "nope"))
    assert "model.bundle" in text and "SHELFCAST_BUNDLE" in text and "[policy] rules" in text
    text = problems(store_id="S1", shelfcast_model_forecast_days="2")
    assert "does not cover lead_time_days + review_days (3)" in text


def test_ingest_bounds_from_file_and_env(tmp_path):
    path = write(
        tmp_path,
        '[gateway]\nstore_id = "S7"\n[ingest]\nmax_qty = 500\nmax_late_days = 30\n'
        'earliest_event_time = "2010-01-01T00:00:00+00:00"\n',
    )
    cfg = load_config(path, env={"SHELFCAST_INGEST_MAX_JUMP_DAYS": "7"})
    bounds = cfg.ingest.bounds()
    assert (bounds.max_qty, bounds.max_late_days, bounds.max_jump_days) == (500, 30.0, 7.0)
    assert bounds.earliest_event_time == "2010-01-01T00:00:00+00:00"
    assert load_config(env={"SHELFCAST_STORE_ID": "S1"}).ingest.bounds().max_qty == 100_000
