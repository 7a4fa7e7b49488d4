"""Gateway configuration: a TOML file, overridden by ``SHELFCAST_*`` environment variables,
then by command-line options; one pydantic-settings model (``configuration.layered_settings``).

Every key lives in a section; the environment variable for ``[mqtt] port`` is
``SHELFCAST_MQTT_PORT``, for ``[gateway] store_id`` it is ``SHELFCAST_GATEWAY_STORE_ID`` (or the
short ``SHELFCAST_STORE_ID``). Everything is checked at start and every problem is reported at
once, one line each, saying where the value came from and what to fix; an unknown key or a
misspelled variable names the nearest valid one. ``docs/configuration.md`` lists every key.

>>> cfg = load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_MQTT_PORT": "1884"})
>>> cfg.gateway.store_id, cfg.mqtt.port, cfg.mqtt.topic_prefix
('S1', 1884, 'shelfcast')
>>> load_config(env={"SHELFCAST_STORE_ID": ""})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
configuration.layered_settings.ConfigError: gateway.store_id: empty; set [gateway] store_id ...
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from configuration.hub_section import HubSection
from configuration.layered_settings import ConfigError, LayeredSettings, Section, load_settings
from configuration.value_rules import (
    AtLeast1,
    ExistingFile,
    NonNegative,
    NonNegativeInt,
    OpenProbability,
    Port,
    Positive,
    PositiveFinite,
    Probability,
    existing_dir,
)
from edge_runtime.store.plausibility import DEFAULT as BOUNDS
from edge_runtime.store.plausibility import Plausibility

__all__ = ["ConfigError", "GatewayConfig", "load_config", "store_id_problem", "with_mqtt"]

# A store id becomes an MQTT topic level and a file name: these characters only.
STORE_ID_CHARS = "A-Za-z0-9_.-"
_ID_RE = re.compile(rf"^[{STORE_ID_CHARS}]{{1,64}}$")


def _problems(found: list[str]) -> None:
    """Raise the section-wide problems found, one line each."""
    if found:
        raise ValueError("\n".join(found))


class GatewaySection(Section):
    """``[gateway]``: which store, where state lives.

    >>> load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_GATEWAY_SAFETY_BUFFER": "2"}
    ...             ).gateway
    GatewaySection(store_id='S1', state_dir='var/gateway', safety_buffer=2)
    """

    store_id: str = Field("", validate_default=True)
    """Which store this gateway is: an MQTT topic level and a file name. Required."""
    state_dir: str = "var/gateway"
    """Directory of the ledger, outbox and installed bundle."""
    safety_buffer: NonNegativeInt = 0
    """Units held back from available-to-promise (on hand - reserved - buffer)."""

    @field_validator("store_id")
    @classmethod
    def _store_id(cls, value: str) -> str:
        if not value:
            raise ValueError("empty")
        if problem := store_id_problem(value):
            raise ValueError(problem)
        return value


class MqttSection(Section):
    """``[mqtt]``: the broker and how to reach it."""

    enabled: bool = True
    """Connect to the broker; false runs the gateway without MQTT (API or tests only)."""
    host: str = "localhost"
    """Broker host name or address."""
    port: Port = 1883
    """Broker port (8883 is usual with TLS)."""
    username: str | None = None
    """Broker user name."""
    password: str | None = None
    """Broker password (needs a username)."""
    topic_prefix: str = "shelfcast"
    """First topic level of every topic: {prefix}/{store}/..."""
    client_id: str | None = None
    """MQTT client id; unset: shelfcast-gateway-{store_id}."""
    keepalive_s: int = Field(30, ge=5)
    """Seconds between MQTT keep-alive pings (5 or more)."""
    tls: bool = False
    """Connect with TLS (also on when ca_file or cert_file is set)."""
    ca_file: ExistingFile = None
    """PEM file of the CA that signed the broker's certificate."""
    cert_file: ExistingFile = None
    """Client certificate (PEM) for mutual TLS; needs key_file."""
    key_file: ExistingFile = None
    """Client certificate's private key (PEM); needs cert_file."""
    reconnect_min_s: Positive = 0.5
    """First wait before reconnecting to the broker; doubles up to the maximum."""
    reconnect_max_s: Positive = 30.0
    """Longest wait between reconnection attempts."""
    max_inflight: AtLeast1 = 200
    """QoS 1 messages awaiting the broker's acknowledgement at once."""

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value:
            raise ValueError("empty")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "#+") or value.endswith("/"):
            raise ValueError(f"{value!r} must be non-empty, without + # or a trailing /")
        return value

    @model_validator(mode="after")
    def _together(self) -> MqttSection:
        found = []
        if self.password and not self.username:
            found.append("mqtt.password given without a username; set [mqtt] username")
        if self.reconnect_min_s > self.reconnect_max_s:
            found.append("mqtt.reconnect_min_s/reconnect_max_s: need min <= max")
        if self.cert_file and not self.key_file:
            found.append("mqtt.cert_file given without mqtt.key_file; set [mqtt] key_file")
        if self.key_file and not self.cert_file:
            found.append("mqtt.key_file given without mqtt.cert_file; set [mqtt] cert_file")
        if (self.tls or self.ca_file or self.cert_file) and self.port == 1883:
            found.append(
                "mqtt.port: 1883 is the plain-text port but TLS is on; use 8883 (or yours)"
            )
        _problems(found)
        return self


