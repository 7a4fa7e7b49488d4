"""What is down in a gateway, each with why: the readiness probe, the metrics and the retained
MQTT state message all say the same (``ledger``, ``mqtt``, ``bundle``).

>>> from edge_runtime.store.store_failure import StoreHealth
>>> down_parts(StoreHealth(), None, None, "installed bundle refused: digest")
{'bundle': 'installed bundle refused: digest'}
"""

from __future__ import annotations

from typing import Any

from edge_runtime.ingest.mqtt_intake import MqttIntake
from edge_runtime.store.stock import iso_utc


def down_parts(
    health: Any, intake: MqttIntake | None, transport: Any, bundle_problem: str | None
) -> dict[str, str]:
    """The required parts that are down: ``ledger`` (writes refused; ``health`` is the
    ledger's, ``intake`` holds what the store refused), ``mqtt`` (the broker unreachable, when
    there is a ``transport``) and ``bundle`` (an installed bundle refused)."""
    out = {}
    problem = health.problem or (intake.store_problem if intake is not None else None)
    if problem is not None:
        held = len(intake.held) if intake is not None else 0
        since = f" since {iso_utc(int(health.since * 1e6))}" if health.since else ""
        out["ledger"] = (
            f"not writable{since}: {problem}; intake paused ({held} MQTT "
            "payload(s) held, unacknowledged, retried with backoff)"
        )
    if transport is not None and not transport.connected:
        out["mqtt"] = transport.problem
    if bundle_problem is not None:
        out["bundle"] = bundle_problem
    return out


def state_problems(found: dict[str, str]) -> list[str]:
    """The problems the retained state message carries (the broker's own outage cannot be
    published through it)."""
    return sorted(f"{k}: {v}" for k, v in found.items() if k != "mqtt")
