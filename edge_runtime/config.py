"""Gateway configuration: a TOML file, overridden by ``SHELFCAST_*`` environment variables.

Every key lives in a section; the environment variable for ``[mqtt] port`` is
``SHELFCAST_MQTT_PORT``, for ``[gateway] store_id`` it is ``SHELFCAST_GATEWAY_STORE_ID`` (or the
short ``SHELFCAST_STORE_ID``). Everything is checked at start and every problem is reported at
once, each saying what to fix.

>>> cfg = load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_MQTT_PORT": "1884"})
>>> cfg.gateway.store_id, cfg.mqtt.port, cfg.mqtt.topic_prefix
('S1', 1884, 'shelfcast')
>>> load_config(env={"SHELFCAST_STORE_ID": ""})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
edge_runtime.config.ConfigError: bad gateway configuration:
  - gateway.store_id: empty; set [gateway] store_id in the config file or SHELFCAST_STORE_ID
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edge_runtime.command_options import TCP_PORTS
from edge_runtime.plausibility import DEFAULT as BOUNDS
from edge_runtime.plausibility import Plausibility

ENV_PREFIX = "SHELFCAST_"
CONFIG_ENV = "SHELFCAST_CONFIG"
_SHORT_ENV = {
    "STORE_ID": ("gateway", "store_id"),
    "STATE_DIR": ("gateway", "state_dir"),
    "BUNDLE": ("model", "bundle"),
}
# A store id becomes an MQTT topic level and a file name: these characters only.
STORE_ID_CHARS = "A-Za-z0-9_.-"
_ID_RE = re.compile(rf"^[{STORE_ID_CHARS}]{{1,64}}$")


class ConfigError(ValueError):
    """Configuration that cannot work; the message lists every problem and how to fix it."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("bad gateway configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class GatewaySection:
    """``[gateway]``: which store, where state lives."""

    store_id: str = ""
    state_dir: str = "var/gateway"
    safety_buffer: int = 0


@dataclass(frozen=True)
class MqttSection:
    """``[mqtt]``: the broker and how to reach it."""

    enabled: bool = True
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    topic_prefix: str = "shelfcast"
    client_id: str | None = None  # default: shelfcast-gateway-{store_id}
    keepalive_s: int = 30
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_inflight: int = 200


