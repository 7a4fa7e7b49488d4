"""Configuration of the HTTP API: where it listens, who may read, who may write, how large a
request may be.

Values come from arguments or the environment (``SHELFCAST_API_*``), validated at start so a
typo fails the launch instead of opening the API by accident.

>>> s = ApiSettings(token="s3cret-token", reads_open=False)
>>> s.writes_enabled, s.reads_open
(True, False)
>>> ApiSettings.from_env({"SHELFCAST_API_TOKEN": "t0ken-abc", "SHELFCAST_API_READS_OPEN": "no"}).reads_open
False
>>> ApiSettings.from_env({"SHELFCAST_API_PORT": "99999"})
Traceback (most recent call last):
...
ValueError: SHELFCAST_API_PORT='99999': expected a TCP port in 1..65535, got 99999
"""

from __future__ import annotations

import os
from argparse import ArgumentTypeError
from collections.abc import Mapping
from dataclasses import dataclass

from configuration.command_options import TCP_PORTS, port_number

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use one of {sorted(_TRUE | _FALSE)}")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return port_number(raw)
    except ArgumentTypeError as err:
        raise ValueError(f"{name}={raw!r}: {err}") from None


@dataclass(frozen=True)
class ApiSettings:
    """Address, access and limits of the API.

    ``host`` and ``port``: where it listens (the port in 1..65535, checked here rather than
    left to the socket layer, which would wrap 99999 around to 34463).
    ``token``: the bearer token writes (event ingest, bundle swap) require; with none configured,
    writes are refused (403) rather than open. ``reads_open``: whether reads need the token too.
    Event ingest takes at most ``edge_runtime.events.MAX_PAYLOAD_BYTES``, the limit MQTT ingest
    has too, so both transports judge a payload alike.

    >>> ApiSettings().writes_enabled
    False
    """

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    reads_open: bool = True
    max_bundle_bytes: int = 256 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024  # prediction batches and other small JSON bodies
    max_page: int = 1000
    max_batch_skus: int = 1000

    def __post_init__(self) -> None:
        if self.port not in TCP_PORTS:
            raise ValueError(f"the API port must be in 1..65535, got {self.port}")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("the API token must be at least 8 characters long")

    @property
    def writes_enabled(self) -> bool:
        return self.token is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> ApiSettings:
        """Settings from ``SHELFCAST_API_HOST``, ``SHELFCAST_API_PORT``,
        ``SHELFCAST_API_TOKEN``, ``SHELFCAST_API_READS_OPEN`` and the limits; ``overrides``
        that are not None (command-line options) win. A bad variable is a ``ValueError``
        naming it."""
        env = os.environ if env is None else env
        values = {
            "host": env.get("SHELFCAST_API_HOST") or "127.0.0.1",
            "port": _port(env, "SHELFCAST_API_PORT", 8080),
            "token": env.get("SHELFCAST_API_TOKEN") or None,
            "reads_open": _flag(env, "SHELFCAST_API_READS_OPEN", True),
            "max_bundle_bytes": _int(env, "SHELFCAST_API_MAX_BUNDLE_BYTES", 256 * 1024 * 1024),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