class PolicySection(Section):
    """``[policy]``: the rule-based decision policy (see ``edge_runtime.decide.decisions``).

    >>> load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_POLICY_ORDER_UP_TO": "1"})
    Traceback (most recent call last):
    configuration.layered_settings.ConfigError: ...order_up_to must be >= policy.reorder_point
    """

    reorder_point: NonNegative = 2.0
    """Rule policy: order when available stock falls to this many units."""
    order_up_to: NonNegative = 12.0
    """Rule policy: order up to this many units (>= reorder_point)."""
    pack_size: AtLeast1 = 1
    """Orders are whole packs of this many units."""
    lead_time_hours: NonNegative = 24.0
    """Rule policy: hours until an order arrives."""

    @model_validator(mode="after")
    def _order_up_to(self) -> PolicySection:
        if self.order_up_to < self.reorder_point:
            raise ValueError("policy.order_up_to must be >= policy.reorder_point")
        return self


_BUNDLE_DIR = existing_dir(
    "{value} is not a directory; point [model] bundle or SHELFCAST_BUNDLE to an unpacked "
    "bundle (or leave it unset to run on the [policy] rules)"
)


class ModelSection(Section):
    """``[model]``: the demand-model bundle and the forecast-driven decisions built on it.

    Without a bundle (none configured and none installed in ``{state_dir}/bundle``) the gateway
    decides with the ``[policy]`` rules. A configured bundle is verified at start (a tampered,
    unsigned or mismatched one stops the gateway with the reason) and installed as the current one.
    Bundles must be signed by the key whose public half is ``public_key``; with no key configured
    every bundle is refused unless ``allow_unsigned`` (development only) is set.

    >>> load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_MODEL_LEAD_TIME_DAYS": "9"})
    Traceback (most recent call last):
    configuration.layered_settings.ConfigError: model.forecast_days: 7 does not cover...
    """

    bundle: _BUNDLE_DIR = None
    """Model bundle directory installed at start; unset: the installed one, else the rules."""
    public_key: ExistingFile = None
    """PEM file of the trainer's Ed25519 public key; bundles must be signed by its pair."""
    allow_unsigned: bool = False
    """Development only: accept bundles without a signature."""
    max_daily_units: Positive = 100_000.0
    """A bundle whose demand outputs exceed this is refused."""
    lead_time_days: Positive = 2.0
    """Replenishment lead time in days: the stock-out horizon."""
    review_days: NonNegative = 1.0
    """Review period of the order-up-to policy, in days."""
    service_z: float = 1.645
    """Safety-stock factor (1.645: 95 % cycle service) when buffer_every_days is 0."""
    # Safety stock by marginal analysis (edge_runtime.decide.service_level): each SKU holds the
    # single-day demand of its last year exceeded once every this many days; 0: z * sigma.
    buffer_every_days: NonNegative = 91.0
    """Safety stock covers the single-day demand exceeded once in this many days; 0: z * sigma."""
    stockout_threshold: Probability = 0.5
    """Publish a stock-out alert at this probability."""
    stockout_min_change: Positive = 0.1
    """Re-publish only when the probability moved this much."""
    stockout_hysteresis: NonNegative = 0.05
    """Re-arm once the probability fell this far below the threshold."""
    intraday_lateness_s: PositiveFinite = 900.0
    """Intraday warnings: an hour is complete (and predicted) once the newest event time seen
    is this many seconds past its end; later events still count, for the hours after them."""
    # Horizons scored at each close: covers lead + review and the API's default 7-day horizon
    # (longer API horizons average these). The close costs about linearly in it.
    forecast_days: int = Field(7, ge=1, le=28)
    """Horizons scored at each day close (1..28); must cover lead_time_days + review_days."""
    phantom_alpha: OpenProbability = 0.001
    """Phantom-stock alert when P(no sale for that long) falls below this."""
    shrink_z: Positive = 3.0
    """Cycle-count shrink alert beyond this z-score of the SKU's history."""
    scoring_threads: AtLeast1 = 1
    """ONNX Runtime intra-op threads (1 keeps ingest responsive)."""

    @field_validator("buffer_every_days")
    @classmethod
    def _buffer_days(cls, value: float) -> float:
        if value != 0 and value <= 1:
            raise ValueError(f"{value}; use a number of days > 1 (or 0 for the z * sigma stock)")
        return value

    @model_validator(mode="after")
    def _together(self) -> ModelSection:
        found = []
        if self.bundle and not self.public_key and not self.allow_unsigned:
            found.append(
                "model.bundle is set but no public key checks its signature; set [model] "
                "public_key or SHELFCAST_MODEL_PUBLIC_KEY to the trainer's public key (shelfcast "
                "keygen), or SHELFCAST_MODEL_ALLOW_UNSIGNED=true for development"
            )
        if self.forecast_days < self.lead_time_days + self.review_days:
            found.append(
                f"model.forecast_days: {self.forecast_days} does not cover lead_time_days + "
                f"review_days ({self.lead_time_days + self.review_days:g}); raise it"
            )
        _problems(found)
        return self


