"""An embedded MQTT broker for the demo: Mosquitto when it is installed, else amqtt in-process.

Either way it listens on a free loopback port and is stopped with :meth:`EmbeddedBroker.stop`;
nothing outside the machine is needed.

>>> b = EmbeddedBroker(prefer="amqtt").start()   # doctest: +SKIP
>>> b.kind, b.port > 0                           # doctest: +SKIP
('amqtt', True)
>>> b.stop()                                     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from edge_runtime.transport.broker_config import local_conf
from shelfcast.local_server import free_port, stop_process, wait_listening


def mosquitto_path() -> str | None:
    """The ``mosquitto`` binary, also where Debian puts it off ``PATH`` (``/usr/sbin``)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


class EmbeddedBroker:
    """A local MQTT broker on a free port (``prefer``: ``"auto"``, ``"mosquitto"``, ``"amqtt"``)."""

    def __init__(self, prefer: str = "auto", work_dir: str | Path | None = None):
        self.prefer = prefer
        # A directory it made for itself is removed at ``stop``; one it was given stays.
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="shelfcast-broker-"))
        self.port = free_port()
        self.kind = ""
        self._proc: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        binary = mosquitto_path()
        if self.prefer == "mosquitto" and binary is None:
            raise FileNotFoundError("mosquitto not found (apt-get install mosquitto)")
        if binary and self.prefer in ("auto", "mosquitto"):
            self._start_mosquitto(binary, timeout)
        else:
            self._start_amqtt(timeout)
        return self

    def _start_mosquitto(self, binary: str, timeout: float) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        conf = self.work_dir / "mosquitto.conf"
        # The broker settings a store runs (edge_runtime/transport/mosquitto.conf), on loopback.
        conf.write_text(local_conf(self.port, self.work_dir, extra=["allow_anonymous true"]))
        self._proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self._proc, self.port, timeout, "mosquitto")
        self.kind = "mosquitto"

    def _start_amqtt(self, timeout: float) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("amqtt broker did not start")
        self.kind = "amqtt"

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None
        if self._loop is not None and self._broker is not None:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                if self._thread:
                    self._thread.join(10)
            self._loop = self._broker = None
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
