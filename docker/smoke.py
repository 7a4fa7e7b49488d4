#!/usr/bin/env python3
"""Smoke-test the gateway image inside its own file system (chroot into the exported rootfs).

`podman run` does not work on our build machines, so this runs the image the way a container
engine would, minus namespaces: the image's python and venv, its non-root user (uid 10001), its
environment, working directory, ENTRYPOINT + CMD and HEALTHCHECK, read from the image config.
A real Mosquitto on the host carries the MQTT side (the chroot shares the host's network).

Steps: install a model bundle into the volume, start ``shelfcast serve``, wait until the image's
HEALTHCHECK passes, ingest events over HTTP, wait for the alert they cause on MQTT, check the
ledger and the loaded bundle through the API, optionally load N SKUs and read the process's
RSS, then stop it with SIGTERM. Needs root (chroot, mounts).

    sudo docker/export_rootfs.sh var/image/rootfs
    sudo .venv/bin/python docker/smoke.py var/image/rootfs --json var/image/smoke.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

UID = 10001
STORE = "S1"
TOKEN = "smoke-test-token-0123"


class SmokeFailure(RuntimeError):
    """A smoke-test step failed; the message says which and what was seen."""


def image_config(rootfs: Path) -> dict:
    """The image's runtime config (Env, Entrypoint, Cmd, User, WorkingDir, Healthcheck)."""
    inspected = json.loads(Path(f"{rootfs}.config.json").read_text())
    item = inspected[0] if isinstance(inspected, list) else inspected
    config = dict(item["Config"])
    # podman keeps the HEALTHCHECK beside Config (docker format only; OCI would drop it).
    config["Healthcheck"] = item.get("Healthcheck") or config.get("Healthcheck")
    if not config["Healthcheck"]:
        raise SmokeFailure("the image has no HEALTHCHECK (built without --format docker?)")
    return config


def tiny_bundle(out: Path) -> Path:
    """A real (tiny) ONNX bundle matching this checkout's feature spec, signed by the test key."""
    from tests.test_api_bundle import make_bundle

    return make_bundle(out)


def signing_public_key(bundle: Path | None) -> Path:
    """The public key that checks ``bundle``: the test key for the tiny bundle, else the key
    training signs with (``shelfcast train``'s default or ``$SHELFCAST_SIGNING_KEY``)."""
    if bundle is None:
        from tests.signed_bundles import key_pair

        return key_pair()[1]
    from training.signing_key import public_key_path, signing_key_path

    return public_key_path(signing_key_path())


@contextlib.contextmanager
def mounted(rootfs: Path):
    """/proc, /dev and /sys inside the rootfs for the life of the test (ONNX Runtime reads them)."""
    done: list[Path] = []
    try:
        for what, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"])):
            target = rootfs / what
            subprocess.run(["mount", *args, str(target)], check=True)
            done.append(target)
        subprocess.run(["mount", "--bind", "/sys", str(rootfs / "sys")], check=True)
        done.append(rootfs / "sys")
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)


