"""Model bundles through the API: a good one is verified and swapped in; a tampered one, one
with a mismatched feature spec, and archives carrying anything but data are refused."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import httpx
import onnx
import pytest
from onnx import TensorProto, helper

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from feature_store.spec import ANOMALY_FEATURES, names, spec_dict
from models.bundle import write_bundle
from tests.api_server import ApiServer

TOKEN = "bundle-token-0123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def onnx_model(width: int, outputs: list[str]) -> bytes:
    """A real (tiny) ONNX model: the row mean of a float32 [N, width] matrix under each output."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])
    nodes = [helper.make_node("ReduceMean", ["X"], ["m"], axes=[1], keepdims=0)]
    nodes += [helper.make_node("Identity", ["m"], [name]) for name in outputs]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in outputs]
    graph = helper.make_graph(nodes, "tiny", [x], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_bundle(out: Path, spec: dict | None = None, demand_width: int | None = None) -> Path:
    models = {
        "demand": onnx_model(demand_width or len(names()), ["mean", "p50", "p90"]),
        "anomaly": onnx_model(len(ANOMALY_FEATURES), ["score"]),
    }
    return write_bundle(out, models, spec or spec_dict(), {"model_version": out.name})


def archive(root: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root, arcname=root.name)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def served(tmp_path):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    gw = Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"}))
    server = ApiServer(create_app(gw, ApiSettings(token=TOKEN))).start()
    yield server.url, tmp_path
    server.stop()
    gw.close()


def put(url: str, body: bytes, headers=AUTH) -> httpx.Response:
    return httpx.put(url + "/v1/bundle", content=body, headers=headers, timeout=60)


def test_a_verified_bundle_is_swapped_in(served):
    url, tmp = served
    assert httpx.get(url + "/v1/bundle").json()["loaded"] is False
    response = put(url, archive(make_bundle(tmp / "build" / "good-1")))
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "good-1"
    current = httpx.get(url + "/v1/bundle").json()
    assert current["loaded"] and sorted(current["models"]) == ["anomaly", "demand"]
    assert (tmp / "state" / "bundle" / "demand.onnx").exists()
    assert httpx.get(url + "/ready").json()["checks"]["bundle"] == "ok (good-1)"


def test_one_changed_byte_refuses_the_bundle_and_keeps_the_current_one(served):
    url, tmp = served
    assert put(url, archive(make_bundle(tmp / "build" / "good-1"))).status_code == 200
    bad = make_bundle(tmp / "build" / "tampered-2")
    model = bad / "demand.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    response = put(url, archive(bad))
    assert response.status_code == 422
    message = response.json()["message"]
    assert "demand.onnx" in message and "SHA-256" in message
    assert httpx.get(url + "/v1/bundle").json()["model_version"] == "good-1"


def test_a_mismatched_feature_spec_is_refused(served):
    url, tmp = served
    spec = spec_dict()
    spec["features"] = [spec["features"][1], spec["features"][0], *spec["features"][2:]]
    response = put(url, archive(make_bundle(tmp / "build" / "reordered", spec=spec)))
    assert response.status_code == 422
    assert "feature spec does not match" in response.json()["message"]
    older = {**spec_dict(), "version": "0.9"}
    response = put(url, archive(make_bundle(tmp / "build" / "old-version", spec=older)))
    assert response.status_code == 422 and "feature-store version 0.9" in response.json()["message"]
    wide = make_bundle(tmp / "build" / "wrong-width", demand_width=len(names()) + 1)
    response = put(url, archive(wide))
    assert response.status_code == 422 and "takes" in response.json()["message"]
    assert httpx.get(url + "/v1/bundle").json()["loaded"] is False


def test_archives_carrying_more_than_data_are_refused(served):
    url, tmp = served
    good = make_bundle(tmp / "build" / "b")
    pickle_inside = archive(good, {"b/model.pkl": b"\x80\x04K\x01."})
    response = put(url, pickle_inside)
    assert response.status_code == 422, response.text
    assert "only ONNX" in response.json()["message"] or "manifest" in response.json()["message"]
    escape = archive(good, {"../../escaped.txt": b"x"})
    response = put(url, escape)
    assert response.status_code == 422 and "outside" in response.json()["message"]
    assert not (tmp / "escaped.txt").exists()
    assert put(url, b"not an archive").status_code == 422
    assert put(url, archive(good), headers={}).status_code == 401


def test_the_installed_bundle_is_verified_again_at_start(tmp_path):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    make_bundle(tmp_path / "state" / "bundle")
    with Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})) as gw:
        app = create_app(gw, ApiSettings(token=TOKEN))
        assert app.state.runtime.bundle_info()["loaded"] is True
    spec = tmp_path / "state" / "bundle" / "feature_spec.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "dtype": "float64"}))
    with Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})) as gw:
        checks = create_app(gw, ApiSettings(token=TOKEN)).state.runtime.checks()
        assert checks["bundle"].startswith("failing: installed bundle refused")
