"""paho's client without three per-packet costs that dominate draining a backlog.

- **Reads in large chunks.** paho reads every packet with at least three ``recv`` calls (the
  command byte, each byte of the remaining length, then the body) and, with few of its own
  messages in flight, selects on the socket again before each packet. Here one ``recv`` takes
  what the kernel holds (up to :data:`READ_CHUNK` bytes) and paho's reads are served from it;
  :meth:`LeanClient.loop_read` goes on while bytes wait in the buffer, since ``select`` cannot
  see them. A new socket (a reconnect) starts with an empty buffer.
- **PUBACKs without property objects.** For every PUBACK paho builds a ``ReasonCode`` and a
  ``Properties`` (whose constructor fills tables of every MQTT 5 property), even in MQTT
  3.1.1 where a PUBACK is a packet id and nothing else; each alert the gateway publishes gets
  one. Here an MQTT 3.1.1 PUBACK is read as its packet id and reported with one shared
  success code and empty properties (the gateway's callback reads only the id); anything else
  takes paho's own path.

- **Events without message objects.** For every PUBLISH paho builds an ``MQTTMessage`` (with
  a ``threading.Condition`` in its info object), matches the topic against per-topic
  callbacks and logs it. With :attr:`LeanClient.on_payload` set, a QoS 1 PUBLISH of MQTT
  3.1.1 under manual acknowledgement (every event a gateway consumes) is handed to it as
  ``(payload, topic, mid, qos)`` straight from the packet; everything else (QoS 0, MQTT 5,
  a malformed packet) goes through ``on_message`` as before. Per-topic callbacks
  (``message_callback_add``) are not consulted for those messages: the gateway has none.

- **PUBACKs of a commit in one write.** paho queues each PUBACK as a packet of its own, wakes
  its network thread through a socket pair for each and writes each with a ``send`` of its
  own: two system calls and some Python per event consumed. :meth:`LeanClient.ack_many`
  queues the PUBACKs of a whole commit as one run of bytes (the same 4-byte packets paho
  builds, back to back) with one wake-up.

- **Alerts of a commit in one write.** paho queues each PUBLISH as a packet of its own, with a
  wake-up of its network thread and a ``send`` each. :meth:`LeanClient.publish_many` keeps
  paho's record of every QoS 1 message (what its PUBACK and a reconnect's resend use) but
  queues their PUBLISH packets (the same bytes paho builds) as one run with one wake-up.

- **No Nagle delay.** paho leaves Nagle's algorithm on: a small packet written while the
  previous one is not yet acknowledged by the broker's TCP waits for that acknowledgement,
  which the broker's kernel may delay by up to 40 ms when it has nothing to send back (a
  commit's PUBACKs, then its alerts or uplink window a moment later). The TCP socket is
  opened with ``TCP_NODELAY``; the shipped broker settings do the same on the broker's side.

The first three override private methods of paho 2 (``_sock_recv``, ``loop_read``'s loop,
``_handle_pubackcomp`` and ``_handle_publish``), the last ``_create_socket_connection``;
``tests/test_mqtt.py`` and ``tests/test_mqtt_nodelay.py`` run them against a real broker.

>>> import paho.mqtt.client as mqtt
>>> c = LeanClient(mqtt.CallbackAPIVersion.VERSION2, client_id="doc")
>>> c.buffered
0
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

READ_CHUNK = 65536  # bytes asked of the kernel per recv: many small packets at once

# What paho reports for every MQTT 3.1.1 PUBACK: success, no properties (shared, never changed).
_PUBACK_OK = ReasonCode(PacketTypes.PUBACK)
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)
_PUBACK = struct.Struct("!BBH")  # command, remaining length 2, packet id: paho's PUBACK bytes


class LeanClient(mqtt.Client):
    """paho's ``Client`` with buffered reads, lean PUBACKs and, when :attr:`on_payload` is set,
    lean QoS 1 events (see the module docstring)."""

    # (payload, topic, mid, qos) of each QoS 1 PUBLISH; called on paho's network thread.
    on_payload: Callable[[bytes, str, int, int], None] | None = None
    _chunk: bytes = b""  # bytes read from ``_chunk_sock`` and not yet handed to paho
    _pos: int = 0  # how far paho has read ``_chunk``
    _chunk_sock: object = None

    @property
    def buffered(self) -> int:
        """Bytes read from the socket that paho has not consumed yet."""
        if self._chunk_sock is not self._sock:  # a reconnect: the old socket's bytes are void
            return 0
        return len(self._chunk) - self._pos

    def _sock_recv(self, bufsize: int) -> bytes:
        pos = self._pos
        if not self.buffered:
            data = super()._sock_recv(max(bufsize, READ_CHUNK))  # raises when nothing waits
            if len(data) <= bufsize:
                self._chunk, self._pos = b"", 0
                return data
            self._chunk, self._chunk_sock, pos = data, self._sock, 0
        end = pos + bufsize
        self._pos = min(end, len(self._chunk))
        return self._chunk[pos:end]

    def _create_socket_connection(self) -> socket.socket:
        sock = super()._create_socket_connection()
        if sock.family in (socket.AF_INET, socket.AF_INET6):  # not a proxy's wrapper
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTT_ERR_SUCCESS and self.buffered:
            rc = super().loop_read(max_packets)
        return rc

    def ack_many(self, mids: Sequence[int]) -> None:
        """Acknowledge QoS 1 messages ``mids`` (manual acknowledgement): their PUBACKs queued as
        one write, in order. Without manual acknowledgement paho acknowledges by itself."""
        if not self._manual_ack or not mids:
            return
        pack, puback = _PUBACK.pack, mqtt.PUBACK
        # The packet id 0 and QoS 0 of this run of packets: paho looks at them only for PUBLISH.
        self._packet_queue(puback, b"".join([pack(puback, 2, mid) for mid in mids]), 0, 0)

    def publish_many(self, messages: Sequence[tuple[str, bytes, bool]]) -> list[int]:
        """Publish ``(topic, payload, retain)`` messages at QoS 1, in order; returns the mids
        of those paho took (the first ones: it stops at one it refuses, its queue full). paho
        keeps each as its own ``publish`` would (a PUBACK completes it, a reconnect sends it
        again); their packets go out as one write. Not connected, MQTT 5 or with paho's own
        in-flight or queue limits set: paho's ``publish``, one by one."""
        mids: list[int] = []
        if (
            self._sock is None
            or self._protocol == mqtt.MQTTv5
            or self._max_inflight_messages
            or self._max_queued_messages
        ):
            for topic, payload, retain in messages:
                info = self.publish(topic, payload, qos=1, retain=retain)
                if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                    break
                mids.append(info.mid)
            return mids
        now, packets = mqtt.time_func(), []
        with self._out_message_mutex:
            for topic, payload, retain in messages:
                mid = self._mid_generate()
                if mid in self._out_messages:  # 65,535 in flight: paho refuses it too
                    break
                topic_bytes = topic.encode("utf-8")
                self._raise_for_invalid_topic(topic_bytes)
                message = mqtt.MQTTMessage(mid, topic_bytes)
                message.timestamp, message.payload, message.qos = now, payload, 1
                message.retain, message.dup, message.properties = retain, False, None
                message.state = mqtt.mqtt_ms_wait_for_puback
                self._out_messages[mid] = message
                self._inflight_messages += 1
                packets.append(_publish_packet(topic_bytes, payload, retain, mid))
                mids.append(mid)
            if packets:  # the packet id 0 of the run: paho reads it only for QoS 0 PUBLISH
                self._packet_queue(mqtt.PUBLISH, b"".join(packets), 0, 1)
        return mids

    def _handle_pubackcomp(self, cmd) -> mqtt.MQTTErrorCode:
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or self._protocol == mqtt.MQTTv5 or len(packet) != 2:
            return super()._handle_pubackcomp(cmd)  # properties to read, or a malformed packet
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            if mid in self._out_messages:  # else a duplicate: reported once already
                return self._do_on_publish(mid, _PUBACK_OK, _NO_PROPERTIES)
        return mqtt.MQTT_ERR_SUCCESS

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        handler = self.on_payload
        if (
            handler is None
            or (header & 0x06) != 0x02  # QoS 1 only
            or self._protocol == mqtt.MQTTv5
            or not self._manual_ack
        ):
            return super()._handle_publish()
        n = (packet[0] << 8) | packet[1] if len(packet) >= 2 else 0
        if n == 0 or len(packet) < n + 4:
            return super()._handle_publish()  # malformed: paho says how
        try:
            topic = packet[2 : 2 + n].decode("utf-8")
        except UnicodeDecodeError:
            return super()._handle_publish()
        mid = (packet[2 + n] << 8) | packet[3 + n]
        with self._in_callback_mutex:
            handler(bytes(packet[4 + n :]), topic, mid, 1)
        return mqtt.MQTT_ERR_SUCCESS


def _publish_packet(topic: bytes, payload: bytes, retain: bool, mid: int) -> bytes:
    """An MQTT 3.1.1 QoS 1 PUBLISH: paho's ``_send_publish`` bytes for the same message."""
    remaining = 2 + len(topic) + 2 + len(payload)
    if remaining > 268_435_455:
        raise ValueError("Packet too large")
    head = bytearray((mqtt.PUBLISH | 0x02 | int(bool(retain)),))
    while True:  # the remaining length, 7 bits a byte, least significant first
        byte, remaining = remaining % 128, remaining // 128
        head.append(byte | 0x80 if remaining else byte)
        if not remaining:
            break
    return b"".join((head, struct.pack("!H", len(topic)), topic, struct.pack("!H", mid), payload))