@dataclass(frozen=True)
class PolicySection:
    """``[policy]``: the rule-based decision policy (see ``edge_runtime.decisions``)."""

    reorder_point: float = 2.0
    order_up_to: float = 12.0
    pack_size: int = 1
    lead_time_hours: float = 24.0


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the demand-model bundle and the forecast-driven decisions built on it.

    Without a bundle (none configured and none installed in ``{state_dir}/bundle``) the gateway
    decides with the ``[policy]`` rules. A configured bundle is verified at start (a tampered,
    unsigned or mismatched one stops the gateway with the reason) and installed as the current one.
    Bundles must be signed by the key whose public half is ``public_key``; with no key configured
    every bundle is refused unless ``allow_unsigned`` (development only) is set.
    """

    bundle: str | None = None  # path of a bundle directory; SHELFCAST_BUNDLE
    public_key: str | None = None  # PEM file of the trainer's Ed25519 public key
    allow_unsigned: bool = False  # development only: run bundles without a signature
    max_daily_units: float = 100_000.0  # demand outputs above this refuse a bundle
    lead_time_days: float = 2.0  # replenishment lead time: the stock-out horizon
    review_days: float = 1.0  # review period of the order-up-to policy
    service_z: float = 1.645  # safety-stock factor (95 % cycle service) without a buffer
    # Safety stock by marginal analysis (edge_runtime.service_level): each SKU holds the
    # single-day demand of its last year exceeded once every this many days; 0: z * sigma.
    buffer_every_days: float = 91.0
    stockout_threshold: float = 0.5  # publish a stock-out alert at this probability
    stockout_min_change: float = 0.1  # re-publish only when the probability moved this much
    stockout_hysteresis: float = 0.05  # re-arm once it fell this far below the threshold
    # Intraday warnings: an hour is complete (and predicted) once the newest event time seen
    # is this far past its end; later events still count, for the hours after them.
    intraday_lateness_s: float = 900.0
    # Horizons scored at each close: covers lead + review and the API's default 7-day horizon
    # (longer API horizons average these). The close costs about linearly in it.
    forecast_days: int = 7
    phantom_alpha: float = 0.001  # phantom alert when P(no sale for that long) is below this
    shrink_z: float = 3.0  # cycle-count shrink alert beyond this z-score of the SKU's history
    scoring_threads: int = 1  # ONNX Runtime intra-op threads (1 keeps ingest responsive)


@dataclass(frozen=True)
class UplinkSection:
    """``[uplink]``: how often aggregated deltas leave the store (default every 15 minutes)."""

    interval_s: float = 900.0


@dataclass(frozen=True)
class IngestSection:
    """``[ingest]``: the plausibility bounds every event must meet (``edge_runtime.plausibility``
    says why each exists); an event beyond one is dead-lettered with the bound it broke."""

    earliest_event_time: str = BOUNDS.earliest_event_time
    max_ahead_s: float = BOUNDS.max_ahead_s
    max_late_days: float = BOUNDS.max_late_days
    max_jump_days: float = BOUNDS.max_jump_days
    max_qty: int = BOUNDS.max_qty

    def bounds(self) -> Plausibility:
        return Plausibility(
            self.earliest_event_time,
            self.max_ahead_s,
            self.max_late_days,
            self.max_jump_days,
            self.max_qty,
        )


@dataclass(frozen=True)
class HubSection:
    """``[hub]``: the central hub's NATS JetStream (empty ``url``: no hub, MQTT only).

    ``url`` may list several servers, comma-separated, for a JetStream cluster.
    """

    url: str = ""
    heartbeat_s: float = 5.0


@dataclass(frozen=True)
class GatewayConfig:
    """The whole configuration; build it with :func:`load_config`.

    >>> GatewayConfig(gateway=GatewaySection(store_id="S9")).client_id
    'shelfcast-gateway-S9'
    """

    gateway: GatewaySection = field(default_factory=GatewaySection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    policy: PolicySection = field(default_factory=PolicySection)
    uplink: UplinkSection = field(default_factory=UplinkSection)
    model: ModelSection = field(default_factory=ModelSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    hub: HubSection = field(default_factory=HubSection)

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


_SECTIONS = {"gateway": GatewaySection, "mqtt": MqttSection, "policy": PolicySection}
_SECTIONS["uplink"] = UplinkSection
_SECTIONS["model"] = ModelSection
_SECTIONS["ingest"] = IngestSection
_SECTIONS["hub"] = HubSection


def _env_name(section: str, key: str) -> str:
    short = [k for k, v in _SHORT_ENV.items() if v == (section, key)]
    return ENV_PREFIX + (short[0] if short else f"{section}_{key}".upper())


def _where(section: str, key: str) -> str:
    return f"set [{section}] {key} in the config file or {_env_name(section, key)}"


def _coerce(value: Any, kind: str, name: str, problems: list[str], hint: str) -> Any:
    """Turn file/env values into the field's type, recording a problem instead of raising."""
    if value is None or (isinstance(value, str) and value == "" and "None" in kind):
        return None
    try:
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError
            return text in {"1", "true", "yes", "on"}
        if kind.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        problems.append(f"{name}: {value!r} is not a valid {kind.split(' ')[0]}; {hint}")
        return None


