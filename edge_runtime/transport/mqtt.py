"""The MQTT transport (paho-mqtt 2): events in, outbox rows out, gateway state with a last will.

- In: subscribes with QoS 1 to ``{prefix}/{store}/events/+`` in a persistent session
  (``clean_session=False``, fixed client id), so events published while the gateway restarts wait
  in the broker. Acknowledgement is manual: the gateway calls :meth:`MqttTransport.ack` only
  after the events are durable in the ledger, so a crash before that gets them redelivered.
- Out: :meth:`publish` hands outbox rows to paho with QoS 1 and remembers ``mid -> seq``;
  PUBACKs are collected by :meth:`take_acked` so the caller can mark the rows sent. paho
  re-sends its unacknowledged messages itself after a reconnect, so a row is handed over once
  per process lifetime; rows not yet handed over stay in the durable outbox.
- State: a retained ``online`` message on connect; the broker publishes the retained ``offline``
  last will if the gateway vanishes; a clean stop publishes ``offline`` itself.
- Reconnect: paho's loop with exponential backoff between ``reconnect_min_s`` and
  ``reconnect_max_s``. paho retries silently; here the first failed attempt is logged at once
  (a warning with ``host:port`` and the reason: refused, unresolvable host, TLS handshake
  against a plain listener, timeout), then attempts 2, 4, 8, ... and any change of reason, and
  :attr:`MqttTransport.problem` says why the broker is unreachable (readiness reports it).
- Degraded: :meth:`set_problems` turns the retained state into ``degraded`` with what is down
  (e.g. the ledger refusing writes while the disk is full), and back to ``online``.
- Upstream drops: the broker's ``$SYS/broker/publish/messages/dropped`` (messages it dropped
  because a session's queue was full) is watched; when it is non-zero or rises, a warning is
  logged, :attr:`MqttTransport.broker_dropped` holds it and the retained state says it. Events
  dropped by the broker never reach the gateway: this is the only way it can tell.

>>> from edge_runtime.config import load_config
>>> t = MqttTransport(load_config(env={"SHELFCAST_STORE_ID": "S1"}), on_payload=print)
>>> t.events_topic, t.connected
('shelfcast/S1/events/+', False)
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt

from edge_runtime.build_info import VERSION
from edge_runtime.config import GatewayConfig
from edge_runtime.messages import GatewayState
from edge_runtime.store.outbox import OutboxRow
from edge_runtime.transport.broker_config import DROPPED_TOPIC
from edge_runtime.transport.lean_client import LeanClient

log = logging.getLogger(__name__)

# on_payload(payload, source, mid, qos): called on paho's network thread; must not block.
PayloadHandler = Callable[[bytes, str, int, int], None]


class _ReportingClient(LeanClient):
    """paho's client, telling why a connection attempt failed (its loop swallows the error)."""

    on_connect_error: Callable[[OSError], None] | None = None

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as err:
            if self.on_connect_error is not None:
                self.on_connect_error(err)
            raise


def connect_failure(err: OSError, tls: bool) -> str:
    """Why a connection attempt failed, in words an operator can act on.

    >>> connect_failure(ConnectionRefusedError(111, "Connection refused"), tls=False)
    'connection refused (is the broker running, and on this port?)'
    """
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the host name ({err.strerror or err})"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the broker running, and on this port?)"
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out (host unreachable or a firewall drops the connection?)"
    if tls and isinstance(err, ssl.SSLError | ConnectionResetError | BrokenPipeError):
        return f"TLS handshake failed ({err.strerror or err}): is this port a TLS listener?"
    return str(err.strerror or err)


