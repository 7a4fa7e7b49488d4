"""What a gateway process loads before it subscribes: every import there delays the first
acknowledgement after a restart, while the broker's queue for it fills. Checked in a fresh
interpreter (this one has loaded everything the other tests needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edge_runtime.config import load_config
from edge_runtime.gateway import Gateway
from tests.signed_bundles import make_bundle, public_key_env
from tests.test_gateway_model import daily_sales, demand_bundle, ev

ROOT = Path(__file__).resolve().parent.parent

# Never needed by a gateway before it consumes: training, the hub, the HTTP API, dataframes,
# the JetStream uplink (only where a hub is configured) and SciPy's packages (the decisions'
# incomplete beta is the gateway's own; River imports the bare ``scipy`` package, which is cheap).
SCIPY_PACKAGES = ("scipy.special", "scipy.signal", "scipy.stats", "scipy.linalg")
NOT_BEFORE_SUBSCRIBING = (
    "pandas", "polars", "mlflow", "lightgbm", "sklearn", "training", "hub", "api", "fastapi",
    "starlette", "uvicorn", "nats", "edge_runtime.transport.jetstream_uplink", *SCIPY_PACKAGES,
)  # fmt: skip


def loaded_in_fresh_process(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Which of ``NOT_BEFORE_SUBSCRIBING``, ``onnxruntime`` and ``river`` a new interpreter has
    loaded after running ``code``."""
    names = [*NOT_BEFORE_SUBSCRIBING, "onnxruntime", "river"]
    report = f"print(json.dumps([m for m in {names!r} if m in sys.modules]))"
    probe = f"{code}\nimport sys, json\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_the_run_command_loads_nothing_a_gateway_does_not_need_to_consume():
    assert loaded_in_fresh_process("import edge_runtime.run_command") == []


def test_a_restart_with_its_checked_bundle_loads_no_onnx_runtime_nor_river_before_consuming(
    tmp_path,
):
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
           "SHELFCAST_MQTT_ENABLED": "false", "SHELFCAST_BUNDLE": str(make_bundle(tmp_path / "b")),
           **public_key_env()}  # fmt: skip
    with Gateway(load_config(env=env)):  # installs and checks the bundle
        pass
    start = (
        "from edge_runtime.config import load_config\n"
        "from edge_runtime.gateway import Gateway\n"
        "gw = Gateway(load_config())\n"
        "assert gw.model is not None and gw.bundle_problem is None\n"
    )
    assert loaded_in_fresh_process(start, env) == []


def test_a_restart_decides_its_first_events_without_scipy(tmp_path):
    """The first batch after a restart closes a day (features, the model) and runs the forecast
    decisions (a stock-out alert, from the negative-binomial probability), and still loads
    nothing of SciPy's packages."""
    env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path / "state"),
           "SHELFCAST_MQTT_ENABLED": "false", **public_key_env(),
           "SHELFCAST_BUNDLE": str(demand_bundle(tmp_path / "bundles" / "col-7"))}  # fmt: skip
    history = [ev("r-A", "A", "receipt", 21, 1), *daily_sales("A", 3, range(1, 7))]
    with Gateway(load_config(env=env)) as gw:
        gw.ingest(history, "seed")  # closes days 1..5: a forecast of ~3 a day
    surge = [ev("surge", "A", "sale", 2, 7, 12)]  # closes day 6; 1 left of 21
    first_batch = (
        "from edge_runtime.config import load_config\n"
        "from edge_runtime.gateway import Gateway\n"
        "gw = Gateway(load_config())\n"
        f"gw.ingest({surge!r}, 'pos')\n"
        "alerts = [m for m in gw.recent_messages() if m['kind'] == 'stockout']\n"
        "assert alerts and alerts[0]['reason_codes'] == ['FORECAST_RISK'], alerts\n"
        "assert gw.counters['day_closes'] == 1, gw.counters\n"
    )
    assert set(loaded_in_fresh_process(first_batch, env)).isdisjoint(SCIPY_PACKAGES)
