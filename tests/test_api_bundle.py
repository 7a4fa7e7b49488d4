"""Model bundles through the API: a good one is verified and swapped in; a tampered one, one
with a mismatched feature spec, and archives carrying anything but data are refused."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import tempfile
import tracemalloc
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from feature_store.spec import names, spec_dict
from tests.api_server import ApiServer
from tests.signed_bundles import make_bundle, onnx_model, public_key_env
from tests.tampered_bundles import CASES, REASONS

__all__ = ["make_bundle", "onnx_model"]  # other suites and docker/smoke.py build bundles here

TOKEN = "bundle-token-0123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
           **public_key_env()}  # fmt: skip
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
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
           **public_key_env()}  # fmt: skip
    make_bundle(tmp_path / "state" / "bundle")
    with Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})) as gw:
        app = create_app(gw, ApiSettings(token=TOKEN))
        assert app.state.runtime.bundle_info()["loaded"] is True
    spec = tmp_path / "state" / "bundle" / "feature_spec.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "dtype": "float64"}))
    with Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})) as gw:
        checks = create_app(gw, ApiSettings(token=TOKEN)).state.runtime.checks()
        assert checks["bundle"].startswith("failing: installed bundle refused")


# ---- authenticity, outputs, uploads ------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampered_bundles_are_refused_through_the_api(served, case):
    url, tmp = served
    assert put(url, archive(make_bundle(tmp / "build" / "good-1"))).status_code == 200
    response = put(url, archive(CASES[case](tmp / "build" / case)))
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert REASONS[case] in message, message
    assert "bundle-upload-" not in message and tempfile.gettempdir() not in message
    assert httpx.get(url + "/v1/bundle").json()["model_version"] == "good-1"


def test_an_oversized_upload_is_refused_from_its_content_length_before_any_byte(served):
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    declared = 300 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"PUT /v1/bundle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n".encode()
        )  # and not one byte of the body
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413"), head
    assert "declares 314572800 bytes" in head


def test_a_chunked_upload_is_counted_and_refused_past_the_limit(tmp_path):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    gw = Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"}))
    settings = ApiSettings(token=TOKEN, max_bundle_bytes=4 * 1024 * 1024)
    chunk = b"\0" * (1024 * 1024)
    try:
        with ApiServer(create_app(gw, settings)) as server:
            before = set(Path(tempfile.gettempdir()).glob("bundle-upload-*"))
            response = httpx.put(
                server.url + "/v1/bundle", content=iter([chunk] * 6), headers=AUTH, timeout=60
            )
            assert response.status_code == 413, response.text
            assert "4194304-byte limit" in response.json()["message"]
            assert set(Path(tempfile.gettempdir()).glob("bundle-upload-*")) == before
    finally:
        gw.close()


def test_an_upload_streams_to_disk_instead_of_memory(tmp_path):
    """A 48 MiB body under a 64 MiB limit: the server's Python heap never holds it."""
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state")}
    gw = Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"}))
    settings = ApiSettings(token=TOKEN, max_bundle_bytes=64 * 1024 * 1024)
    chunk = b"x" * (1024 * 1024)  # one shared chunk: the client side allocates nothing more
    try:
        with ApiServer(create_app(gw, settings)) as server:
            tracemalloc.start()
            try:
                response = httpx.put(
                    server.url + "/v1/bundle", content=iter([chunk] * 48), headers=AUTH, timeout=60
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        gw.close()
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB traced during the upload"
    assert response.status_code == 422 and "not a .tar, .tar.gz or .zip" in response.text