class UplinkSection(Section):
    """``[uplink]``: how often aggregated deltas leave the store (default every 15 minutes).

    >>> load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_UPLINK_INTERVAL_S": "60"}).uplink
    UplinkSection(interval_s=60.0)
    """

    interval_s: Positive = 900.0
    """Seconds between uplinks of aggregated stock deltas (at least this long after the last
    one; a change after a quiet spell goes at once, with its own commit; changes left waiting
    when the interval ends go with the next event's commit, or half an interval, at most 50 ms,
    later in a commit of their own)."""


class IngestSection(Section):
    """``[ingest]``: the plausibility bounds every event must meet (``edge_runtime.store.plausibility``
    says why each exists); an event beyond one is dead-lettered with the bound it broke.

    >>> IngestSection(max_qty=50).bounds().qty_problem(80)
    '|qty| 80 is beyond the plausible 50 units of one event ([ingest] max_qty)'
    """

    earliest_event_time: str = BOUNDS.earliest_event_time
    """Events before this time (ISO-8601 with offset) are dead-lettered."""
    max_ahead_s: PositiveFinite = BOUNDS.max_ahead_s
    """Events more than this many seconds ahead of the wall clock are dead-lettered."""
    max_late_days: PositiveFinite = BOUNDS.max_late_days
    """Events more than this many days behind the ledger clock are dead-lettered."""
    max_jump_days: PositiveFinite = BOUNDS.max_jump_days
    """Events more than this many days ahead of the ledger clock are dead-lettered."""
    max_qty: AtLeast1 = BOUNDS.max_qty
    """Largest |qty| of one stock-changing event."""
    commit_wait_s: NonNegative = 0.0
    """Seconds MQTT events found waiting may wait for more to share their commit (never past
    the uplink window's due time): fewer commits and fsyncs per event, at the price of up to
    this much in their acknowledgement and alerts. 0: each group commits at once. For short
    uplink windows (a hub's online view), the window's interval."""

    @field_validator("earliest_event_time")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        try:
            Plausibility(earliest_event_time=value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO-8601 time with a UTC offset "
                "(e.g. 2000-01-01T00:00:00+00:00)"
            ) from None
        return value

    def bounds(self) -> Plausibility:
        return Plausibility(
            self.earliest_event_time,
            self.max_ahead_s,
            self.max_late_days,
            self.max_jump_days,
            self.max_qty,
        )


class RetentionSection(Section):
    """``[retention]``: how much history the state directory keeps, so its disk use stays
    bounded (``edge_runtime.store.retention``; docs/operations.md states the bounds).

    >>> load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_RETENTION_EVENT_LOG_DAYS": "30"})
    Traceback (most recent call last):
    configuration.layered_settings.ConfigError: retention.event_log_days: 30 is below...
    """

    enabled: bool = True
    """Prune and archive at all (false: everything is kept for ever)."""
    every_s: PositiveFinite = 3600.0
    """Seconds between retention runs of the gateway's worker."""
    outbox_days: PositiveFinite = 7.0
    """Delivered outbox messages older than this (wall clock) are deleted ..."""
    outbox_rows: NonNegativeInt = 200_000
    """... and all but this many newest delivered ones."""
    dead_letter_days: PositiveFinite = 30.0
    """Dead letters older than this are deleted ..."""
    dead_letter_rows: NonNegativeInt = 100_000
    """... and all but this many newest ones."""
    event_log_days: PositiveFinite = 120.0
    """Events further behind the ledger clock than this leave SQLite for compressed daily files
    in ``{state_dir}/archive`` (at least ``[ingest] max_late_days``: a late event re-folds)."""
    archive_days: PositiveFinite = 730.0
    """Archive files further behind the ledger clock than this are deleted."""


