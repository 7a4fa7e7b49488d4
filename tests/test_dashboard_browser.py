"""The store dashboard and the API docs in a real browser (Debian's Chromium driven by
Playwright) against a real gateway: ledger, real ONNX bundle, MQTT through a real Mosquitto,
served by uvicorn on loopback.

Each page must render the gateway's own figures, show what arrives live without a reload, load
nothing from outside this machine (every non-loopback request is blocked and fails the test)
and log no console error. Screenshots go to ``var/screenshots/``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.runtime import StateDirRuntime
from api.settings import ApiSettings
from tests.api_server import ApiServer
from tests.dashboard_store import STORE, event, model_bundle, open_store
from tests.mosquitto import Mosquitto, mosquitto_binary

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
TOKEN = "dashboard-token-0123"
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
TABLET = {"width": 1180, "height": 820}  # a 10.9" tablet in landscape
TABLET_PORTRAIT = {"width": 820, "height": 1180}
WAIT_MS = 15_000
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _need(ok: bool, what: str) -> None:
    """Browser tests never skip in CI: a missing browser or broker fails there."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; make system-deps installs it")
    pytest.skip(f"{what} is missing (make system-deps installs it)")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A gateway serving the test store, its API on loopback (reads need the token)."""
    _need(mosquitto_binary() is not None, "mosquitto")
    tmp = tmp_path_factory.mktemp("dashboard")
    broker = Mosquitto(tmp / "broker").start()
    gateway = open_store(tmp / "state", broker.port, model_bundle(tmp / "build"))
    server = ApiServer(create_app(gateway, ApiSettings(token=TOKEN, reads_open=False))).start()
    yield {"url": server.url, "broker": broker, "gateway": gateway, "state": tmp / "state"}
    server.stop()
    gateway.close()
    broker.stop()


@pytest.fixture(scope="module")
def browser():
    _need(os.access(CHROMIUM, os.X_OK), "Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    _need(sync_playwright is not None, "the playwright package (dev extra)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A browser page whose console errors, page errors and outside requests are recorded."""

    def __init__(self, browser, viewport: dict, token: str | None):
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(viewport=viewport)
        if token:  # as if staff had entered it before: kept in the tablet's localStorage
            self.context.add_init_script(f"localStorage.setItem('shelfcast.apiToken', {token!r})")
        self.context.route(_leaves_machine, self._block)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def _block(self, route) -> None:
        self.outside.append(route.request.url)
        route.abort()

    def shot(self, name: str, full_page: bool = False) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def assert_clean(self) -> None:
        assert self.outside == [], f"requests left the machine: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"

    def close(self) -> None:
        self.context.close()


def _leaves_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK


@pytest.fixture
def watched(browser):
    pages: list[Watched] = []

    def open_page(viewport=TABLET, token: str | None = TOKEN) -> Watched:
        pages.append(Watched(browser, viewport, token))
        return pages[-1]

    yield open_page
    for page in pages:
        page.close()


def _stock(url: str, sku: str) -> dict:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.get(f"{url}/v1/stock/{sku}", headers=auth).json()


def _cells(page, sku: str) -> dict[str, str]:
    row = page.locator(f'tr[data-sku="{sku}"]')
    return {
        col: row.locator(f'td[data-col="{col}"]').inner_text()
        for col in ("on_hand", "reserved", "available")
    }


def _publish(port: int, payload: dict) -> None:
    """A till's sale over MQTT, the way stores send them (mosquitto_pub, QoS 1)."""
    topic = f"shelfcast/{STORE}/events/pos"
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic]
    subprocess.run([*cmd, "-m", json.dumps(payload)], check=True, timeout=10)


def test_dashboard_shows_the_ledger_and_follows_events_live(store, watched):
    url = store["url"]
    w = watched()
    page = w.page
    page.goto(url + "/")

    # the stock table holds the ledger's own figures for every SKU
    page.wait_for_selector('tr[data-sku="FOODS_3_090"]')
    for sku in ("FOODS_3_090", "HOUSEHOLD_2_040", "FOODS_3_586"):
        want = _stock(url, sku)
        assert _cells(page, sku) == {
            "on_hand": str(want["on_hand"]),
            "reserved": str(want["reserved"]),
            "available": str(want["available"]),
        }
    confidence = _stock(url, "HOUSEHOLD_1_118")["confidence"]
    row = page.locator('tr[data-sku="HOUSEHOLD_1_118"]')
    assert row.locator(".meter-text").inner_text() == f"{round(confidence * 100)} %"
    assert "Out of stock" in page.locator('tr[data-sku="HOUSEHOLD_2_040"] .status').inner_text()

    # health: the ledger, the model and the broker connection, from /ready
    page.wait_for_selector('#health li.pill.ok[data-check="mqtt"]')
    assert page.locator('#health li.pill.ok[data-check="ledger"]').count() == 1
    assert "model mean7-1" in page.locator("#health").inner_text()

    # the alert feed and the suspicions, with reason codes and the numbers behind them
    page.wait_for_selector('#alert-list li.kind-conflict[data-sku="HOUSEHOLD_2_040"]')
    assert "RESERVATION_SHORT" in page.locator("#alert-list li.kind-conflict").first.inner_text()
    shrink = page.locator('#shrink-list li[data-sku="HOUSEHOLD_1_118"]')
    assert "SHRINK_BEYOND_HISTORY" in shrink.inner_text() and "9 units" in shrink.inner_text()
    assert (
        "EXIT_GATE_WITHOUT_SALE"
        in page.locator('#shrink-list li[data-sku="HOBBIES_1_234"]').inner_text()
    )
    assert page.locator("#alert-list li.kind-replenishment").count() >= 1

    # forecast vs sales of the best seller: 28 closed days, today, the model's days ahead
    page.wait_for_selector("#chart svg polyline.mean", state="attached")  # flat: no height
    assert page.locator("#forecast-sku").input_value() == "FOODS_3_090"
    assert page.locator("#chart rect.bar.sales").count() == 28
    assert page.locator("#chart circle.mean-dot").count() == 7  # [model] forecast_days
    assert "model mean7-1" in page.locator("#forecast-note").inner_text()
    w.shot("dashboard-tablet")
    w.shot("dashboard-full", full_page=True)

    # a till sells the last units of a SKU: the stock-out shows up without a reload
    page.evaluate("window.__notReloaded = true")
    left = _stock(url, "FOODS_3_586")["on_hand"]
    assert left > 0
    sale = event("s-last", "FOODS_3_586", "sale", left, "2026-03-29T15:45", "pos", unit_price=2.5)
    _publish(store["broker"].port, sale)
    page.wait_for_selector('#alert-list li.kind-stockout[data-sku="FOODS_3_586"]')
    assert (
        "ATP_ZERO"
        in page.locator('#alert-list li.kind-stockout[data-sku="FOODS_3_586"]').first.inner_text()
    )
    page.wait_for_function(
        """() => document.querySelector('tr[data-sku="FOODS_3_586"] td[data-col="available"]')
                  ?.textContent === '0'"""
    )
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("#live").get_attribute("data-state") == "live"
    w.shot("dashboard-live-stockout")
    w.assert_clean()


