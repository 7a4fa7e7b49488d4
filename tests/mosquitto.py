"""A real Mosquitto broker on a free port, for tests and benchmarks (no mocks of the broker).

>>> broker = Mosquitto(tmp_dir)            # doctest: +SKIP
>>> broker.start(); broker.port            # doctest: +SKIP
40123
>>> broker.stop()                          # doctest: +SKIP

With ``tls=True`` it makes a self-signed CA and a server certificate for ``localhost`` /
``127.0.0.1`` (and a client certificate, required when ``require_client_cert=True``) with the
``cryptography`` package, and listens with TLS only. The broker runs the shipped settings
(``edge_runtime/transport/mosquitto.conf``: persistence on, queue limits, inflight window), so a restart
keeps persistent sessions and their queued QoS 1 messages, as a store's broker would.

Fixtures: ``mosquitto`` (plain), ``mosquitto_tls`` (TLS, client certificate required).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_runtime.transport.broker_config import local_conf
from shelfcast.broker import mosquitto_path
from shelfcast.local_server import free_port as any_free_port
from shelfcast.local_server import stop_process, wait_listening

# The tests' name for the binary lookup the demo's broker uses (``/usr/sbin`` is often off PATH).
mosquitto_binary = mosquitto_path


_HANDED_OUT: set[int] = set()


def worker_share() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker, ``(0, 1)`` when the tests run in one process."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not name.startswith("gw") or count < 2:
        return 0, 1
    return int(name[2:]) % count, count


def free_port() -> int:
    """A free loopback port never handed out before in this process, nor by another worker.

    Why: Linux often hands the same port out again right after it is freed, and a gateway
    from an earlier test that is still reconnecting (same client id, same store) would then
    join the next test's broker, take over its session and ingest its events elsewhere. With
    the tests spread over pytest-xdist workers, each worker takes only the ports of its own
    share ((port // 2) % workers == its index; not the parity: the kernel may hand bind(0)
    only odd or only even ports), so no two workers ever hand out the same port.
    """
    index, count = worker_share()
    for _ in range(100 * count):
        port = any_free_port()
        if (port // 2) % count == index and port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(
        f"no fresh loopback port of worker {index}/{count} after {100 * count} tries"
    )


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the certificates a TLS broker and its clients use."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_args(self) -> list[str]:
        """mosquitto_pub / mosquitto_sub options for a client with the client certificate."""
        return ["--cafile", str(self.ca_file), "--cert", str(self.client_cert),
                "--key", str(self.client_key)]  # fmt: skip


def make_certificates(out_dir: Path) -> TlsFiles:
    """A self-signed CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("shelfcast test CA"))
        .issuer_name(name("shelfcast test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, server: bool) -> tuple[x509.Certificate, object]:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    files = TlsFiles(
        *(out_dir / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"))
    )
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for (cert, key), cert_path, key_path in (
        (leaf("localhost", True), files.server_cert, files.server_key),
        (leaf("shelfcast-gateway", False), files.client_cert, files.client_key),
    ):
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, key_path)
    return files


class Mosquitto:
    """One Mosquitto process with its own config, persistence and log under ``work_dir``.

    ``stop()`` then ``start()`` restarts it on the same port with its persisted sessions.
    """

    def __init__(
        self,
        work_dir: Path,
        port: int | None = None,
        tls: bool = False,
        require_client_cert: bool = False,
        persistence: bool = True,
        users: dict[str, str] | None = None,
        overrides: dict[str, str] | None = None,
        own_session: bool = False,
    ):
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto not found: install it (apt-get install mosquitto)")
        self.binary = binary
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls = make_certificates(self.work_dir / "tls") if tls else None
        self.require_client_cert = require_client_cert
        self.persistence = persistence
        self.users = users or {}
        self.overrides = overrides or {}  # shipped settings a test changes (e.g. a small queue)
        self.proc: subprocess.Popen | None = None
        self.own_session = own_session  # a session (the kernel's CPU share) of its own
        self.conf = self.work_dir / "mosquitto.conf"
        self.log = self.work_dir / "mosquitto.log"
        self._write_conf()

    def _write_conf(self) -> None:
        # The shipped broker settings (edge_runtime/transport/mosquitto.conf): tests run the product's
        # queue limits; saved every second so a restart in a test keeps what was queued.
        overrides = {"autosave_interval": "1"}
        if not self.persistence:
            overrides["persistence"] = "false"
        extra = [f"allow_anonymous {'false' if self.users else 'true'}"]
        if self.users:
            passwd = self.work_dir / "passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
            extra.append(f"password_file {passwd}")
        if self.tls:
            extra += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
        self.conf.write_text(
            local_conf(self.port, self.work_dir, overrides=overrides | self.overrides, extra=extra)
        )

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=self.own_session,
        )
        wait_listening(self.proc, self.port, timeout, "mosquitto", self._why)
        return self

    def _why(self) -> str:
        err = self.proc.stderr.read().decode() if self.proc and self.proc.poll() is not None else ""
        return f"{err} {self._log_tail()}".strip()

    def _log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), then wait."""
        stop_process(self.proc, timeout)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def mosquitto(tmp_path):
    """A plain Mosquitto on a free loopback port, stopped after the test."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (make test installs it)")
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_tls(tmp_path):
    """A TLS-only Mosquitto (self-signed CA, client certificate required)."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed (make test installs it)")
    broker = Mosquitto(tmp_path / "broker", tls=True, require_client_cert=True).start()
    yield broker
    broker.stop()


class Subscriber:
    """A consumer written as a replenishment system would: plain paho, QoS 1, persistent session.

    Collects ``(topic, payload, monotonic receive time)``; ``wait_for(n)`` blocks until ``n`` arrived.
    """

    def __init__(
        self,
        broker: Mosquitto,
        topics: list[str],
        client_id: str = "test-consumer",
        clean_session: bool = False,
        tls: TlsFiles | None = None,
    ):
        import paho.mqtt.client as mqtt

        self.received: list[tuple[str, bytes, float]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
        )
        self.client.reconnect_delay_set(0.2, 1)
        if tls is not None:
            self.client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.client_cert),
                keyfile=str(tls.client_key),
            )
        self.topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("subscriber did not connect and subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.received.append((msg.topic, msg.payload, time.monotonic()))
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes, float]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= n, timeout)
            return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait(cond, timeout: float = 10.0, step: float = 0.01) -> bool:
    """Poll ``cond`` every ``step`` seconds until it is true or ``timeout`` seconds pass (broker
    round trips; the benchmarks poll files less often)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False
