"""The gateway's HTTP API under load, and its hardening figures.

    python benchmarks/api.py --json out.json [--quick]

Everything runs on this machine over loopback. The API is the real product process:
``shelfcast serve`` (uvicorn, one worker, with the edge runtime in the same process: SQLite ledger
with ``synchronous=FULL``, rule policy, outbox; MQTT off so no broker is needed for the load part),
started on a free port with a fresh state directory and 1,000 SKUs in stock.

Load generator: ``wrk`` (Debian package; installed with apt-get when missing and root), one
thread, 16 connections, on the same 2-core box as the server, so client and server share the CPUs.
Each figure is the median of ``--runs`` runs:

- ``health``: ``GET /health``, no ledger work: the framework baseline the others are divided by;
- ``stock``: ``GET /v1/stock/{sku}`` for a random one of the 1,000 SKUs;
- ``ingest``: ``POST /v1/events`` with one new event per request (receipts and sales alternating,
  unique ``event_id``), each durable (fsync) before the 200 answers, the rule policy deciding on it.

Hardening:

- ``schemathesis_failures``: schemathesis (CLI, every check, every operation of ``/openapi.json``)
  against the same server (``tests/schemathesis_run.py``).
- ``fuzz_*``: ``tests/fuzz_messages.py`` hostile messages, N through the API of the served process
  and N over MQTT through a real Mosquitto into a gateway in this process. ``fuzz_crashes`` counts
  5xx answers, a server that stopped answering, and MQTT payload groups whose ingest raised (logged
  by the gateway) instead of being judged; ``fuzz_dead_lettered`` counts dead-letter rows written.
  A third run sends N over MQTT without the shapes the runtime is known to crash on, to show
  the rest of the MQTT path; it is reported apart and not in the headline figures.
- ``tampered_bundles_accepted`` (goal 0): ``PUT /v1/bundle`` of each bundle in
  ``tests/tampered_bundles.py`` (an edited ``metadata.json`` with a recomputed manifest: old
  signature, no signature, another key's; signed models whose demand outputs are NaN, 1e30 or
  negative; a model off its reference set) to the served process; ``tampered_reasons_with_paths``
  counts refusals that name a temporary path, ``oversized_upload_refused_s`` is how long a
  ``Content-Length`` of 300 MB takes to be answered 413 with no body sent. Alone, in seconds:
  ``python benchmarks/api.py --tampered-only --json out.json``.
- ``fuzz_silently_dropped`` (goal 0): items neither applied, nor an idempotent duplicate, nor
  dead-lettered. Mostly from the mixed runs: ``tests/fuzz_messages.mixed_payloads`` (valid
  events beside duplicates, reused ids, events dated 1970, year 1 and a year ahead of the ledger,
  absurd quantities, payloads on unknown topics), M payloads through the API of a fresh served
  process and M over MQTT into a gateway in this process, each holding the same history; plus
  the hostile runs' messages that were neither dead-lettered nor applied.

    python benchmarks/api.py --fuzz-only --quick --json out.json   # the fuzz figures alone
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402
from tests.api_server import free_port  # noqa: E402
from tests.fuzz_messages import (  # noqa: E402
    RUNTIME_CRASHERS,
    expected,
    history,
    hostile_messages,
    mixed_payloads,
    mqtt_payloads,
    post_all,
    post_mixed,
    publish_all,
    publish_mixed,
)
from tests.schemathesis_run import run_schemathesis  # noqa: E402

TOKEN = "bench-token-0123456789"
STORE = "S1"
SKUS = 1000

STOCK_LUA = """
math.randomseed(42)
request = function()
  return wrk.format("GET", "/v1/stock/B-" .. math.random(0, @LAST@))
end
""".replace("@LAST@", str(SKUS - 1))

INGEST_LUA = """
local counter = 0
local prefix = "run"
local headers = {}
init = function(args)
  prefix = args[1]
  headers["Authorization"] = "Bearer " .. args[2]
  headers["Content-Type"] = "application/json"
end
request = function()
  counter = counter + 1
  local kind = "receipt"
  if counter % 2 == 0 then kind = "sale" end
  local body = string.format('{"event_id":"%s-%d","store_id":"@STORE@","sku":"B-%d","type":"%s",'
    .. '"qty":1,"event_time":"2026-01-05T10:00:00+00:00","source":"pos"}',
    prefix, counter, counter % @SKUS@, kind)
  return wrk.format("POST", "/v1/events", headers, body)
