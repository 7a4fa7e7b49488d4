"""paho's client reading its socket in large chunks instead of a few bytes at a time.

paho reads every packet with at least three ``recv`` calls (the command byte, each byte of the
remaining length, then the body) and, with few of its own messages in flight, selects on the
socket again before each packet. Draining a backlog of single-event QoS 1 messages, and the
PUBACKs of the alerts sent meanwhile, that was a large share of its network thread's CPU. Here
one ``recv`` takes what the kernel holds (up to :data:`READ_CHUNK` bytes) and paho's reads are
served from it; :meth:`BufferedReadClient.loop_read` goes on while bytes wait in the buffer,
since ``select`` cannot see them. A new socket (a reconnect) starts with an empty buffer.

>>> import paho.mqtt.client as mqtt
>>> c = BufferedReadClient(mqtt.CallbackAPIVersion.VERSION2, client_id="doc")
>>> c.buffered
0
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

READ_CHUNK = 65536  # bytes asked of the kernel per recv: many small packets at once


class BufferedReadClient(mqtt.Client):
    """paho's ``Client`` with buffered socket reads (see the module docstring)."""

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

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTT_ERR_SUCCESS and self.buffered:
            rc = super().loop_read(max_packets)
        return rc