def _read_file(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.is_file():
        problems.append(f"config file {path} does not exist; pass an existing TOML file")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        problems.append(f"config file {path} is not valid TOML: {err}")
        return {}


def _merge(raw: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {}
    for section, table in raw.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            problems.append(f"unknown section [{section}]; known: {', '.join(_SECTIONS)}")
            continue
        known = {f.name for f in fields(_SECTIONS[section])}
        for key, value in table.items():
            if key not in known:
                problems.append(
                    f"[{section}] {key}: unknown key; known: {', '.join(sorted(known))}"
                )
            else:
                values.setdefault(section, {})[key] = value
    for section, cls in _SECTIONS.items():
        for f in fields(cls):
            name = _env_name(section, f.name)
            if name in env:
                values.setdefault(section, {})[f.name] = env[name]
    return values


def _build(values: dict[str, dict[str, Any]], problems: list[str]) -> GatewayConfig:
    parts = {}
    for section, cls in _SECTIONS.items():
        kwargs = {}
        for f in fields(cls):
            if f.name in values.get(section, {}):
                name = f"{section}.{f.name}"
                hint = _where(section, f.name)
                value = _coerce(values[section][f.name], str(f.type), name, problems, hint)
                if value is not None or "None" in str(f.type):
                    kwargs[f.name] = value
        parts[section] = cls(**kwargs)
    return GatewayConfig(**parts)


def store_id_problem(store_id: str) -> str | None:
    """Why ``store_id`` cannot name a store (None if it can): the one rule for the gateway's
    configuration and for tools that write events for it.

    >>> store_id_problem("S1") is None, store_id_problem("United Kingdom")
    (True, "'United Kingdom' must be 1-64 of A-Z a-z 0-9 _ . - (it becomes an MQTT topic level)")
    """
    if _ID_RE.match(store_id):
        return None
    return f"{store_id!r} must be 1-64 of A-Z a-z 0-9 _ . - (it becomes an MQTT topic level)"


def _check(cfg: GatewayConfig, problems: list[str]) -> None:
    g, m = cfg.gateway, cfg.mqtt
    if not g.store_id:
        problems.append(f"gateway.store_id: empty; {_where('gateway', 'store_id')}")
    elif problem := store_id_problem(g.store_id):
        problems.append(f"gateway.store_id: {problem}; {_where('gateway', 'store_id')}")
    if g.safety_buffer < 0:
        problems.append(f"gateway.safety_buffer: {g.safety_buffer} < 0; use 0 or more")
    if m.port not in TCP_PORTS:
        problems.append(
            f"mqtt.port: {m.port} is not a TCP port (1-65535); {_where('mqtt', 'port')}"
        )
    if not m.host:
        problems.append(f"mqtt.host: empty; {_where('mqtt', 'host')}")
    if not m.topic_prefix or any(c in m.topic_prefix for c in "#+") or m.topic_prefix.endswith("/"):
        problems.append(
            f"mqtt.topic_prefix: {m.topic_prefix!r} must be non-empty, without + # or a "
            f"trailing /; {_where('mqtt', 'topic_prefix')}"
        )
    if m.password and not m.username:
        problems.append(f"mqtt.password given without a username; {_where('mqtt', 'username')}")
    if m.keepalive_s < 5:
        problems.append(f"mqtt.keepalive_s: {m.keepalive_s} too small; use 5 or more")
    if not 0 < m.reconnect_min_s <= m.reconnect_max_s:
        problems.append("mqtt.reconnect_min_s/reconnect_max_s: need 0 < min <= max")
    if m.max_inflight < 1:
        problems.append(f"mqtt.max_inflight: {m.max_inflight}; use 1 or more")
    _check_tls(m, problems)
    p = cfg.policy
    if p.order_up_to < p.reorder_point:
        problems.append("policy.order_up_to must be >= policy.reorder_point")
    if p.pack_size < 1:
        problems.append(f"policy.pack_size: {p.pack_size}; use 1 or more")
    if cfg.uplink.interval_s <= 0:
        problems.append(f"uplink.interval_s: {cfg.uplink.interval_s}; use a positive number")
    _check_model(cfg.model, problems)
    _check_ingest(cfg.ingest, problems)


def _check_ingest(i: IngestSection, problems: list[str]) -> None:
    try:
        i.bounds()
    except ValueError:
        problems.append(
            f"ingest.earliest_event_time: {i.earliest_event_time!r} is not an ISO-8601 time with "
            f"a UTC offset (e.g. 2000-01-01T00:00:00+00:00); {_where('ingest', 'earliest_event_time')}"
        )
    for key in ("max_ahead_s", "max_late_days", "max_jump_days"):
        if not 0 < getattr(i, key) < 1e9:  # NaN and infinity fail too: the bounds are sums
            problems.append(f"ingest.{key}: {getattr(i, key)}; use a positive finite number")
    if i.max_qty < 1:
        problems.append(f"ingest.max_qty: {i.max_qty}; use 1 or more")


def _check_model(m: ModelSection, problems: list[str]) -> None:
    if m.bundle and not Path(m.bundle).is_dir():
        problems.append(
            f"model.bundle: {m.bundle} is not a directory; {_where('model', 'bundle')} "
            "to an unpacked bundle (or leave it unset to run on the [policy] rules)"
        )
    if m.public_key and not Path(m.public_key).is_file():
        problems.append(
            f"model.public_key: {m.public_key} does not exist or is not a file; "
            f"{_where('model', 'public_key')} to the trainer's public key (shelfcast keygen)"
        )
    elif m.bundle and not m.public_key and not m.allow_unsigned:
        problems.append(
            f"model.bundle is set but no public key checks its signature; "
            f"{_where('model', 'public_key')}, or set {_env_name('model', 'allow_unsigned')}=true "
            "for development"
        )
    if not m.max_daily_units > 0:
        problems.append(f"model.max_daily_units: {m.max_daily_units}; use a positive number")
    if m.lead_time_days <= 0 or m.review_days < 0:
        problems.append("model.lead_time_days must be > 0 and model.review_days >= 0")
    if not 0 < m.stockout_threshold <= 1:
        problems.append(f"model.stockout_threshold: {m.stockout_threshold}; use (0, 1]")
    if m.stockout_min_change <= 0 or m.stockout_hysteresis < 0:
        problems.append("model.stockout_min_change must be > 0, model.stockout_hysteresis >= 0")
    if not 1 <= m.forecast_days <= 28:
        problems.append(f"model.forecast_days: {m.forecast_days}; use 1..28 (the model's horizons)")
    elif m.forecast_days < m.lead_time_days + m.review_days:
        problems.append(
            f"model.forecast_days: {m.forecast_days} does not cover lead_time_days + review_days "
            f"({m.lead_time_days + m.review_days:g}); raise it"
        )
    if not 0 < m.phantom_alpha < 1:
        problems.append(f"model.phantom_alpha: {m.phantom_alpha}; use (0, 1)")
    if m.buffer_every_days != 0 and m.buffer_every_days <= 1:
        problems.append(
            f"model.buffer_every_days: {m.buffer_every_days}; use a number of days > 1 "
            "(or 0 for the z * sigma safety stock)"
        )
    if m.shrink_z <= 0 or m.scoring_threads < 1:
        problems.append("model.shrink_z must be > 0 and model.scoring_threads >= 1")


def _check_tls(m: MqttSection, problems: list[str]) -> None:
    wants_tls = m.tls or m.ca_file or m.cert_file
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(m, key)
        if path and not Path(path).is_file():
            problems.append(
                f"mqtt.{key}: {path} does not exist or is not a file; {_where('mqtt', key)}"
            )
    if m.cert_file and not m.key_file:
        problems.append(f"mqtt.cert_file given without mqtt.key_file; {_where('mqtt', 'key_file')}")
    if m.key_file and not m.cert_file:
        problems.append(
            f"mqtt.key_file given without mqtt.cert_file; {_where('mqtt', 'cert_file')}"
        )
    if wants_tls and m.port == 1883:
        problems.append("mqtt.port: 1883 is the plain-text port but TLS is on; use 8883 (or yours)")


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> GatewayConfig:
    """Read ``path`` (or ``$SHELFCAST_CONFIG``; none is fine), apply env, validate.

    ``overrides`` are ``section__key=value`` pairs applied last (the CLI uses them).
    Raises :class:`ConfigError` listing every problem.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    path = path or env.get(CONFIG_ENV)
    raw = _read_file(Path(path), problems) if path else {}
    values = _merge(raw, env, problems)
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if value is not None:
            values.setdefault(section, {})[name] = value
    cfg = _build(values, problems)
    _check(cfg, problems)  # a field that failed to parse keeps its default here
    if problems:
        raise ConfigError(problems)
    return cfg


def with_mqtt(cfg: GatewayConfig, **changes: Any) -> GatewayConfig:
    """A copy of ``cfg`` with some ``[mqtt]`` fields changed (tests and benchmarks)."""
    return replace(cfg, mqtt=replace(cfg.mqtt, **changes))
