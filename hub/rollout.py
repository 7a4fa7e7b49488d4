"""A model rollout's state machine: a bundle goes to the canary stores, they are watched, then it
goes to every store, or the canaries go back to the bundle they had.

``canary`` (install sent to the canaries; each reports ``installed`` or ``refused``) ->
``observing`` (every canary installed; their reports are checked against the ``Thresholds``
until ``observe_s`` after the last install) -> ``promoting`` (install sent to every other store
the fleet knows, or, for a bundle that names the stores it serves, to every other one of those
the fleet knows) -> ``promoted``; or, as soon as a canary refuses the bundle, does not answer
within ``install_timeout_s``, or crosses a threshold: ``rolling_back`` (rollback sent to the
canaries that installed it) -> ``rolled_back``. The machine only decides: it returns the
commands to send (``Command``); hub/rollout_desk.py sends them and feeds it the reports.

>>> r = Rollout("r1", "v2", ["S1"], Thresholds(observe_s=10))
>>> r.start(0.0)
[Command(store='S1', action='install')]
>>> r.report("S1", {"rollout_id": "r1", "action": "install", "state": "installed",
...                 "events": 100, "errors": 9, "error_rate": 0.09}, 1.0)
[Command(store='S1', action='rollback')]
>>> r.phase, r.reason
('rolling_back', 'canary S1: error rate 0.090 above 0.020 over 100 events')
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import BaseModel, Field


class Thresholds(BaseModel):
    """When a rollout halts, stated per rollout (these are the defaults).

    >>> from pydantic import ValidationError
    >>> Thresholds().max_error_rate, Thresholds(min_events=50).min_events
    (0.02, 50)
    >>> try:
    ...     Thresholds(max_error_rate=2.0)
    ... except ValidationError as err:
    ...     print(err.errors()[0]["loc"], err.errors()[0]["type"])
    ('max_error_rate',) less_than_equal
    """

    max_error_rate: float = Field(
        0.02, ge=0, le=1, description="errors (refused events + scoring failures) per event"
    )
    max_forecast_error: float = Field(
        0.6, ge=0, description="day-ahead |forecast - actual| / actual over the days closed"
    )
    min_events: int = Field(
        20, ge=0, description="events a canary must have taken before its error rate counts"
    )
    observe_s: float = Field(
        3 * 86400.0, ge=0, description="watch the canaries this long after their last install"
    )
    install_timeout_s: float = Field(
        600.0, gt=0, description="a canary silent this long after the command halts the rollout"
    )


def check_canaries(canaries: list[str], serves: list[str] | None) -> None:
    """``ValueError`` naming the canaries a bundle that serves only ``serves`` is not for.

    >>> check_canaries(["S1"], ["S1", "S2"]); check_canaries(["S9"], None)
    >>> check_canaries(["S1", "S9"], ["S1", "S2"])
    Traceback (most recent call last):
    ...
    ValueError: canaries S9 are not among the stores the bundle serves (its metadata.json names S1, S2)
    """
    if serves is None:
        return
    foreign = sorted(set(canaries) - set(serves))
    if foreign:
        raise ValueError(
            f"canaries {', '.join(foreign)} are not among the stores the bundle serves "
            f"(its metadata.json names {', '.join(sorted(serves))})"
        )


class Command(NamedTuple):
    """What the hub tells one store: install the rollout's bundle, or roll back.

    >>> Rollout("r1", "v2", ["S1", "S2"], Thresholds()).start(0.0)
    [Command(store='S1', action='install'), Command(store='S2', action='install')]
    """

    store: str
    action: str  # install | rollback


ACTIVE = ("canary", "observing", "promoting", "rolling_back")
DECIDING = ("canary", "observing", "rolling_back")
"""A rollout in these phases holds the next one back; once promoting, its commands wait in the
stream for the stores that are offline (each installs when it comes back) and the next may go."""


@dataclass
class Rollout:
    """One rollout of bundle ``version`` (see the module docstring).

    >>> r = Rollout("r1", "v2", ["S1"], Thresholds(observe_s=10))
    >>> _ = r.start(0.0)
    >>> r.report("S1", {"rollout_id": "r1", "action": "install", "state": "installed",
    ...                 "events": 100, "errors": 0, "error_rate": 0.0}, 1.0), r.phase
    ([], 'observing')
    >>> r.tick(12.0, fleet=["S1", "S2", "S3"]), r.phase  # observed long enough: the rest
    ([Command(store='S2', action='install'), Command(store='S3', action='install')], 'promoting')
    """

    id: str
    version: str
    canaries: list[str]
    thresholds: Thresholds
    phase: str = "created"
    reason: str | None = None
    started_at: float = 0.0
    observe_until: float | None = None
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: dict[str, tuple[str, float]] = field(default_factory=dict)  # store -> action, when
    serves: list[str] | None = None  # a per-store or per-cluster bundle's stores; None: every one

    def start(self, now: float) -> list[Command]:
        self.phase, self.started_at = "canary", now
        return self._send(self.canaries, "install", now)

    def _send(self, stores: list[str], action: str, now: float) -> list[Command]:
        for s in stores:
            self.sent[s] = (action, now)
        return [Command(s, action) for s in stores]

    def report(self, store: str, report: dict[str, Any], now: float) -> list[Command]:
        """A store's report; the commands it calls for."""
        if report.get("rollout_id") != self.id or store not in self.sent:
            return []
        if report.get("action") != self.sent[store][0]:
            return []  # about the previous command (an install, while a rollback is on its way)
        self.reports[store] = report
        return self.tick(now)

    def tick(self, now: float, fleet: list[str] | None = None) -> list[Command]:
        """Move on if the reports so far (or the time) say so; ``fleet``: every store known."""
        if self.phase in ("canary", "observing"):
            breach = self._breach(now)
            if breach is not None:
                return self._halt(breach, now)
            if self.phase == "canary" and all(self._state(s) == "installed" for s in self.canaries):
                self.phase, self.observe_until = "observing", now + self.thresholds.observe_s
            if self.phase == "observing" and now >= (self.observe_until or 0) and fleet is not None:
                self.phase = "promoting"
                targets = set(fleet) - set(self.canaries)
                if self.serves is not None:
                    targets &= set(self.serves)
                return self._send(sorted(targets), "install", now)
        if self.phase == "promoting" and all(self._state(s) is not None for s in self.sent):
            self.phase = "promoted"
        if self.phase == "rolling_back" and all(
            self._state(s) is not None for s, (a, _) in self.sent.items() if a == "rollback"
        ):
            self.phase = "rolled_back"
        return []

    def _state(self, store: str) -> str | None:
        report = self.reports.get(store)
        return None if report is None else report.get("state")

    def _breach(self, now: float) -> str | None:
        """Why the canaries say stop, or None."""
        t = self.thresholds
        for s in self.canaries:
            r = self.reports.get(s)
            if r is None:
                if now - self.sent[s][1] > t.install_timeout_s:
                    return f"canary {s}: no answer within {t.install_timeout_s:g}s"
                continue
            if r.get("state") == "refused":
                return f"canary {s} refused the bundle: {r.get('error')}"
            events, rate = r.get("events", 0), r.get("error_rate", 0.0)
            if events >= t.min_events and rate > t.max_error_rate:
                return (
                    f"canary {s}: error rate {rate:.3f} above {t.max_error_rate:.3f} "
                    f"over {events} events"
                )
            error = r.get("forecast_error")
            if error is not None and error > t.max_forecast_error:
                return (
                    f"canary {s}: forecast error {error:.3f} above {t.max_forecast_error:.3f} "
                    f"over {r.get('forecast_days')} day(s)"
                )
        return None

    def _halt(self, reason: str, now: float) -> list[Command]:
        """Send the canaries back (those that refused kept their bundle: nothing to undo)."""
        self.phase, self.reason = "rolling_back", reason
        back = [s for s in self.canaries if self._state(s) != "refused"]
        for s in back:
            self.reports.pop(s, None)  # their next report is about the rollback
        if not back:
            self.phase = "rolled_back"
        return self._send(back, "rollback", now)

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    @property
    def deciding(self) -> bool:
        return self.phase in DECIDING

    def status(self) -> dict[str, Any]:
        """What ``GET /v1/rollouts/{id}`` shows."""
        return {
            "rollout_id": self.id,
            "version": self.version,
            "phase": self.phase,
            "reason": self.reason,
            "canaries": self.canaries,
            "serves": self.serves,
            "thresholds": self.thresholds.model_dump(),
            "observe_until": self.observe_until,
            "age_s": round(time.time() - self.started_at, 3) if self.started_at else None,
            "stores": {
                s: {"command": a, "report": self.reports.get(s)}
                for s, (a, _) in sorted(self.sent.items())
            },
        }
