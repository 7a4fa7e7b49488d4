"""The gateway's side of a model rollout: it installs the bundle the hub names, goes back to the
one it had when told to, and reports how the new one does.

Commands come on ``shelfcast.<store>.install`` (stream ``SHELFCAST_ROLLOUT``, durable pull
consumer ``install-<store>``): ``{"rollout_id", "action": "install", "bundle", "version"}``
fetches the bundle (a tar.gz of its directory) from the JetStream object store
``shelfcast_bundles`` and hands it to ``Gateway.swap_bundle``, so signature and digest checks and
the atomic switch stay the gateway's; ``"action": "rollback"`` swaps back to a copy of the bundle
the gateway used before the install (kept under ``<state_dir>/rollout/previous``, verified again
on the way back). A command is acknowledged once done, so a gateway that dies mid-install does
it again when it comes back.

Every heartbeat the gateway publishes ``shelfcast.<store>.rollout_report`` (core NATS: the next
report replaces a lost one) about the last command: its state (``installed``, ``refused``,
``rolled_back``, ``rollback_failed``), the version in use, and since the install: events taken,
errors (events refused plus scoring failures, from ``Gateway.counters``), their rate, and the
forecast error of the days closed since (``RolloutHealth``).

>>> h = RolloutHealth({"ingested": 100, "rejected": 2, "policy_errors": 0})
>>> h.errors({"ingested": 190, "rejected": 12, "policy_errors": 0})
(100, 10, 0.1)
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.messages import BUNDLE_STORE, INSTALL, ROLLOUT_REPORT, hub_subject

log = logging.getLogger(__name__)

ERROR_COUNTERS = ("rejected", "policy_errors")  # refused events, failed scorings


class RolloutHealth:
    """How a gateway does since an install: error rate from its counters, and the forecast error
    (sum of |forecast - actual| over sum of actual, the day-ahead forecast of each day closed
    since) from its forecasts and sales, read at each heartbeat.

    >>> h = RolloutHealth({"ingested": 0, "rejected": 0})
    >>> h.errors({"ingested": 50, "rejected": 0, "policy_errors": 1}), h.forecast_error
    ((50, 1, 0.02), None)
    """

    def __init__(self, counters: dict[str, int]):
        self.base = dict(counters)
        self.abs_error = 0.0
        self.actual = 0.0
        self.days = 0
        self._pending: tuple[Any, list[str], np.ndarray] | None = None  # day, skus, forecast

    def errors(self, counters: dict[str, int]) -> tuple[int, int, float]:
        """(events taken, errors, error rate) since the install."""
        errors = sum(counters.get(k, 0) - self.base.get(k, 0) for k in ERROR_COUNTERS)
        events = counters.get("ingested", 0) - self.base.get("ingested", 0)
        events += counters.get("rejected", 0) - self.base.get("rejected", 0)
        return events, errors, errors / events if events else 0.0

    def observe(self, forecasts: Any, sales: Any) -> None:
        """Score the pending day-ahead forecast if its day closed, then keep the newest one."""
        pending = self._pending
        closed = sales.last_closed
        back = -1 if pending is None or closed is None else int((closed - pending[0]).astype(int))
        if pending is not None and 0 <= back < sales.history.days:  # its day is closed
            actual = np.nan_to_num(sales.history.last_day(pending[1], back))
            self.abs_error += float(np.abs(pending[2] - actual).sum())
            self.actual += float(actual.sum())
            self.days += 1
            self._pending = None
        if forecasts is not None and (pending is None or forecasts.last_close + 1 > pending[0]):
            day = forecasts.last_close + 1
            if closed is None or day > closed:
                self._pending = (day, list(forecasts.skus), forecasts.mean[:, -1, 0].copy())

    @property
    def forecast_error(self) -> float | None:
        """None until a day closed since the install."""
        if not self.days:
            return None
        return self.abs_error / self.actual if self.actual else float(self.abs_error > 0)


class RolloutAgent:
    """Takes the hub's install commands for one gateway and reports on them."""

    def __init__(self, gateway: Any, store_id: str, prefix: str = "shelfcast"):
        self.gateway = gateway
        self.store_id = store_id
        self.prefix = prefix
        self.dir = Path(gateway.cfg.gateway.state_dir) / "rollout"
        self.last: dict[str, Any] | None = None  # the last command and its outcome
        self.health: RolloutHealth | None = None

    async def run(self, nc: Any, js: Any, stop: Any, every_s: float) -> None:
        """Take commands and report every ``every_s`` until ``stop`` (a threading.Event)."""
        sub = await js.pull_subscribe(
            hub_subject(self.store_id, INSTALL, self.prefix), durable=f"install-{self.store_id}"
        )
        loop = asyncio.get_running_loop()
        next_report = 0.0
        while not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=min(1.0, every_s))
            except TimeoutError:
                msgs = []
            for msg in msgs:
                command = json.loads(msg.data)
                data = None
                if command.get("action") == "install":
                    obs = await js.object_store(BUNDLE_STORE)
                    data = (await obs.get(command["bundle"])).data
                await loop.run_in_executor(None, self.follow, command, data)
                next_report = 0.0
                await msg.ack()
            if self.last is not None and time.monotonic() >= next_report:
                await nc.publish(
                    hub_subject(self.store_id, ROLLOUT_REPORT, self.prefix),
                    json.dumps(self.report()).encode(),
                )
                next_report = time.monotonic() + every_s

    def follow(self, command: dict[str, Any], data: bytes | None) -> None:
        """Do what ``command`` says (``data``: the bundle's tar.gz for an install)."""
        action, rid = command.get("action"), str(command.get("rollout_id", ""))
        if self.last and self.last["rollout_id"] == rid and self.last["action"] == action:
            return  # redelivered after it was done (the ack was lost)
        self.last = {"rollout_id": rid, "action": action, "error": None}
        try:
            if action == "install":
                self._install(rid, data or b"")
                self.last["state"] = "installed"
            elif action == "rollback":
                self.gateway.swap_bundle(self._previous())
                self.last["state"] = "rolled_back"
            else:
                raise ValueError(f"unknown rollout action {action!r}")
        except Exception as err:  # refused (signature, digests, models) or no previous bundle
            self.last["state"] = "refused" if action == "install" else "rollback_failed"
            self.last["error"] = f"{type(err).__name__}: {err}"
            log.error("rollout %s: %s failed: %s", rid, action, self.last["error"])
        self.health = RolloutHealth(self.gateway.counters)

    def _previous(self) -> Path:
        previous = self.dir / "previous"
        if not previous.exists():
            raise FileNotFoundError(f"no previous bundle kept in {previous} to go back to")
        return previous

    def _install(self, rollout_id: str, data: bytes) -> None:
        incoming = self.dir / "incoming" / rollout_id
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(incoming, filter="data")
        current = self.gateway.bundle
        if current is not None:  # what a rollback goes back to: a copy, the install replaces it
            keep = self.dir / "previous.new"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(Path(current.path).resolve(), keep)
        try:
            self.gateway.swap_bundle(incoming)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        if current is not None:
            shutil.rmtree(self.dir / "previous", ignore_errors=True)
            (self.dir / "previous.new").rename(self.dir / "previous")

    def report(self) -> dict[str, Any]:
        """The last command's outcome and the gateway's health since (JSON-ready)."""
        assert self.last is not None and self.health is not None
        g = self.gateway
        self.health.observe(g.forecasts, g.sales)
        events, errors, rate = self.health.errors(g.counters)
        return {
            **self.last,
            "store_id": self.store_id,
            "version": g.model_version,
            "events": events,
            "errors": errors,
            "error_rate": rate,
            "forecast_days": self.health.days,
            "forecast_error": self.health.forecast_error,
        }
