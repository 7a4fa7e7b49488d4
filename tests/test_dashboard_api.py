"""What the dashboard reads, without a browser: the page and its assets (all local), offline
API docs, the live alert stream (server-sent events) and a SKU's sales beside its forecast, on
real uvicorn over a real gateway (the browser tests are ``tests/test_dashboard_browser.py``)."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from api.app import create_app
from api.runtime import StateDirRuntime
from api.settings import ApiSettings
from edge_runtime.config import load_config
from edge_runtime.decide.forecast_policy import DailyForecasts, ForecastDecisionPolicy
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer

TOKEN = "dashboard-api-token-01"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def ev(event_id: str, sku: str, kind: str, qty: float, day: int, hour: int = 12) -> dict:
    return {"event_id": event_id, "store_id": "S1", "sku": sku, "type": kind, "qty": qty,
            "event_time": f"2026-01-{day:02d}T{hour:02d}:00:00+01:00", "source": "pos"}  # fmt: skip


def gateway(state_dir) -> Gateway:
    """A gateway whose forecast of SKU A is h units on the h-th day ahead (P90: twice that),
    with ten days of A's sales (d units on January d) and the 11th open; B sold out."""
    h = np.arange(1.0, 8.0)
    mean = np.broadcast_to(h, (2, 12, 7)).copy()
    forecasts = DailyForecasts(["A", "B"], np.datetime64("2026-01-01"), mean, 2 * mean)
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(state_dir)}
    cfg = load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})
    gw = Gateway(cfg, policy=ForecastDecisionPolicy("S1", forecasts, "m1", lead_time_days=2))
    events = [ev("r", "A", "receipt", 500, 1, 7)]
    events += [ev(f"s{d}", "A", "sale", d, d) for d in range(1, 11)]
    events += [ev("ret", "A", "return", 1, 10, 13), ev("today", "A", "sale", 2, 11)]
    events += [ev("rb", "B", "receipt", 3, 2, 7), ev("sb", "B", "sale", 3, 3)]  # B sells out
    assert gw.ingest(events, "seed").accepted == len(events)
    return gw


@pytest.fixture
def served(tmp_path):
    gw = gateway(tmp_path / "state")
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN, reads_open=False))) as server:
        yield server.url, gw
    gw.close()