end
""".replace("@STORE@", STORE).replace("@SKUS@", str(SKUS))


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        print("installing wrk (apt-get)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


# -- the served process ---------------------------------------------------------------------------


class Served:
    """``shelfcast serve`` in its own process, on a free port, over a fresh state directory."""

    def __init__(self, state_dir: Path, public_key: Path):
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SHELFCAST_API_TOKEN": TOKEN, "SHELFCAST_MQTT_ENABLED": "false",
               "SHELFCAST_MODEL_PUBLIC_KEY": str(public_key)}  # fmt: skip
        cmd = [sys.executable, "-m", "shelfcast.cli", "serve", "--store-id", STORE,
               "--state-dir", str(state_dir), "--port", str(self.port), "--log-level", "WARNING"]  # fmt: skip
        self.log = open(state_dir.parent / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while not self.alive_and_answering():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"shelfcast serve did not start; see {self.log.name}")
            time.sleep(0.1)

    def alive_and_answering(self) -> bool:
        if self.proc.poll() is not None:
            return False
        try:
            return httpx.get(self.url + "/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def ledger(self) -> Path:
        return self.state_dir / "ledger.sqlite"

    def rss_mb(self) -> float:
        """Resident memory of the served process now (``VmRSS``), in MB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        kb = next(line.split()[1] for line in status if line.startswith("VmRSS:"))
        return round(int(kb) / 1024, 1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def seed(url: str) -> None:
    events = [
        {"event_id": f"seed-{i}", "store_id": STORE, "sku": f"B-{i}", "type": "receipt",
         "qty": 100_000, "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
        for i in range(SKUS)
    ]  # fmt: skip
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.post(url + "/v1/events/batch", json=events, headers=headers, timeout=60)
    assert response.json()["accepted"] == SKUS, response.text


def install_bundle(url: str, bundle: Path | None, tmp: Path) -> str:
    """PUT a model bundle (``--bundle``, e.g. one from ``shelfcast train``; else a tiny real ONNX
    bundle built here) so the prediction routes answer instead of 503; returns what was used."""
    from tests.test_api_bundle import make_bundle

    root = bundle or make_bundle(tmp / "bench-bundle")
    response = put_archive(url, root)
    if response.status_code != 200:
        raise SystemExit(f"bundle {root} refused: {response.text}")
    return f"{root} (model_version {response.json()['model_version']})"


def trusted_key(bundle: Path | None, given: Path | None) -> Path:
    """The public key the served gateway checks bundles with: ``--public-key``, else the test
    key for the tiny bundle built here, else the key ``shelfcast train`` signs with."""
    if given:
        return given
    if bundle is None:
        from tests.signed_bundles import key_pair

        return key_pair()[1]
    from training.signing_key import public_key_path, signing_key_path

    return public_key_path(ROOT / signing_key_path())


def put_archive(url: str, root: Path) -> httpx.Response:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root, arcname=root.name)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.put(url + "/v1/bundle", content=buf.getvalue(), headers=headers, timeout=120)


def tampered_bundles(url: str, tmp: Path) -> dict:
    """Each tampered bundle PUT to the served gateway: accepted or refused, and why."""
    from tests.tampered_bundles import CASES

    cases = {}
    for case, build in CASES.items():
        response = put_archive(url, build(tmp / "tampered" / case))
        reason = response.json().get("message", "") if response.status_code != 200 else ""
        cases[case] = {
            "status": response.status_code,
            "accepted": response.status_code == 200,
            "reason": reason,
            "names_a_temporary_path": "bundle-upload-" in reason or tempfile.gettempdir() in reason,
        }
    return cases


def oversized_upload(url: str, declared: int = 300 * 1024 * 1024) -> dict:
    """Declare ``declared`` bytes, send none: the seconds until the 413 and its status line."""
    import socket

    host, port = url.rsplit("/", 1)[-1].split(":")
    start = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"PUT /v1/bundle HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
        )
        try:
            status = sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]
        except TimeoutError:
            status = "no answer within 30 s"
    return {"status_line": status, "seconds": time.perf_counter() - start}


def bundle_hardening(url: str, tmp: Path) -> dict:
    cases = tampered_bundles(url, tmp)
    big = oversized_upload(url)
    return {
        "tampered_bundles_accepted": sum(c["accepted"] for c in cases.values()),
        "tampered_bundles_tried": len(cases),
        "tampered_reasons_with_paths": sum(c["names_a_temporary_path"] for c in cases.values()),
        "oversized_upload_status": big["status_line"],
        "oversized_upload_refused_s": round(big["seconds"], 4),
        "tampered_bundles": cases,
    }


