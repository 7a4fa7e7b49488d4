"""Configuration of the HTTP API: where it listens, who may read, who may write, how large a
request may be. It is the ``[api]`` section of the ``shelfcast serve`` process's settings
(:class:`ServeSettings`: the gateway's sections plus this one, from the same TOML file and
``SHELFCAST_API_*`` variables), validated at start so a typo fails the launch instead of opening
the API by accident.

>>> s = ApiSettings(token="s3cret-token", reads_open=False)
>>> s.writes_enabled, s.reads_open
(True, False)
>>> ApiSettings.from_env({"SHELFCAST_API_TOKEN": "t0ken-abc", "SHELFCAST_API_READS_OPEN": "no"}).reads_open
False
>>> ApiSettings.from_env({"SHELFCAST_API_PORT": "99999"})
Traceback (most recent call last):
...
configuration.layered_settings.ConfigError: SHELFCAST_API_PORT='99999': api.port: expected a TCP port in 1..65535, got 99999; set [api] port in the config file or SHELFCAST_API_PORT
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator

from configuration.layered_settings import LayeredSettings, Section, load_settings
from configuration.value_rules import AtLeast1, Port
from edge_runtime.config import GatewayConfig, overrides_from_options


class ApiSettings(Section):
    """Address, access and limits of the API (``[api]``).

    ``host`` and ``port``: where it listens (the port in 1..65535, checked here rather than
    left to the socket layer, which would wrap 99999 around to 34463).
    ``token``: the bearer token writes (event ingest, bundle swap) require; with none configured,
    writes are refused (403) rather than open. ``reads_open``: whether reads need the token too.
    Event ingest takes at most ``edge_runtime.store.events.MAX_PAYLOAD_BYTES``, the limit MQTT ingest
    has too, so both transports judge a payload alike.

    >>> ApiSettings().writes_enabled
    False
    """

    host: str = "127.0.0.1"
    """Address the API listens on."""
    port: Port = 8080
    """Port the API listens on."""
    token: str | None = None
    """Bearer token writes require (reads too when reads_open is false); unset: writes refused. Prefer serve --token-file."""
    reads_open: bool = True
    """Reads need no token."""
    access_log: bool = True
    """One INFO line per request: client, method, path, status."""
    max_connections: AtLeast1 = 256
    """Concurrent connections before new ones get 503: a flood cannot exhaust memory."""
    max_bundle_bytes: AtLeast1 = 256 * 1024 * 1024
    """Largest bundle upload."""
    max_json_bytes: AtLeast1 = 1024 * 1024
    """Largest JSON body (prediction batches and other small requests)."""
    max_page: AtLeast1 = 1000
    """Most items in one page of a listing."""
    max_batch_skus: AtLeast1 = 1000
    """Most SKUs in one prediction batch."""

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 8:
            raise ValueError("the API token must be at least 8 characters long")
        return value

    @property
    def writes_enabled(self) -> bool:
        return self.token is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ApiSettings:
        """The ``[api]`` settings from ``$SHELFCAST_CONFIG`` and ``SHELFCAST_API_*``;
        ``overrides`` that are not None (command-line options) win. Raises ``ConfigError``
        naming the variable or key."""
        return load_settings(ApiOnlySettings, None, env, {"api": overrides}).api


class ServeSettings(GatewayConfig):
    """``shelfcast serve`` with the edge runtime: the gateway's settings and ``[api]``.

    >>> env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_API_PORT": "8081"}
    >>> s = load_settings(ServeSettings, env=env)
    >>> s.gateway.store_id, s.api.port  # the gateway's sections and the API's
    ('S1', 8081)
    """

    foreign_sections: ClassVar[frozenset[str]] = frozenset()

    api: ApiSettings = ApiSettings()


class ApiOnlySettings(LayeredSettings):
    """``shelfcast serve --attach``: the API over another process's gateway, which owns the
    gateway's sections; only ``[api]`` is read here.

    >>> env = {"SHELFCAST_API_PORT": "8081", "SHELFCAST_MQTT_PORT": "not-a-port"}
    >>> load_settings(ApiOnlySettings, env=env).api.port  # the gateway's: not checked here
    8081
    """

    foreign_sections: ClassVar[frozenset[str]] = frozenset(GatewayConfig.sections())
    foreign_variables: ClassVar[frozenset[str]] = frozenset(GatewayConfig.env_shortcuts)

    api: ApiSettings = Field(default_factory=ApiSettings)


def load_serve_settings(
    path: str | os.PathLike[str] | None,
    attach: bool,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> ServeSettings | ApiOnlySettings:
    """The serve process's settings: ``options`` are ``section__key`` command-line values
    (None: not given); attached, only ``[api]`` (the gateway's options are ignored)."""
    nested = overrides_from_options(options)
    if attach:
        return load_settings(ApiOnlySettings, path, env, {"api": nested.get("api", {})})
    return load_settings(ServeSettings, path, env, nested)