class GatewayConfig(LayeredSettings):
    """The gateway process's settings; build them with :func:`load_config`.

    >>> GatewayConfig(gateway=GatewaySection(store_id="S9")).client_id
    'shelfcast-gateway-S9'
    """

    env_shortcuts: ClassVar[dict[str, tuple[str, str]]] = {
        "SHELFCAST_STORE_ID": ("gateway", "store_id"),
        "SHELFCAST_STATE_DIR": ("gateway", "state_dir"),
        "SHELFCAST_BUNDLE": ("model", "bundle"),
    }
    # `shelfcast serve` reads the same file with an [api] section (api.settings).
    foreign_sections: ClassVar[frozenset[str]] = frozenset({"api"})

    gateway: GatewaySection = Field(default_factory=GatewaySection.model_construct)
    mqtt: MqttSection = MqttSection()
    policy: PolicySection = PolicySection()
    uplink: UplinkSection = UplinkSection()
    model: ModelSection = ModelSection()
    ingest: IngestSection = IngestSection()
    hub: HubSection = HubSection()
    retention: RetentionSection = RetentionSection()

    @model_validator(mode="after")
    def _retention_keeps_late_events(self) -> GatewayConfig:
        r, late = self.retention, self.ingest.max_late_days
        if r.event_log_days < late:
            raise ValueError(
                f"retention.event_log_days: {r.event_log_days:g} is below ingest.max_late_days "
                f"({late:g}): a late event must find its day in the log; raise it"
            )
        if r.archive_days < r.event_log_days:
            raise ValueError(
                f"retention.archive_days: {r.archive_days:g} is below retention.event_log_days "
                f"({r.event_log_days:g}); raise it"
            )
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"shelfcast-gateway-{self.gateway.store_id}"

    @property
    def ledger_path(self) -> Path:
        return Path(self.gateway.state_dir) / "ledger.sqlite"

    @property
    def bundle_dir(self) -> Path:
        """Where the current bundle is installed (start-up and every swap put it here)."""
        return Path(self.gateway.state_dir) / "bundle"


def store_id_problem(store_id: str) -> str | None:
    """Why ``store_id`` cannot name a store (None if it can): the one rule for the gateway's
    configuration and for tools that write events for it.

    >>> store_id_problem("S1") is None, store_id_problem("United Kingdom")
    (True, "'United Kingdom' must be 1-64 of A-Z a-z 0-9 _ . - (it becomes an MQTT topic level)")
    """
    if _ID_RE.match(store_id):
        return None
    return f"{store_id!r} must be 1-64 of A-Z a-z 0-9 _ . - (it becomes an MQTT topic level)"


def overrides_from_options(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"mqtt__port": 1884}`` (command-line options) -> ``{"mqtt": {"port": 1884}}``."""
    nested: dict[str, dict[str, Any]] = {}
    for name, value in options.items():
        section, _, key = name.partition("__")
        nested.setdefault(section, {})[key] = value
    return nested


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> GatewayConfig:
    """Read ``path`` (or ``$SHELFCAST_CONFIG``; none is fine), apply env, validate.

    ``overrides`` are ``section__key=value`` pairs applied last (the CLI uses them; None: not
    given). Raises :class:`ConfigError` listing every problem.
    """
    return load_settings(GatewayConfig, path, env, overrides_from_options(overrides))


def with_mqtt(cfg: GatewayConfig, **changes: Any) -> GatewayConfig:
    """A copy of ``cfg`` with some ``[mqtt]`` fields changed (tests and benchmarks)."""
    return with_section(cfg, "mqtt", **changes)


def with_section(cfg: GatewayConfig, section: str, **changes: Any) -> GatewayConfig:
    """A copy of ``cfg`` with some fields of one section changed (tests and benchmarks)."""
    part = getattr(cfg, section).model_copy(update=changes)
    return cfg.model_copy(update={section: part})