class MqttTransport:
    """One paho client for a gateway; thread-safe for one publishing thread plus paho's own."""

    def __init__(
        self,
        cfg: GatewayConfig,
        on_payload: PayloadHandler,
        model_version: str = "unknown",
        version: str = VERSION,
    ):
        self.cfg = cfg
        m = cfg.mqtt
        store = cfg.gateway.store_id
        self.events_topic = f"{m.topic_prefix}/{store}/events/+"
        self._on_payload = on_payload
        self._state_args = {"store_id": store, "model_version": model_version, "version": version}
        self._acked: deque[int] = deque()
        self._inflight: dict[int, int] = {}  # mid -> outbox seq; touched by the publishing thread
        self._connected = threading.Event()
        self._stopping = False
        self.connects = 0
        self.failed_attempts = 0  # connection attempts failed since the last success
        self._problem = f"connecting to broker {m.host}:{m.port}"
        self._problems: list[str] = []  # what the retained state says is down
        self.broker_dropped: int | None = None  # the broker's count, as last reported
        self.client = self._make_client(cfg)

    def _make_client(self, cfg: GatewayConfig) -> mqtt.Client:
        m = cfg.mqtt
        client = _ReportingClient(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        # The gateway hands paho at most ``window`` rows at a time (``publish``'s callers keep
        # to it), so paho's own in-flight limit is off: with one, every PUBACK rescans all the
        # messages paho holds for the next one to send, about a third of its thread's CPU.
        client.max_inflight_messages_set(0)
        client.reconnect_delay_set(m.reconnect_min_s, m.reconnect_max_s)
        if m.username:
            client.username_pw_set(m.username, m.password)
        if m.tls or m.ca_file or m.cert_file:
            client.tls_set(
                ca_certs=m.ca_file,
                certfile=m.cert_file,
                keyfile=m.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        offline = GatewayState(status="offline", **self._state_args)
        client.will_set(offline.topic(m.topic_prefix), offline.to_json(), qos=1, retain=True)
        client.on_connect_error = self._on_connect_error
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_payload = self._on_publish_payload
        client.on_publish = self._on_publish
        return client

    # -- paho callbacks (network thread) -------------------------------------------------
    def _on_connect_error(self, err: OSError) -> None:
        m = self.cfg.mqtt
        reason = connect_failure(err, tls=bool(m.tls or m.ca_file or m.cert_file))
        self.failed_attempts += 1
        n = self.failed_attempts
        changed = not self._problem.endswith(reason)
        self._problem = f"broker {m.host}:{m.port} unreachable: {reason}"
        if changed or n & (n - 1) == 0:  # at once, then attempts 2, 4, 8, ...
            log.warning(
                "%s (attempt %d); retrying with backoff up to %.0f s; messages wait in the outbox",
                self._problem, n, m.reconnect_max_s,
            )  # fmt: skip

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        m = self.cfg.mqtt
        if reason_code.is_failure:
            self._problem = f"broker {m.host}:{m.port} refused the connection: {reason_code}"
            log.error("%s", self._problem)
            return
        # One SUBSCRIBE, so its SUBACK says whether the events subscription is in place.
        client.subscribe([(self.events_topic, 1), (DROPPED_TOPIC, 0)])
        self._publish_state()
        self.connects += 1
        if self.failed_attempts:
            log.info("connected to %s:%s after %d failed attempt(s)", m.host, m.port,
                     self.failed_attempts)  # fmt: skip
        else:
            log.info("connected to %s:%s", m.host, m.port)
        self.failed_attempts = 0

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        # Ready only once the broker has the subscription: on a new session, events published
        # between CONNACK and SUBACK would otherwise never reach the gateway.
        if reason_codes[0].is_failure:
            self._problem = f"broker refused the events subscription: {reason_codes[0]}"
            log.error("%s", self._problem)
            return
        if len(reason_codes) > 1 and reason_codes[1].is_failure:
            log.warning("broker refused %s: messages it drops will go unnoticed", DROPPED_TOPIC)
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if self._stopping:  # our own clean disconnect: nothing to reconnect
            log.info("disconnected from broker (%s)", reason_code)
            return
        m = self.cfg.mqtt
        self._problem = f"disconnected from broker {m.host}:{m.port} ({reason_code})"
        log.warning("%s; reconnecting with backoff", self._problem)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self._on_publish_payload(msg.payload, msg.topic, msg.mid, msg.qos)

    def _on_publish_payload(self, payload: bytes, topic: str, mid: int, qos: int) -> None:
        """Every message the broker delivers (QoS 1 ones straight from the packet:
        ``edge_runtime.transport.lean_client``)."""
        if topic == DROPPED_TOPIC:
            self._on_dropped(payload)
            return
        self._on_payload(payload, topic.rsplit("/", 1)[-1], mid, qos)

    def _on_dropped(self, payload: bytes) -> None:
        try:
            dropped = int(payload)
        except ValueError:
            return
        before, self.broker_dropped = self.broker_dropped, dropped
        if dropped > (before or 0):
            log.warning(
                "the broker has dropped %d message(s) since it started (%+d): a session queue "
                "was full; events sent while the gateway was away may be lost (raise "
                "max_queued_messages / max_queued_bytes, see docs/operations.md)",
                dropped, dropped - (before or 0),
            )  # fmt: skip
        if dropped != before:
            self._state_args["broker_dropped"] = dropped
            self._publish_state()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acked.append(mid)  # deque.append is atomic; resolved on the publishing thread

    # -- API ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def problem(self) -> str | None:
        """Why the broker is not usable now (None while connected and subscribed)."""
        return None if self.connected else self._problem

    @property
    def window(self) -> int:
        """Rows that may be in flight at once (``[mqtt] max_inflight``): callers of
        :meth:`publish` keep ``inflight`` within it."""
        return self.cfg.mqtt.max_inflight

    @property
    def inflight(self) -> int:
        """Rows handed to paho and not yet acknowledged by the broker."""
        return len(self._inflight)

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        m = self.cfg.mqtt
        self._stopping = False
        self.client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, rows: Sequence[OutboxRow]) -> None:
        """Hand rows to paho (QoS 1) in order, as one write (``LeanClient.publish_many``);
        they count as in flight until their PUBACK."""
        mids = self.client.publish_many([(r.topic, r.payload, r.retain) for r in rows])
        self._inflight.update(zip(mids, (r.seq for r in rows), strict=False))
        if len(mids) < len(rows):
            raise RuntimeError("paho refused a message (queue full); outbox keeps it")

    def set_model_version(self, model_version: str) -> None:
        """A new bundle is in use: the retained state (and the last will, from the next connect
        on) name it, so consumers see the version without waiting for a reconnect."""
        self._state_args["model_version"] = model_version
        prefix = self.cfg.mqtt.topic_prefix
        offline = GatewayState(status="offline", **self._state_args)
        self.client.will_set(offline.topic(prefix), offline.to_json(), qos=1, retain=True)
        if self.connected:
            self._publish_state()

    def set_problems(self, problems: list[str]) -> None:
        """What is down (e.g. ``ledger: not writable ...``): the retained state becomes
        ``degraded`` with them, and ``online`` again once the list is empty."""
        if problems == self._problems:
            return
        self._problems = list(problems)
        if self.connected:
            self._publish_state()

    def _publish_state(self) -> None:
        status = "degraded" if self._problems else "online"
        state = GatewayState(status=status, problems=self._problems, **self._state_args)
        self.client.publish(state.topic(self.cfg.mqtt.topic_prefix), state.to_json(), 1,
                            retain=True)  # fmt: skip

    def take_acked(self) -> list[int]:
        """Outbox seqs whose PUBACK arrived since the last call."""
        seqs = []
        acked = self._acked
        inflight = self._inflight
        while acked:
            seq = inflight.pop(acked.popleft(), None)
            if seq is not None:  # the retained state message is not an outbox row
                seqs.append(seq)
        return seqs

    def ack(self, received: Sequence[tuple[int, int]]) -> None:
        """Acknowledge incoming messages ``(mid, qos)`` once what they carried is durable: the
        QoS 1 ones in one write (``LeanClient.ack_many``)."""
        self.client.ack_many([mid for mid, qos in received if qos == 1])
        for mid, qos in received:
            if qos > 1:
                self.client.ack(mid, qos)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline`` (retained), disconnect cleanly, stop the network thread."""
        self._stopping = True
        if self.connected:
            state = GatewayState(status="offline", **self._state_args)
            info = self.client.publish(
                state.topic(self.cfg.mqtt.topic_prefix), state.to_json(), 1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):  # broker gone: the will says it
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()