def ledger_facts(path: Path) -> dict:
    """Events, dead letters and a digest of the stock table, read through a read-only connection."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        dead, blank = conn.execute(
            "SELECT count(*), coalesce(sum(reason IS NULL OR reason = ''), 0) FROM dead_letters"
        ).fetchone()
        stock = conn.execute("SELECT * FROM stock ORDER BY sku").fetchall()
    finally:
        conn.close()
    return {
        "events": events,
        "dead_letters": dead,
        "blank_reasons": blank,
        "stock": hash(tuple(stock)),
    }


# -- load ------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * _UNITS[unit]


def run_wrk(wrk: str, url: str, script: Path | None, seconds: int, args: list[str]) -> dict:
    cmd = [wrk, "-t1", "-c16", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd += [url, *(["--", *args] if args else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def median_of(runs: list[dict]) -> dict:
    keys = ("requests_per_s", "p50_ms", "p99_ms")
    out = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    out["runs"] = len(runs)
    out["non_2xx"] = sum(r["non_2xx"] for r in runs)
    out["all_runs"] = runs
    return out


def load(served: Served, seconds: int, runs: int, tmp: Path) -> dict:
    wrk = ensure_wrk()
    stock_lua, ingest_lua = tmp / "stock.lua", tmp / "ingest.lua"
    stock_lua.write_text(STOCK_LUA)
    ingest_lua.write_text(INGEST_LUA)
    results: dict[str, list[dict]] = {"health": [], "stock": [], "ingest": []}
    events_before = ledger_facts(served.ledger)["events"]
    for r in range(runs):  # interleaved, so drift on a shared box hits every target alike
        results["health"].append(run_wrk(wrk, served.url + "/health", None, seconds, []))
        results["stock"].append(run_wrk(wrk, served.url, stock_lua, seconds, []))
        results["ingest"].append(run_wrk(wrk, served.url, ingest_lua, seconds, [f"r{r}", TOKEN]))
    out = {name: median_of(rs) for name, rs in results.items()}
    stored = ledger_facts(served.ledger)["events"] - events_before
    answered = sum(r["requests_per_s"] * seconds for r in results["ingest"])
    out["ingest"]["events_stored"] = stored
    out["ingest"]["events_answered_approx"] = round(answered)
    return out


# -- hardening -------------------------------------------------------------------------------------


def fuzz_api(served: Served, n: int, seed: int) -> dict:
    before = ledger_facts(served.ledger)
    rss_before = served.rss_mb()
    counts = post_all(served.url, TOKEN, hostile_messages(n, STORE, seed=seed))
    after = ledger_facts(served.ledger)
    alive = served.alive_and_answering()
    rss_after = served.rss_mb() if alive else None
    dead = after["dead_letters"] - before["dead_letters"]
    applied = after["events"] - before["events"]
    return {
        "messages": n,
        "requests": counts["requests"],
        "crashes": counts["5xx"] + (0 if alive else 1),
        "dead_lettered": dead,
        "applied": applied,
        "silently_dropped": n - dead - applied,
        "blank_reasons": after["blank_reasons"] - before["blank_reasons"],
        "accepted": counts["accepted"],
        "ledger_unchanged": (before["events"], before["stock"])
        == (after["events"], after["stock"]),
        "rss_mb_before": rss_before,
        "rss_mb_after": rss_after,
    }


class _Failures(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "ingest of" in record.getMessage():
            self.count += 1


def fuzz_mqtt(n: int, seed: int, tmp: Path, exclude: frozenset[str] = frozenset()) -> dict:
    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.gateway import Gateway
    from tests.mosquitto import Mosquitto, mosquitto_binary

    if mosquitto_binary() is None:
        return {"messages": 0, "skipped": "mosquitto not installed"}
    failures = _Failures()
    logging.getLogger("edge_runtime.gateway").addHandler(failures)
    pool = hostile_messages(n * 2 if exclude else n, STORE, seed=seed)
    messages = [m for m in pool if m.category not in exclude][:n]
    n = len(messages)
    with Mosquitto(tmp / f"broker-{seed}") as broker:
        env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(tmp / f"mqtt-state-{seed}")}
        cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)
        gw = Gateway(cfg).start()
        try:
            gw.transport.wait_connected(10)
            before = ledger_facts(cfg.ledger_path)
            publish_all(broker.port, mqtt_payloads(messages), STORE)
            # Wait until every message is dead-lettered, or nothing has moved for 10 s.
            deadline, last, last_change = time.monotonic() + 120, -1, time.monotonic()
            while time.monotonic() < deadline:
                done = ledger_facts(cfg.ledger_path)["dead_letters"] - before["dead_letters"]
                if done != last:
                    last, last_change = done, time.monotonic()
                if done >= n or time.monotonic() - last_change > 10:
                    break
                time.sleep(0.2)
            after = ledger_facts(cfg.ledger_path)
            alive = gw._worker is not None and gw._worker.is_alive()
        finally:
            gw.close()
    logging.getLogger("edge_runtime.gateway").removeHandler(failures)
    dead = after["dead_letters"] - before["dead_letters"]
    applied = after["events"] - before["events"]
    return {
        "messages": n,
        "excluded_categories": sorted(exclude),
        "crashes": failures.count + (0 if alive else 1),
        "dead_lettered": dead,
        "not_dead_lettered": n - dead,
        "applied": applied,
        "silently_dropped": n - dead - applied,
        "blank_reasons": after["blank_reasons"] - before["blank_reasons"],
        "ledger_unchanged": (before["events"], before["stock"])
        == (after["events"], after["stock"]),
    }


def _mixed_outcome(payloads, before: dict, after: dict, duplicates: int) -> dict:
    sent = sum(len(m.fates) for m in payloads)
    applied = after["events"] - before["events"]
    dead = after["dead_letters"] - before["dead_letters"]
    return {
        "payloads": len(payloads),
        "items": sent,
        "expected": expected(payloads),
        "applied": applied,
        "duplicates": duplicates,
        "dead_lettered": dead,
        "silently_dropped": sent - applied - duplicates - dead,
        # Refused items that got in (implausible, reused ids): 0 when each met its fate.
        "wrongly_applied": max(0, applied - expected(payloads)["applied"]),
        "blank_reasons": after["blank_reasons"] - before["blank_reasons"],
    }


def fuzz_mixed_api(n: int, seed: int, tmp: Path) -> dict:
    """Mixed payloads through the API of a fresh ``shelfcast serve`` holding the history (those
    on an unknown topic are MQTT-only and left out)."""
    root = tmp / f"mixed-api-{seed}"
    root.mkdir()
    served = Served(root / "state", trusted_key(None, None))
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        httpx.post(served.url + "/v1/events/batch", json=history(STORE), headers=headers)
        payloads = [m for m in mixed_payloads(n, STORE, seed=seed) if m.topic_ok]
        before = ledger_facts(served.ledger)
        said = post_mixed(served.url, TOKEN, payloads)
        after = ledger_facts(served.ledger)
        alive = served.alive_and_answering()
    finally:
        served.stop()
    out = _mixed_outcome(payloads, before, after, said["duplicate"])
    return {**out, "crashes": said["5xx"] + (0 if alive else 1)}


def fuzz_mixed_mqtt(n: int, seed: int, tmp: Path) -> dict:
    """Mixed payloads over a real Mosquitto into a gateway in this process holding the history."""
    from edge_runtime.config import load_config, with_mqtt
    from edge_runtime.gateway import Gateway
    from tests.mosquitto import Mosquitto, mosquitto_binary

    if mosquitto_binary() is None:
        return {"payloads": 0, "skipped": "mosquitto not installed"}
    payloads = mixed_payloads(n, STORE, seed=seed)
    with Mosquitto(tmp / f"broker-mixed-{seed}") as broker:
        env = {"SHELFCAST_STORE_ID": STORE, "SHELFCAST_STATE_DIR": str(tmp / f"mixed-{seed}")}
        cfg = with_mqtt(load_config(env=env), host="127.0.0.1", port=broker.port)
        gw = Gateway(cfg).start()
        try:
            gw.transport.wait_connected(10)
            gw.ingest(history(STORE), "seed")
            before, dups = ledger_facts(cfg.ledger_path), gw.counters["duplicates"]
            publish_mixed(broker.port, payloads, STORE)
            sent = sum(len(m.fates) for m in payloads)
            # Wait until every item is accounted for, or nothing has moved for 10 s.
            deadline, last, last_change = time.monotonic() + 120, -1, time.monotonic()
            while time.monotonic() < deadline:
                now = ledger_facts(cfg.ledger_path)
                done = (now["events"] - before["events"] + now["dead_letters"]
                        - before["dead_letters"] + gw.counters["duplicates"] - dups)  # fmt: skip
                if done != last:
                    last, last_change = done, time.monotonic()
                if done >= sent or time.monotonic() - last_change > 10:
                    break
                time.sleep(0.2)
            after = ledger_facts(cfg.ledger_path)
            duplicates = gw.counters["duplicates"] - dups
            alive = gw._worker is not None and gw._worker.is_alive()
        finally:
            gw.close()
    return {**_mixed_outcome(payloads, before, after, duplicates), "crashes": 0 if alive else 1}


# -- report ----------------------------------------------------------------------------------------


def table(result: dict) -> str:
    rows = ["| figure | value |", "| --- | --- |"]
    m = result["machine"]
    rows.append(f"| machine | {m['nproc']} CPUs, {m['memory_gib']} GiB, {m['cpu']} |")
    for name in ("health", "stock", "ingest"):
        if name in result.get("load", {}):
            r = result["load"][name]
            rows.append(
                f"| {name}: requests/s (median of {r['runs']}) | {r['requests_per_s']:.0f} |"
            )
            rows.append(f"| {name}: p50 / p99 latency ms | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} |")
    for key in ("stock_vs_health", "ingest_vs_health"):
        if key in result:
            rows.append(f"| {key} (throughput ratio) | {result[key]:.3f} |")
    for key in ("schemathesis_failures", "schemathesis_errors", "schemathesis_test_operations",
                "fuzz_messages", "fuzz_crashes", "fuzz_dead_lettered", "fuzz_not_dead_lettered",
                "fuzz_silently_dropped", "rss_growth_mb_during_fuzz"):  # fmt: skip
        if key in result:
            rows.append(f"| {key} | {result[key]} |")
    for key in ("tampered_bundles_accepted", "tampered_bundles_tried",
                "tampered_reasons_with_paths", "oversized_upload_status",
                "oversized_upload_refused_s"):  # fmt: skip
        if key in result:
            rows.append(f"| {key} | {result[key]} |")
    for transport in ("api", "mqtt", "mqtt_without_crashers"):
        f = result.get("fuzz", {}).get(transport)
        if f:
            rows.append(
                f"| fuzz via {transport}: messages / crashes / dead-lettered / ledger unchanged | "
                f"{f.get('messages')} / {f.get('crashes')} / {f.get('dead_lettered')} / "
                f"{f.get('ledger_unchanged')} |"
            )
    for transport in ("mixed_api", "mixed_mqtt"):
        f = result.get("fuzz", {}).get(transport)
        if f and "items" in f:
            rows.append(
                f"| fuzz {transport}: items / applied / duplicates / dead-lettered / dropped | "
                f"{f['items']} / {f['applied']} / {f['duplicates']} / {f['dead_lettered']} / "
                f"{f['silently_dropped']} |"
            )
    return "\n".join(rows)


def write(result: dict, path: Path | None) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def tampered_only(args: argparse.Namespace) -> int:
    """The bundle figures alone against a served process holding a good bundle."""
    result: dict = {"machine": machine(), "load": {}}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        served = Served(tmp / "state", trusted_key(args.bundle, args.public_key))
        try:
            result["setup"] = {"bundle": install_bundle(served.url, args.bundle, tmp)}
            result.update(bundle_hardening(served.url, tmp))
        finally:
            served.stop()
    print(table(result))
    write(result, args.json)
    return 0


def measure_load_and_schema(result: dict, served: Served, args, seconds: int, runs: int, tmp: Path):
    """The load figures and schemathesis against the served process (into ``result``)."""
    print(f"load: {runs} run(s) x {seconds} s per target ...", file=sys.stderr)
    result["load"] = load(served, seconds, runs, tmp)
    health = result["load"]["health"]["requests_per_s"]
    result["stock_vs_health"] = result["load"]["stock"]["requests_per_s"] / health
    result["ingest_vs_health"] = result["load"]["ingest"]["requests_per_s"] / health
    print("schemathesis ...", file=sys.stderr)
    outcome = run_schemathesis(served.url, TOKEN, max_examples=5 if args.quick else 15)
    result["schemathesis_failures"] = outcome.failures
    result["schemathesis_errors"] = outcome.errors
    result["schemathesis_test_operations"] = outcome.tests
    result["schemathesis_tail"] = outcome.output[-4000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="short runs for development")
    parser.add_argument("--seconds", type=int, help="seconds per load run (default 10; quick 3)")
    parser.add_argument("--runs", type=int, help="load runs per target (default 3; quick 1)")
    parser.add_argument(
        "--fuzz", type=int, help="hostile messages per transport (10000; quick 2000)"
    )
    parser.add_argument("--mixed", type=int, help="mixed payloads per transport (2000; quick 400)")
    parser.add_argument(
        "--fuzz-only", action="store_true", help="only the fuzz runs (no load, no schemathesis)"
    )
    parser.add_argument(
        "--bundle", type=Path, help="model bundle directory to serve predictions with"
    )
    parser.add_argument(
        "--public-key",
        type=Path,
        help="public key the served gateway trusts (default: the test key for the tiny bundle, "
        "training's key with --bundle)",
    )
    parser.add_argument(
        "--tampered-only",
        action="store_true",
        help="only the bundle figures (tampered_bundles_accepted, oversized upload): seconds",
    )
    args = parser.parse_args(argv)
    if args.tampered_only:
        return tampered_only(args)
    seconds = args.seconds or (3 if args.quick else 10)
    runs = args.runs or (1 if args.quick else 3)
    n_fuzz = args.fuzz or (2000 if args.quick else 10_000)
    n_mixed = args.mixed or (400 if args.quick else 2000)
    result: dict = {"machine": machine(), "setup": {
        "server": "shelfcast serve (uvicorn, 1 worker, runtime in-process, MQTT off)",
        "load_generator": "wrk -t1 -c16 --latency (same machine)",
        "seconds_per_run": seconds, "runs": runs, "skus": SKUS,
    }}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        served = Served(tmp / "state", trusted_key(args.bundle, args.public_key))
        try:
            seed(served.url)
            if not args.fuzz_only:
                result["setup"]["bundle"] = install_bundle(served.url, args.bundle, tmp)
                print("tampered bundles ...", file=sys.stderr)
                result.update(bundle_hardening(served.url, tmp))
                measure_load_and_schema(result, served, args, seconds, runs, tmp)
            print(f"fuzz: {n_fuzz} hostile messages via the API ...", file=sys.stderr)
            api_fuzz = fuzz_api(served, n_fuzz, seed=7)
            print(f"served RSS {api_fuzz['rss_mb_before']} MB before the fuzz run, "
                  f"{api_fuzz['rss_mb_after']} MB after", file=sys.stderr)  # fmt: skip
        finally:
            served.stop()
        print(f"fuzz: {n_fuzz} hostile messages via MQTT ...", file=sys.stderr)
        mqtt_fuzz = fuzz_mqtt(n_fuzz, seed=8, tmp=tmp)
        print(
            "fuzz: the same over MQTT without the shapes the runtime crashes on ...",
            file=sys.stderr,
        )
        mqtt_rest = fuzz_mqtt(n_fuzz, seed=9, tmp=tmp, exclude=RUNTIME_CRASHERS)
        print(f"fuzz: {n_mixed} mixed payloads via the API and via MQTT ...", file=sys.stderr)
        mixed_api = fuzz_mixed_api(n_mixed, seed=11, tmp=tmp)
        mixed_mqtt = fuzz_mixed_mqtt(n_mixed, seed=12, tmp=tmp)
    result["fuzz"] = {"api": api_fuzz, "mqtt": mqtt_fuzz, "mqtt_without_crashers": mqtt_rest,
                      "mixed_api": mixed_api, "mixed_mqtt": mixed_mqtt}  # fmt: skip
    parts = [api_fuzz, mqtt_fuzz]
    result["fuzz_messages"] = sum(p.get("messages", 0) for p in parts)
    result["fuzz_crashes"] = sum(p.get("crashes", 0) for p in parts)
    result["fuzz_dead_lettered"] = sum(p.get("dead_lettered", 0) for p in parts)
    result["fuzz_not_dead_lettered"] = result["fuzz_messages"] - result["fuzz_dead_lettered"]
    result["fuzz_silently_dropped"] = sum(
        p.get("silently_dropped", 0) for p in (api_fuzz, mqtt_fuzz, mixed_api, mixed_mqtt)
    )
    if api_fuzz["rss_mb_after"] is not None:
        growth = api_fuzz["rss_mb_after"] - api_fuzz["rss_mb_before"]
        result["rss_growth_mb_during_fuzz"] = round(growth, 1)
    for name in ("stock", "ingest"):
        if name in result.get("load", {}):
            result[f"{name}_requests_per_s"] = result["load"][name]["requests_per_s"]
            result[f"{name}_p99_ms"] = result["load"][name]["p99_ms"]
    print(table(result))
    write(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
