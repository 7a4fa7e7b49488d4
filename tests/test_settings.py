"""One settings model per process: file, then SHELFCAST_* variables, then options; typos named
with the nearest valid name; the reference page generated from the models; `config check`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from api.settings import ApiSettings, ServeSettings, load_serve_settings
from configuration.layered_settings import ConfigError, load_settings
from configuration.reference import render
from configuration.variables import OTHER_VARIABLES
from edge_runtime.config import GatewayConfig, load_config
from hub.settings import HubProcessSettings
from shelfcast import cli
from shelfcast.config_command import INTRO, processes
from tests.test_dockerfile import RUNTIME_PACKAGES, env_of

ROOT = Path(__file__).resolve().parent.parent
STORE = {"SHELFCAST_STORE_ID": "S1"}


def problems(env: dict[str, str], path: Path | None = None, model=GatewayConfig) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_settings(model, path, env)
    return err.value.problems


@pytest.mark.parametrize(
    ("typo", "nearest"),
    [
        ("SHELFCAST_MQTT_PROT", "SHELFCAST_MQTT_PORT"),
        ("SHELFCAST_MQQT_HOST", "SHELFCAST_MQTT_HOST"),
        ("SHELFCAST_STATEDIR", "SHELFCAST_STATE_DIR"),
        ("SHELFCAST_MODEL_LEAD_DAYS", "SHELFCAST_MODEL_LEAD_TIME_DAYS"),
    ],
)
def test_a_misspelled_variable_names_the_nearest_valid_one(typo, nearest):
    assert problems({**STORE, typo: "1"}) == [f"{typo}: unknown variable; did you mean {nearest}?"]


def test_unknown_keys_and_sections_name_the_file_and_the_nearest(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[mqtt]\nhots = "x"\n[polcy]\nreorder_point = 1\n')
    assert problems(STORE, path) == [
        f"{path}: [mqtt] hots: unknown key; did you mean host?",
        f"{path}: unknown section [polcy]; did you mean policy?",
    ]


def test_a_bad_value_names_where_it_came_from(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text("[gateway]\nsafety_buffer = -2\n")
    (line,) = problems(STORE, path)
    assert line.startswith(f"{path}: gateway.safety_buffer: -2; use 0 or more")
    (line,) = problems({**STORE, "SHELFCAST_POLICY_PACK_SIZE": "0"})
    assert line.startswith("SHELFCAST_POLICY_PACK_SIZE='0': policy.pack_size: 0; use 1 or more")


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("SHELFCAST_POLICY_REORDER_POINT", "-1", "use 0 or more"),
        ("SHELFCAST_MODEL_REVIEW_DAYS", "-1", "use 0 or more"),
        ("SHELFCAST_UPLINK_INTERVAL_S", "0", "use a positive number"),
        ("SHELFCAST_HUB_HEARTBEAT_S", "0", "use a positive number"),
        ("SHELFCAST_MQTT_MAX_INFLIGHT", "0", "use 1 or more"),
    ],
)
def test_quantities_are_checked(name, value, words):
    (line,) = problems({**STORE, name: value})
    assert words in line and name in line


def test_options_beat_variables_beat_the_file(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\nstore_id = "F"\n[mqtt]\nport = 1001\nhost = "file"\n')
    cfg = load_config(path, env={"SHELFCAST_MQTT_PORT": "1002"}, mqtt__host="option")
    assert (cfg.gateway.store_id, cfg.mqtt.port, cfg.mqtt.host) == ("F", 1002, "option")


def test_an_empty_variable_is_unset(tmp_path):
    path = tmp_path / "store.toml"
    path.write_text('[gateway]\nstore_id = "S4"\n[api]\nport = 9004\n')
    env = {"SHELFCAST_API_PORT": "", "SHELFCAST_API_READS_OPEN": "", "SHELFCAST_STORE_ID": ""}
    serve = load_serve_settings(path, attach=False, env=env)
    assert (serve.gateway.store_id, serve.api.port, serve.api.reads_open) == ("S4", 9004, True)
    (line,) = problems({"SHELFCAST_STORE_ID": ""})
    assert line.startswith("gateway.store_id: empty; set [gateway] store_id")


def test_one_file_serves_run_and_serve(tmp_path):
    """`run` leaves [api] to `serve`; `serve` checks it; attached, only [api] is read."""
    path = tmp_path / "store.toml"
    path.write_text('[gateway]\nstore_id = "S2"\n[api]\nport = 9001\nreads_open = false\n')
    assert load_config(path, env={}).gateway.store_id == "S2"
    serve = load_serve_settings(path, attach=False, env={"SHELFCAST_API_PORT": "9002"})
    assert isinstance(serve, ServeSettings) and serve.gateway.store_id == "S2"
    assert (serve.api.port, serve.api.reads_open) == (9002, False)
    attached = load_serve_settings(path, attach=True, env={}, gateway__store_id="ignored")
    assert attached.api.port == 9001 and not hasattr(attached, "gateway")
    with pytest.raises(ConfigError, match="did you mean SHELFCAST_API_PORT"):
        load_serve_settings(None, attach=True, env={"SHELFCAST_API_PROT": "9003"})
    assert load_config(env={**STORE, "SHELFCAST_API_PROT": "9003"})  # serve's to judge


def test_the_image_environment_is_all_known_variables():
    env = {k: v for k, v in env_of("runtime").items() if k.startswith("SHELFCAST_")}
    known = set(ServeSettings.env_names()) | set(OTHER_VARIABLES)
    assert set(env) <= known, set(env) - known
    settings = load_serve_settings(None, attach=False, env={**env, **STORE})
    assert (settings.api.host, settings.mqtt.topic_prefix) == ("0.0.0.0", "shelfcast")


def test_api_settings_keep_their_rules():
    with pytest.raises(ValueError, match="at least 8 characters"):
        ApiSettings(token="short")
    assert ApiSettings.from_env({"SHELFCAST_API_ACCESS_LOG": "off"}).access_log is False
    with pytest.raises(ConfigError, match="SHELFCAST_API_MAX_BUNDLE_BYTES='0'"):
        ApiSettings.from_env({"SHELFCAST_API_MAX_BUNDLE_BYTES": "0"})


def test_the_committed_reference_is_current():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == render(processes(), INTRO), (
        "docs/configuration.md is stale: run `shelfcast config reference docs/configuration.md`"
    )
    shortcut_targets = set(GatewayConfig.env_shortcuts.values())
    for name, target in ServeSettings.env_names().items():
        if name in GatewayConfig.env_shortcuts or target not in shortcut_targets:
            assert f"`{name}`" in page, name
    for name in OTHER_VARIABLES:
        assert f"`{name}`" in page, name


def test_config_check_summarises_a_valid_file(tmp_path, capsys):
    path = tmp_path / "store.toml"
    path.write_text('[gateway]\nstore_id = "S3"\n[mqtt]\nhost = "broker.local"\n')
    assert cli.main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: valid") and "broker broker.local:1883" in out
    assert "writes refused (no token)" in out


def test_config_check_refuses_a_bad_file_one_line_per_problem(tmp_path, capsys):
    path = tmp_path / "store.toml"
    path.write_text('[gateway]\nstore_id = "S 3"\n[api]\nprot = 80\n')
    assert cli.main(["config", "check", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("shelfcast config check: ") for line in lines)
    assert any("[api] prot: unknown key; did you mean port?" in line for line in lines)
    assert any("gateway.store_id: 'S 3' must be 1-64" in line for line in lines)


def test_config_check_of_a_hub_file(tmp_path, capsys):
    path = tmp_path / "hub.toml"
    path.write_text('[hub]\nurl = "nats://a:4222,nats://b:4222"\nreplicas = 3\nworkers = 2\n')
    assert cli.main(["config", "check", str(path), "--process", "hub"]) == 0
    out = capsys.readouterr().out
    assert "JetStream nats://a:4222,nats://b:4222, replicas 3, 2 worker(s)" in out
    assert "NO TOKEN" in out
    path.write_text("[hub]\nreplicas = 2\n")
    assert cli.main(["config", "check", str(path), "--process", "hub"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"{path}: hub.replicas: 2:" in line


def test_a_misspelled_variable_stops_commands_without_a_model_too(monkeypatch, capsys):
    monkeypatch.setenv("SHELFCAST_DATA_DIRR", "/data")
    assert cli.main(["data"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "shelfcast data: SHELFCAST_DATA_DIRR: unknown variable; did you mean SHELFCAST_DATA_DIR?"
    ]


def test_a_command_whose_code_the_edge_image_leaves_out_is_one_line(tmp_path):
    """The image's packages only (those Dockerfile.edge copies) over the installed libraries,
    without the editable checkout: `shelfcast train` finds no `training` package."""
    image = tmp_path / "image"
    for package in RUNTIME_PACKAGES:
        shutil.copytree(ROOT / package, image / package)
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = (
        f"import sys; sys.path[:0] = [{str(image)!r}, *{site!r}]; "
        "from shelfcast.cli import main; raise SystemExit(main(sys.argv[1:]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, "train", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "shelfcast train: not in this installation (no module 'training'); it needs the train "
        "extra: pip install 'shelfcast[train]' (the edge image has only the gateway)"
    ]


def test_the_hub_process_reads_hub_and_leaves_the_gateways_sections_alone():
    """The hub cannot import the gateway's model: the names it leaves alone are in step."""
    gateway_sections = set(ServeSettings.sections()) - {"hub"}
    assert HubProcessSettings.foreign_sections == gateway_sections
    assert HubProcessSettings.foreign_variables == set(GatewayConfig.env_shortcuts)
    env = {**STORE, "SHELFCAST_MQTT_HOST": "b", "SHELFCAST_HUB_URL": "nats://h:4222",
           "SHELFCAST_HUB_TOKEN": "t0ken-123", "SHELFCAST_HUB_HEARTBEAT_S": "1"}  # fmt: skip
    hub = load_settings(HubProcessSettings, None, env).hub
    assert (hub.nats_servers, hub.token, hub.port) == ("nats://h:4222", "t0ken-123", 8090)
    assert load_config(env=env).hub.url == "nats://h:4222"  # the same variable, the same servers
    (line,) = problems({"SHELFCAST_HUB_WORKRS": "2"}, model=HubProcessSettings)
    assert line == "SHELFCAST_HUB_WORKRS: unknown variable; did you mean SHELFCAST_HUB_WORKERS?"
    (line,) = problems({"SHELFCAST_HUB_REPLICAS": "2"}, model=HubProcessSettings)
    assert "hub.replicas" in line and "SHELFCAST_HUB_REPLICAS='2'" in line