def in_image(rootfs: Path, config: dict, env: dict[str, str], argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` as the image would: its user, env and workdir."""
    user = str(config.get("User") or "0:0")
    workdir = config.get("WorkingDir") or "/"
    pairs = [f"{k}={v}" for k, v in env.items()]
    shell = 'cd "$0" && exec "$@"'
    return [
        "chroot",
        f"--userspec={user}",
        str(rootfs),
        "/usr/bin/env",
        "-i",
        *pairs,
        "/bin/sh",
        "-c",
        shell,
        workdir,
        *argv,
    ]


def image_env(config: dict, overrides: dict[str, str]) -> dict[str, str]:
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    env.setdefault("HOME", "/var/lib/shelfcast")
    return {**env, **overrides}


def http(method: str, url: str, body: object | None = None, timeout: float = 30.0) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def ready(api: str, timeout: float = 30.0) -> dict:
    """``/ready`` once it answers 200; it answers 503 while a required part is down (e.g. the
    broker not connected yet), naming it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http("GET", f"{api}/ready")
        except urllib.error.HTTPError as err:
            if err.code != 503 or time.monotonic() > deadline:
                raise SmokeFailure(f"/ready answered {err.code}: {err.read()[:500]!r}") from None
            time.sleep(0.2)


def event(n: int, sku: str, kind: str, qty: int) -> dict:
    return {
        "event_id": f"smoke-{n}-{sku}",
        "store_id": STORE,
        "sku": sku,
        "type": kind,
        "qty": qty,
        "event_time": f"2026-01-05T10:{n // 60 % 60:02d}:{n % 60:02d}+00:00",
        "source": "pos" if kind == "sale" else "wms",
    }


class AlertWatcher:
    """``mosquitto_sub`` on the store's alert topics; notes when the first alert arrives."""

    def __init__(self, port: int):
        self.lines: list[str] = []
        self.first_at: float | None = None
        self.proc = subprocess.Popen(
            [
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-q",
                "1",
                "-v",
                "-t",
                f"shelfcast/{STORE}/alerts/#",
                "-t",
                f"shelfcast/{STORE}/state",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if "/alerts/" in line and self.first_at is None:
                self.first_at = time.monotonic()
            self.lines.append(line.strip())

    def alerts(self) -> list[str]:
        return [line for line in self.lines if "/alerts/" in line]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def wait_for(what: str, check, timeout: float, proc: subprocess.Popen) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SmokeFailure(f"{what}: the gateway exited with code {proc.returncode}")
        if check():
            return time.monotonic()
        time.sleep(0.05)
    raise SmokeFailure(f"{what}: not seen within {timeout:.0f} s")


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of ``pid`` in MB (VmRSS, VmHWM)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def load_skus(api: str, count: int, batch: int = 2500) -> float:
    """A receipt and a sale for each of ``count`` distinct SKUs (synthetic ids) through the batch
    endpoint, so every SKU has ledger and decision state; returns the seconds taken."""
    start = time.monotonic()
    for first in range(0, count, batch):
        skus = [f"LOAD-{i:06d}" for i in range(first, min(first + batch, count))]
        events = [event(0, s, "receipt", 20) for s in skus] + [event(1, s, "sale", 1) for s in skus]
        result = http("POST", f"{api}/v1/events/batch", events, timeout=120)
        if result.get("accepted", 0) + result.get("duplicates", 0) < len(events):
            raise SmokeFailure(f"loading SKUs: batch at {first} answered {result}")
    return time.monotonic() - start


def run_smoke(
    rootfs: Path, bundle: Path | None, skus: int, work: Path, public_key: Path | None = None
) -> dict:
    """Run every step; returns the figures seen (raises SmokeFailure on the first failed step)."""
    from tests.mosquitto import Mosquitto

    config = image_config(rootfs)
    state = rootfs / "var/lib/shelfcast"
    for old in state.iterdir():  # a fresh volume each run, as a new container would get
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    key = public_key or signing_public_key(bundle)
    shutil.copytree(bundle or tiny_bundle(work / "bundle"), state / "bundle")
    shutil.copyfile(key, state / "bundle-signing.pub")  # the gateway checks signatures with it
    for path in [state, *state.rglob("*")]:
        os.chown(path, UID, UID)

    with contextlib.ExitStack() as stack:
        broker = Mosquitto(work / "broker")
        broker.start()
        stack.callback(broker.stop)
        watcher = AlertWatcher(broker.port)
        stack.callback(watcher.stop)
        return run_gateway(rootfs, config, broker.port, watcher, skus, work)


def run_gateway(
    rootfs: Path, config: dict, mqtt_port: int, watcher: AlertWatcher, skus: int, work: Path
) -> dict:
    """Start the image's entrypoint in the chroot and drive it through every step."""
    from tests.mosquitto import free_port

    api_port = free_port()
    env = image_env(
        config,
        {
            "SHELFCAST_STORE_ID": STORE,
            "SHELFCAST_MQTT_HOST": "127.0.0.1",
            "SHELFCAST_MQTT_PORT": str(mqtt_port),
            "SHELFCAST_API_PORT": str(api_port),
            "SHELFCAST_API_TOKEN": TOKEN,
            "SHELFCAST_MODEL_PUBLIC_KEY": "/var/lib/shelfcast/bundle-signing.pub",
        },
    )
    api = f"http://127.0.0.1:{api_port}"
    health_cmd = in_image(rootfs, config, env, list(config["Healthcheck"]["Test"][1:]))
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    log = open(work / "gateway.log", "w")  # noqa: SIM115 - closed in finally
    started = time.monotonic()
    proc = subprocess.Popen(in_image(rootfs, config, env, argv), stdout=log, stderr=log)
    figures: dict = {"command": " ".join(argv), "user": config.get("User")}
    try:
        healthy = wait_for(
            "image HEALTHCHECK",
            lambda: subprocess.run(health_cmd, capture_output=True).returncode == 0,
            90,
            proc,
        )
        figures["healthy_after_s"] = round(healthy - started, 3)
        checks = ready(api)["checks"]
        if not str(checks.get("bundle", "")).startswith("ok"):
            raise SmokeFailure(f"bundle not loaded: /ready says {checks}")
        figures["bundle"] = http("GET", f"{api}/v1/bundle")
        events = [event(1, "SMOKE-A", "receipt", 5), event(2, "SMOKE-A", "sale", 4)]
        events.append(event(3, "SMOKE-A", "sale", 1))
        result = http("POST", f"{api}/v1/events/batch", events)
        if result.get("accepted") != len(events):
            raise SmokeFailure(f"ingest: expected {len(events)} accepted, got {result}")
        alert_at = wait_for("first alert on MQTT", lambda: watcher.first_at, 30, proc)
        figures["cold_start_s"] = round(alert_at - started, 3)
        stock = http("GET", f"{api}/v1/stock/SMOKE-A")
        if stock.get("on_hand") != 0:
            raise SmokeFailure(f"ledger: expected on_hand 0 for SMOKE-A, got {stock}")
        wait_for(
            "stock-out alert", lambda: any("stockout" in a for a in watcher.alerts()), 10, proc
        )
        figures["alerts"] = [a.split(" ", 1)[0] for a in watcher.alerts()]
        figures["rss_mb_idle"] = round(rss_mb(proc.pid)[0], 1)
        if skus:
            figures["load_s"] = round(load_skus(api, skus), 2)
            figures["sku_count"] = skus
            time.sleep(1.0)  # let the worker finish deciding on the last batch
            now, peak = rss_mb(proc.pid)
            figures["rss_mb_skus"], figures["rss_mb_skus_peak"] = round(now, 1), round(peak, 1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        if code != 0:
            raise SmokeFailure(f"stop: SIGTERM gave exit code {code}, expected 0")
        figures["stopped_cleanly"] = True
        return figures
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def smoke(
    rootfs: Path, bundle: Path | None = None, skus: int = 0, public_key: Path | None = None
) -> dict:
    """Mount, run, unmount; returns ``{"passed": bool, ...figures or "error"}``."""
    if os.geteuid() != 0:
        raise SystemExit("smoke.py needs root (chroot and mounts)")
    with tempfile.TemporaryDirectory(prefix="shelfcast-smoke-") as tmp, mounted(rootfs):
        work = Path(tmp)
        try:
            return {"passed": True, **run_smoke(rootfs, bundle, skus, work, public_key)}
        except Exception as err:  # any failure is the smoke test failing: report, do not crash
            log = (
                (work / "gateway.log").read_text()[-3000:]
                if (work / "gateway.log").exists()
                else ""
            )
            return {"passed": False, "error": f"{type(err).__name__}: {err}", "gateway_log": log}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rootfs", type=Path, help="directory from docker/export_rootfs.sh")
    parser.add_argument("--bundle", type=Path, help="model bundle to install (default: tiny ONNX)")
    parser.add_argument(
        "--public-key",
        type=Path,
        help="public key that checks --bundle's signature (default: training's key)",
    )
    parser.add_argument("--skus", type=int, default=0, help="also load N SKUs and read the RSS")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    result = smoke(args.rootfs.resolve(), args.bundle, args.skus, args.public_key)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print("smoke test " + ("PASSED" if result["passed"] else "FAILED"), file=sys.stderr)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
