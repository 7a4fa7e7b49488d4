"""``[hub]``, the one section two processes read: gateways find the hub's JetStream there and
report to it, and the hub process (``shelfcast hub``) takes its API and workers from it. One
model, so ``SHELFCAST_HUB_URL`` means the same servers to both.

>>> HubSection().url, HubSection().nats_servers
('', 'nats://127.0.0.1:4222')
"""

from __future__ import annotations

from typing import Literal

from configuration.layered_settings import Section
from configuration.value_rules import NonNegativeInt, Port, Positive

LOCAL_NATS = "nats://127.0.0.1:4222"


class HubSection(Section):
    """``[hub]``: the central hub's NATS JetStream (empty ``url``: a gateway runs without a hub,
    MQTT only), how often gateways report to it, and the hub process's API and workers.

    >>> HubSection(url="nats://hub-1:4222,nats://hub-2:4222").nats_servers
    'nats://hub-1:4222,nats://hub-2:4222'
    >>> HubSection(network="").network is None  # an empty value means unset
    True
    """

    url: str = ""
    """NATS JetStream server(s), comma-separated; empty: gateways run MQTT only and the hub
    process uses nats://127.0.0.1:4222."""
    heartbeat_s: Positive = 5.0
    """Gateways: seconds between health reports to the hub."""
    token: str | None = None
    """Hub process: bearer token of its API; without one the API serves no request."""
    api: bool = True
    """Hub process: serve the omnichannel API (false: workers only, to scale out)."""
    host: str = "127.0.0.1"
    """Hub process: address its API listens on."""
    port: Port = 8090
    """Hub process: port its API listens on."""
    workers: NonNegativeInt = 1
    """Hub process: JetStream consumers in this process (0: none)."""
    replicas: Literal[1, 3, 5] = 1
    """Hub process: JetStream replicas of the hub's streams and buckets."""
    reservation_timeout_s: Positive = 5.0
    """Hub process: how long a reservation waits for the store's decision before 504."""
    stale_after_s: Positive = 15.0
    """Hub process: a store silent this long is shown offline and never routed to."""
    network: str | None = None
    """Hub process: JSON map of the stores' and DCs' locations, which ``POST /v1/orders`` routes
    over (none: orders are refused with 503)."""

    @property
    def nats_servers(self) -> str:
        """The servers the hub process connects to."""
        return self.url or LOCAL_NATS