def test_dashboard_on_a_portrait_tablet_filters_and_sorts(store, watched):
    w = watched(viewport=TABLET_PORTRAIT)
    page = w.page
    page.goto(store["url"] + "/")
    page.wait_for_selector('tr[data-sku="FOODS_3_090"]')
    page.click('#stock-view button[data-view="out"]')
    out = page.locator("#stock-rows tr").evaluate_all("rows => rows.map(r => r.dataset.sku)")
    assert "HOUSEHOLD_2_040" in out and "FOODS_3_090" not in out
    page.click('#stock-view button[data-view="all"]')
    page.fill("#stock-search", "foods_3")
    assert page.locator("#stock-rows tr").count() == 2
    page.fill("#stock-search", "")
    page.click('th[data-key="on_hand"]')  # ascending, then descending
    page.click('th[data-key="on_hand"]')
    figures = page.locator('#stock-rows td[data-col="on_hand"]').all_inner_texts()
    assert [int(x.replace(",", "")) for x in figures] == sorted(
        (int(x.replace(",", "")) for x in figures), reverse=True
    )
    page.click('#stock-rows tr[data-sku="HOUSEHOLD_1_118"]')
    page.wait_for_function(
        "() => document.querySelector('#forecast-sku').value === 'HOUSEHOLD_1_118'"
    )
    page.wait_for_selector("#chart svg rect.bar.sales")
    w.shot("dashboard-portrait", full_page=True)
    w.assert_clean()


def test_dashboard_asks_for_the_token_when_reads_are_closed(store, watched):
    w = watched(token=None)
    page = w.page
    page.goto(store["url"] + "/")
    page.wait_for_selector("#token-dialog[open]")
    w.shot("dashboard-token")
    page.fill("#token-input", TOKEN)
    page.click("#token-save")
    page.wait_for_selector('tr[data-sku="FOODS_3_090"]')
    assert page.evaluate("localStorage.getItem('shelfcast.apiToken')") == TOKEN
    w.assert_clean()


def test_dashboard_of_an_attached_read_only_api(store, watched):
    """`shelfcast serve --attach`: stock and alerts from the state directory, reads open, no
    forecasts (the page says so instead of asking for them)."""
    attached = StateDirRuntime(store["state"])
    try:
        with ApiServer(create_app(attached, ApiSettings())) as server:
            w = watched(token=None)
            page = w.page
            page.goto(server.url + "/")
            page.wait_for_selector('tr[data-sku="FOODS_3_090"]')
            want = _stock(store["url"], "FOODS_3_090")
            assert _cells(page, "FOODS_3_090")["available"] == str(want["available"])
            page.wait_for_selector("#alert-list li.kind-conflict")
            assert "state directory" in page.locator("#forecast-note").inner_text()
            w.shot("dashboard-attached")
            w.assert_clean()
            w.close()
    finally:
        attached.close()


def test_api_docs_render_offline(store, watched):
    url = store["url"]
    operations = sum(len(ops) for ops in httpx.get(url + "/openapi.json").json()["paths"].values())
    w = watched(token=None)
    page = w.page
    page.goto(url + "/docs")
    page.wait_for_selector("#swagger-ui .opblock")
    page.wait_for_function(
        f"() => document.querySelectorAll('#swagger-ui .opblock').length >= {operations}"
    )
    assert "shelfcast gateway API" in page.locator("#swagger-ui .info .title").inner_text()
    w.shot("api-docs-swagger")

    page.goto(url + "/redoc")
    page.wait_for_selector('[data-section-id^="operation/"]')
    assert page.locator('[data-section-id^="operation/"]').count() >= operations
    w.shot("api-docs-redoc")
    w.assert_clean()
