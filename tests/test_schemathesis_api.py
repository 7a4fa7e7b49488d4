"""Schemathesis against the app's own OpenAPI schema, every check, on real uvicorn over a real
gateway (ledger, forecast policy, outbox; MQTT off): no 5xx, no response that violates the
schema."""

from __future__ import annotations

import pytest

from api.app import create_app
from api.settings import ApiSettings
from edge_runtime.gateway import Gateway
from tests.api_server import ApiServer
from tests.schemathesis_run import run_schemathesis
from tests.test_api_predictions import forecasting_gateway

TOKEN = "schemathesis-token-0123"


def seeded_gateway(state_dir) -> Gateway:
    """A forecasting gateway with a few SKUs in stock, so every route (predictions included)
    and reads of known SKUs are exercised too."""
    gw = forecasting_gateway(state_dir, skus=["0", "A-1", "B-2"])
    gw.ingest(
        [
            {"event_id": f"seed-{i}", "store_id": "S1", "sku": sku, "type": "receipt", "qty": 20,
             "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
            for i, sku in enumerate(["0", "A-1", "B-2"])
        ],
        "seed",
    )  # fmt: skip
    return gw


@pytest.mark.slow
def test_schemathesis_finds_no_failures(tmp_path):
    gw = seeded_gateway(tmp_path / "state")
    with ApiServer(create_app(gw, ApiSettings(token=TOKEN))) as server:
        operations = len(server_operations(server.url))
        outcome = run_schemathesis(server.url, TOKEN, max_examples=15)
    gw.close()
    assert operations == 14  # predictions, sales and the alert stream included
    assert outcome.tests >= 10, outcome.output[-3000:]
    assert (outcome.failures, outcome.errors) == (0, 0), outcome.output[-6000:]


def server_operations(url: str) -> list[tuple[str, str]]:
    import httpx

    paths = httpx.get(url + "/openapi.json").json()["paths"]
    return [(m, p) for p, ops in paths.items() for m in ops]
