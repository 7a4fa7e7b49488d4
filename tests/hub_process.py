"""``shelfcast hub`` as a real process, for tests and benchmarks: start, wait until it serves,
read its API, kill it (-9 when a test wants a crash).

>>> hub = HubProcess(nats_url, api=True).start()           # doctest: +SKIP
>>> hub.get("/v1/availability/A")["total_atp"]             # doctest: +SKIP
>>> hub.kill()                                             # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from shelfcast.local_server import wait_serving
from tests.mosquitto import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hub-test-token"


class HubProcess:
    """One hub process: ``workers`` workers, and the API on a free port when ``api``."""

    def __init__(
        self,
        nats_url: str,
        api: bool = True,
        workers: int = 1,
        log: Path | None = None,
        replicas: int = 1,
        network: Path | None = None,
        reservation_timeout: float | None = None,
        cpu: int | None = None,
        launcher: Path | None = None,
        own_session: bool = False,
    ):
        self.nats_url = nats_url
        self.api = api
        self.workers = workers
        self.port = free_port()
        self.replicas = replicas
        self.cpu = cpu  # pinned to this CPU (taskset) when set
        self.launcher = launcher  # a script run instead of ``-m shelfcast.cli`` (same arguments)
        self.own_session = own_session  # a session (the kernel's CPU share) of its own
        self.log = log
        self.network = network
        self.reservation_timeout = reservation_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> HubProcess:
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        entry = [str(self.launcher)] if self.launcher else ["-m", "shelfcast.cli"]
        cmd = [
            *pin,
            sys.executable,
            *entry,
            "hub",
            "--nats",
            self.nats_url,
            "--workers",
            str(self.workers),
            "--port",
            str(self.port),
            "--replicas",
            str(self.replicas),
            "--api" if self.api else "--no-api",
        ]
        if self.network is not None:
            cmd += ["--network", str(self.network)]
        if self.reservation_timeout is not None:
            cmd += ["--reservation-timeout", str(self.reservation_timeout)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SHELFCAST_HUB_TOKEN": TOKEN}
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=self.own_session,
        )
        if self.api:
            self._wait_serving(timeout)
        return self

    def _wait_serving(self, timeout: float) -> None:
        wait_serving(self.proc, self.url + "/v1/health", timeout, "shelfcast hub")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def get(self, path: str) -> dict:
        r = httpx.get(self.url + path, headers=self.headers(), timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers(), timeout=30)

    def kill(self) -> None:
        """kill -9: no drain, no acks for what it held."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def owned_partitions(log: Path) -> list[int]:
    """The partitions a worker process last said it owns (its log's last such line; none
    before it has said any)."""
    said = [x for x in log.read_text().splitlines() if " owns partitions " in x]
    return json.loads(said[-1].split(" owns partitions ", 1)[1]) if said else []