def _local_refs(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_page_and_the_docs_load_only_local_assets(served):
    url, _ = served
    for page in ("/", "/docs", "/redoc"):
        response = httpx.get(url + page)  # open even when reads are closed: no data in them
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        refs = _local_refs(response.text)
        assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
        assert "http://" not in response.text.replace("http://www.w3.org", "")
        assert "https://" not in response.text
        for ref in refs:
            if not ref.startswith("/docs"):
                assert httpx.get(url + ref).status_code == 200, ref
    config = {"store_id": "S1", "reads_open": False, "forecasts": True}
    assert httpx.get(url + "/ui/config.json").json() == config
    assert httpx.get(url + "/ui/dashboard/../../api/app.py").status_code == 404


def test_sales_beside_the_forecast_per_day(served):
    url, _ = served
    assert httpx.get(url + "/v1/sales/A").status_code == 401  # reads are closed here
    view = httpx.get(url + "/v1/sales/A", params={"days": 5}, headers=AUTH).json()
    assert view["open_day"] == "2026-01-11" and view["open_units"] == 2
    assert [(d["date"], d["units"]) for d in view["days"]] == [
        ("2026-01-06", 6),
        ("2026-01-07", 7),
        ("2026-01-08", 8),
        ("2026-01-09", 9),
        ("2026-01-10", 9),
    ]  # fmt: skip  (the 10th: 10 sold, 1 returned)
    days = view["forecast"]
    assert [d["date"] for d in days][:2] == ["2026-01-11", "2026-01-12"] and len(days) == 7
    assert [d["mean"] for d in days] == pytest.approx([1, 2, 3, 4, 5, 6, 7])
    assert [d["p90"] for d in days] == pytest.approx([2, 4, 6, 8, 10, 12, 14])
    outlook = view["outlook"]
    assert outlook == httpx.get(url + "/v1/predictions/A", headers=AUTH).json()
    assert outlook["demand_over_horizon"] == pytest.approx(28)
    assert view["forecast_problem"] is None
    missing = httpx.get(url + "/v1/sales/NOPE", headers=AUTH)
    assert missing.status_code == 404 and "NOPE" in missing.json()["message"]
    too_many = httpx.get(url + "/v1/sales/A", params={"days": 92}, headers=AUTH)
    assert too_many.status_code == 422 and too_many.json()["where"] == ["query.days"]


def test_sales_view_of_a_sku_no_close_has_scored_says_so(served):
    """A SKU first seen today has sales but no forecast yet (``status: no_history``)."""
    url, gw = served
    assert gw.ingest([ev("rc", "C", "receipt", 4, 11, 8), ev("sc", "C", "sale", 1, 11, 9)]).accepted
    view = httpx.get(url + "/v1/sales/C", headers=AUTH)
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["forecast"] == [] and body["outlook"] is None
    assert "no forecast for SKU 'C'" in body["forecast_problem"]


class Frames:
    """Server-sent events read from a real connection in a background thread.

    A plain socket, so that ``close()`` can end the connection from the test's thread: the
    server must see the client leave, as it does when a tablet sleeps.
    """

    def __init__(self, url: str, headers: dict):
        self.items: list[dict] = []
        self.status: int | None = None
        parts = urlsplit(url)
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        lines = [f"GET {parts.path}?{parts.query} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        raw, body = b"", b""
        head_done = False
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            raw += chunk
            if not head_done and b"\r\n\r\n" in raw:
                head, raw = raw.split(b"\r\n\r\n", 1)
                self.status = int(head.split()[1])
                head_done = True
            while head_done and b"\r\n" in raw:  # chunked transfer coding: size, data, CRLF
                size_line, rest = raw.split(b"\r\n", 1)
                size = int(size_line, 16)
                if len(rest) < size + 2:
                    break
                body += rest[:size]
                raw = rest[size + 2 :]
            while b"\n\n" in body:
                frame, body = body.split(b"\n\n", 1)
                self._add(frame.decode())

    def _add(self, frame: str) -> None:
        fields = {}
        for line in frame.split("\n"):
            if line and not line.startswith(":"):
                field, _, value = line.partition(": ")
                fields[field] = value
        if fields:
            self.items.append(fields)

    def wait(self, predicate, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [f for f in list(self.items) if predicate(f)]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no such frame in {timeout} s; got {self.items}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def _alerts(frames: list[dict]) -> list[tuple[int, dict]]:
    return [(int(f["id"]), json.loads(f["data"])) for f in frames if f.get("event") == "alert"]


def test_alert_stream_sends_the_backlog_then_alerts_as_they_are_written(served):
    url, _ = served
    assert httpx.get(url + "/v1/alerts/stream").status_code == 401
    frames = Frames(url + "/v1/alerts/stream?backlog=2", AUTH)
    try:
        first = frames.wait(lambda f: f.get("event") == "ledger")
        backlog = _alerts(frames.items)
        assert len(backlog) == 2 and backlog[0][0] < backlog[1][0]  # oldest first
        assert json.loads(first[0]["data"])["last_event_seq"] == 15
        assert frames.items[0] == {"retry": "2000"}

        # the last units sell: the stock-out alert follows on the open stream
        left = httpx.get(url + "/v1/stock/A", headers=AUTH).json()["on_hand"]
        httpx.post(url + "/v1/events", json=ev("all", "A", "sale", left, 11, 15), headers=AUTH)
        frames.wait(lambda f: f.get("event") == "alert" and "ATP_ZERO" in f["data"])
        assert json.loads(
            frames.wait(lambda f: '"last_event_seq": 16' in f.get("data", ""))[0]["data"]
        )
        seqs = [seq for seq, _ in _alerts(frames.items)]
        assert seqs == sorted(set(seqs))  # each once, in order
    finally:
        frames.close()

    # a client that reconnects with the last id it saw gets what it missed, and only that
    seen = _alerts(frames.items)
    stockout = next(seq for seq, a in seen if a["sku"] == "A" and a["kind"] == "stockout")
    resumed = Frames(url + "/v1/alerts/stream", {**AUTH, "Last-Event-ID": str(stockout - 1)})
    try:
        resumed.wait(lambda f: f.get("event") == "ledger")
        assert [(seq, a["message_id"]) for seq, a in _alerts(resumed.items)] == [
            (seq, a["message_id"]) for seq, a in seen if seq >= stockout
        ]
    finally:
        resumed.close()
    bad = httpx.get(url + "/v1/alerts/stream", headers={**AUTH, "Last-Event-ID": "x"})
    assert bad.status_code == 422 and bad.json()["where"] == ["header.last-event-id"]


def test_an_attached_api_streams_alerts_but_serves_no_sales_view(tmp_path):
    gw = gateway(tmp_path / "state")
    attached = StateDirRuntime(tmp_path / "state")
    try:
        with ApiServer(create_app(attached, ApiSettings())) as server:
            frames = Frames(server.url + "/v1/alerts/stream?backlog=500", {})
            try:
                frames.wait(lambda f: f.get("event") == "ledger")
                kinds = {a["kind"] for _, a in _alerts(frames.items)}
                assert kinds and kinds <= {"stockout", "replenishment", "anomaly", "conflict"}
            finally:
                frames.close()
            # no forecasts read-only: the sales view is not served, and the page is told so
            assert httpx.get(server.url + "/v1/sales/A").status_code == 404
            assert httpx.get(server.url + "/ui/config.json").json()["forecasts"] is False
    finally:
        attached.close()
        gw.close()


@pytest.mark.slow
def test_serve_stops_promptly_with_a_live_view_open(tmp_path):
    """An open dashboard's stream must not hold `shelfcast serve`'s shutdown (SIGTERM): the
    gateway still closes cleanly, within the graceful-shutdown limit."""
    from api.serve_command import GRACEFUL_SHUTDOWN_S
    from tests.test_api_serve import _start, _stop

    env = {**os.environ, "SHELFCAST_API_TOKEN": TOKEN, "SHELFCAST_MQTT_ENABLED": "false"}
    proc, url = _start(["--store-id", "S7", "--state-dir", str(tmp_path / "state")], env)
    frames = Frames(url + "/v1/alerts/stream", {})
    try:
        frames.wait(lambda f: f.get("event") == "ledger")
        started = time.monotonic()
        assert _stop(proc) == 0
        assert time.monotonic() - started < GRACEFUL_SHUTDOWN_S + 8
    finally:
        frames.close()
        if proc.poll() is None:
            proc.kill()
