"""What the API needs of a gateway, in one place: the adapters between routes and the runtime.

Routes call only :class:`Runtime`'s methods. Three ways to build one:

- :class:`GatewayRuntime` over a running ``edge_runtime.gateway.Gateway`` (``shelfcast serve``
  with the runtime in the same process): ingest goes through ``Gateway.ingest``, the path MQTT
  ingest takes, so decisions, alerts and the outbox follow.
- :class:`LedgerRuntime` over a real ``Ledger`` (and its outbox file) without decisions.
- :class:`StateDirRuntime` reading a state directory another process's gateway writes:
  read-only; each read goes to SQLite so it is never stale.

>>> import tempfile, os
>>> from edge_runtime.store.ledger import Ledger
>>> tmp = tempfile.TemporaryDirectory()
>>> rt = LedgerRuntime(Ledger(os.path.join(tmp.name, "ledger.sqlite"), "S1"))
>>> rt.ingest(b'[{"event_id": "e1"}, {"type": {}}]', "api").rejected
2
>>> rt.close(); tmp.cleanup()
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from api import bundle_store, ledger_feed
from api.errors import Unavailable
from api.metrics import CREATED_PREFIX, SENT_PREFIX
from edge_runtime.decide.stockout import stockout_risk
from edge_runtime.store import ledger_queries
from edge_runtime.store.ledger import IngestResult, Ledger
from edge_runtime.store.outbox import Outbox
from edge_runtime.store.stock import StockState, iso_utc
from models.bundle import BundleError

NO_BUNDLE = "no bundle installed"  # the rules decide: nothing is down


class BundleRefused(ValueError):
    """A bundle failed verification (digests, feature spec); answered with 422.

    >>> issubclass(BundleRefused, ValueError)
    True
    """


class Runtime:
    """The interface routes use; subclasses fill it in. Unsupported operations raise Unavailable.

    >>> Runtime().bundle_info()
    {'loaded': False}
    """

    store_id: str
    read_only: bool = False
    can_forecast: bool = False  # the prediction routes exist only where something can score

    def ingest(self, payload: bytes, source: str) -> IngestResult:
        raise Unavailable("this API serves a state directory read-only; send events to the gateway")

    def stock(self, sku: str) -> StockState | None:
        raise NotImplementedError

    def stocks(self, offset: int, limit: int) -> list[StockState]:
        raise NotImplementedError

    def sku_count(self) -> int:
        raise NotImplementedError

    def alerts(self, kind: str | None, sku: str | None, limit: int) -> list[bytes]:
        raise NotImplementedError

    def alerts_after(self, after_seq: int | None, limit: int) -> list[tuple[int, bytes]]:
        """Alerts and conflicts after an outbox position (``api.ledger_feed.alerts_after``)."""
        raise NotImplementedError

    def last_event_seq(self) -> int:
        """The ledger's newest event position: a live view refreshes stock when it moves."""
        raise NotImplementedError

    def recent_sales(self, sku: str, days: int) -> tuple[str, list[float], float] | None:
        """``Gateway.recent_sales``: closed days' net units, the open day and its units so far."""
        raise Unavailable(
            "daily sales are kept by a running gateway, and this API runs without one"
        )

    def bundle_info(self) -> dict[str, Any]:
        return {"loaded": False}

    def swap_bundle(self, path: Path) -> dict[str, Any]:
        raise Unavailable("this runtime cannot load model bundles")

    def forecast(self, skus: list[str], horizon_days: float) -> tuple[list[dict], list[str]]:
        raise Unavailable("no model bundle loaded: forecasts are unavailable")

    def stats(self) -> dict[str, float]:
        return {}

    def checks(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        """Release what this adapter opened (never the gateway itself)."""


class _OutboxReader:
    """A private connection to the outbox table, locked: reads never share a cursor."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._box = Outbox(path) if path.exists() else None

    def recent(self, kind: str | None, sku: str | None, limit: int) -> list[bytes]:
        if self._box is None:
            return []
        with self._lock:
            return self._box.recent(kind=kind, sku=sku, limit=limit)

    def depth(self) -> int:
        if self._box is None:
            return 0
        with self._lock:
            return self._box.depth()

    def alerts_after(self, after_seq: int | None, limit: int) -> list[tuple[int, bytes]]:
        if self._box is None:
            return []
        with self._lock:
            return ledger_feed.alerts_after(self._box.connection, after_seq, limit)

    def last_event_seq(self) -> int:
        if self._box is None:
            return 0
        with self._lock:
            return ledger_feed.last_event_seq(self._box.connection)

    def close(self) -> None:
        if self._box is not None:
            self._box.close()


class LedgerRuntime(Runtime):
    """A real ledger (and the outbox in its file), no decision layer.

    Ingest takes ``Ledger.ingest_raw``, the same parse and dead-letter path as ``Gateway.ingest``.
    Forecasts are the gateway's (its day-close re-score): without one, the prediction routes
    answer 503 saying so.

    >>> LedgerRuntime.read_only, LedgerRuntime.can_forecast
    (False, True)
    """

    can_forecast = True  # the routes exist; 503 says why there is nothing to serve

    def __init__(
        self,
        ledger: Ledger,
        bundle_dir: Path | None = None,
        trust: bundle_store.BundleTrust | None = None,
    ):
        self.ledger = ledger
        self.store_id = ledger.store_id
        self._outbox = _OutboxReader(ledger.path)
        self.bundle_dir = Path(bundle_dir or ledger.path.parent / "bundle")
        # Whose bundles are run; by default none without a signature check (see BundleTrust).
        self.trust = trust or bundle_store.BundleTrust()
        self._bundle_lock = threading.Lock()
        self._bundle, self._bundle_problem = self._load_current()

    def forecast(self, skus: list[str], horizon_days: float) -> tuple[list[dict], list[str]]:
        if self._bundle is None:
            raise Unavailable("no model bundle loaded: forecasts need one (PUT /v1/bundle)")
        raise Unavailable(
            "no model bundle loaded by a gateway: forecasts are the running gateway's day-close "
            "re-score, and this API runs without one"
        )

    def _load_current(self):
        if not self.bundle_dir.exists():
            return None, NO_BUNDLE
        try:
            return bundle_store.verify(self.bundle_dir, self.trust), None
        except BundleError as err:  # a damaged bundle on disk is reported, never used
            return None, f"installed bundle refused: {err}"

    def bundle_info(self) -> dict[str, Any]:
        return bundle_store.info(self._bundle)

    def swap_bundle(self, path: Path) -> dict[str, Any]:
        """Verify ``path`` and make it the current bundle; the old one stays if it is refused."""
        try:
            candidate = bundle_store.verify(path, self.trust)
        except BundleError as err:
            raise BundleRefused(str(err)) from None
        with self._bundle_lock:
            self._bundle = bundle_store.install(candidate, self.bundle_dir, self.trust)
            self._bundle_problem = None
        return self.bundle_info()

    def ingest(self, payload: bytes, source: str) -> IngestResult:
        """The ledger's one parse, dead-letter and commit path (a store error raises)."""
        return self.ledger.ingest_raw(payload, source)

    def stock(self, sku: str) -> StockState | None:
        return self.ledger.stock(sku)

    def stocks(self, offset: int, limit: int) -> list[StockState]:
        return self.ledger.stocks(offset, limit)

    def sku_count(self) -> int:
        return self.ledger.sku_count()

    def alerts(self, kind: str | None, sku: str | None, limit: int) -> list[bytes]:
        return self._outbox.recent(kind, sku, limit)

    def alerts_after(self, after_seq: int | None, limit: int) -> list[tuple[int, bytes]]:
        return self._outbox.alerts_after(after_seq, limit)

    def last_event_seq(self) -> int:
        return self._outbox.last_event_seq()

    def stats(self) -> dict[str, float]:
        health = self.ledger.health
        return {
            "outbox_depth": self._outbox.depth(),
            "ledger_writable": float(health.problem is None),
            "store_failures": health.failures,
        }

    def problems(self) -> dict[str, str]:
        """Required parts that are down, each with why (see ``Gateway.problems``)."""
        out = {}
        if self.ledger.health.problem is not None:
            out["ledger"] = f"not writable: {self.ledger.health.problem}; ingest answers 503"
        if self._bundle is None and self._bundle_problem != NO_BUNDLE:
            out["bundle"] = str(self._bundle_problem)
        return out

    def checks(self) -> dict[str, str]:
        """One entry per part: ``ok ...``, ``optional: ...`` (absent, not needed) or
        ``failing: why`` (readiness answers 503 and names it)."""
        problems = self.problems()
        checks = {"ledger": "ok"}
        checks["bundle"] = (
            f"ok ({self._bundle.model_version})"
            if self._bundle is not None
            else f"optional: {NO_BUNDLE}"
        )
        checks.update({part: f"failing: {why}" for part, why in problems.items()})
        return checks

    def close(self) -> None:
        self._outbox.close()


class StateDirRuntime(Runtime):
    """Read-only view of a state directory (``ledger.sqlite``) written by another process.

    Reads go to SQLite each time (the other process owns the in-memory state), through a
    read-only connection: this process can never change the ledger.

    >>> StateDirRuntime.read_only
    True
    """

    read_only = True

    def __init__(self, state_dir: str | Path):
        path = Path(state_dir) / "ledger.sqlite"
        if not path.exists():
            raise FileNotFoundError(f"no ledger at {path}: is this a gateway's state directory?")
        self.path = path
        self._lock = threading.Lock()
        self._conn = ledger_queries.open_read_only(path)
        meta = ledger_queries.ledger_meta(self._conn)
        self.store_id = meta["store_id"]
        self.safety_buffer = int(meta.get("safety_buffer", "0"))

    def _clock(self) -> int:
        with self._lock:
            latest = ledger_queries.latest_event_us(self._conn)
        return latest or int(time.time() * 1e6)

    def stock(self, sku: str) -> StockState | None:
        with self._lock:
            found = ledger_queries.stored_stock(self._conn, sku)
        return StockState.of(found, self.safety_buffer, self._clock()) if found else None

    def stocks(self, offset: int, limit: int) -> list[StockState]:
        with self._lock:
            rows = ledger_queries.stored_stock_page(self._conn, offset, limit)
        clock = self._clock()
        return [StockState.of(s, self.safety_buffer, clock) for s in rows]

    def sku_count(self) -> int:
        with self._lock:
            return ledger_queries.stored_sku_count(self._conn)

    def alerts(self, kind: str | None, sku: str | None, limit: int) -> list[bytes]:
        try:
            with self._lock:
                return ledger_queries.outbox_payloads(self._conn, kind, sku, limit)
        except sqlite3.OperationalError:  # the gateway has not created its outbox yet
            return []

    def alerts_after(self, after_seq: int | None, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            return ledger_feed.alerts_after(self._conn, after_seq, limit)

    def last_event_seq(self) -> int:
        with self._lock:
            return ledger_feed.last_event_seq(self._conn)

    def stats(self) -> dict[str, float]:
        try:
            with self._lock:
                depth = ledger_queries.undelivered_count(self._conn)
        except sqlite3.OperationalError:
            return {}
        return {} if depth is None else {"outbox_depth": depth}

    def checks(self) -> dict[str, str]:
        try:
            self.sku_count()
            return {"ledger": "ok (read-only)"}
        except sqlite3.Error as err:
            return {"ledger": f"unreadable: {err}"}

    def close(self) -> None:
        self._conn.close()


class GatewayRuntime(LedgerRuntime):
    """A running ``edge_runtime.gateway.Gateway``: ingest takes ``Gateway.ingest``; bundles are
    swapped by ``Gateway.swap_bundle`` (verified, installed, re-scored at once); forecasts are
    the gateway's day-close table (``Gateway.forecasts``: ONE batched ONNX re-score per store
    day, River-corrected), turned into stock-out risk on the ledger's current ATP. Nothing
    re-reads the event log per request.

    >>> GatewayRuntime.can_forecast
    True
    """

    def __init__(self, gateway: Any):
        self.gateway = gateway
        trust = getattr(gateway, "trust", None)
        super().__init__(gateway.ledger, Path(gateway.cfg.gateway.state_dir) / "bundle", trust)

    def _load_current(self):
        gateway = self.gateway
        if not hasattr(gateway, "swap_bundle"):
            return super()._load_current()
        return gateway.bundle, gateway.bundle_problem or NO_BUNDLE

    def bundle_info(self) -> dict[str, Any]:
        if hasattr(self.gateway, "swap_bundle"):
            return bundle_store.info(self.gateway.bundle)
        return super().bundle_info()

    def swap_bundle(self, path: Path) -> dict[str, Any]:
        swap = getattr(self.gateway, "swap_bundle", None)
        if swap is None:
            return super().swap_bundle(path)
        try:
            bundle = swap(path)
        except BundleError as err:
            raise BundleRefused(str(err)) from None
        self._bundle, self._bundle_problem = bundle, None
        return self.bundle_info()

    def forecast(self, skus: list[str], horizon_days: float) -> tuple[list[dict], list[str]]:
        """Served from the moment a bundle is in use: SKUs the last close scored get their
        forecast; SKUs the ledger knows but no close has scored yet (before the first close
        after install, or first seen today) are ``no_history`` items, not a 503; SKUs neither
        knows are unknown."""
        table = getattr(self.gateway, "forecasts", None)
        if table is None and getattr(self.gateway, "bundle", None) is None:
            raise Unavailable("no model bundle loaded: forecasts need one (PUT /v1/bundle)")
        now = iso_utc(self.ledger.clock_us) or datetime.now(UTC).isoformat()
        days = max(1, math.ceil(horizon_days))
        rows, bare, unknown, order = [], [], [], []
        for sku in skus:
            found = table.lookup(sku, now, days) if table is not None else None
            state = self.ledger.stock(sku)
            if found is not None:
                rows.append((sku, state, *found))
                order.append(sku)
            elif state is not None:
                bare.append((sku, state))
                order.append(sku)
            else:
                unknown.append(sku)
        version = str(getattr(self.gateway, "model_version", "unknown"))
        scored = table.mean.shape[2] if table is not None else None
        items = forecast_items(rows, horizon_days, version, scored)
        items += [no_history_item(sku, s, horizon_days, version) for sku, s in bare]
        place = {sku: i for i, sku in enumerate(order)}
        return sorted(items, key=lambda item: place[item["sku"]]), unknown

    def ingest(self, payload: bytes, source: str) -> IngestResult:
        """``Gateway.ingest``: the path MQTT payloads take, decisions and outbox included."""
        return self.gateway.ingest(payload, source)

    def recent_sales(self, sku: str, days: int) -> tuple[str, list[float], float] | None:
        read = getattr(self.gateway, "recent_sales", None)
        if read is None:
            return super().recent_sales(sku, days)
        return read(sku, days)

    def stats(self) -> dict[str, float]:
        counters = getattr(self.gateway, "counters", {})
        out = {**super().stats(), **counters}
        transport = getattr(self.gateway, "transport", None)
        if transport is not None:
            out["broker_connected"] = float(transport.connected)
            out["mqtt_connects"] = transport.connects
        for kind, n in getattr(self.gateway, "created_by_kind", {}).items():
            out[f"{CREATED_PREFIX}{kind}"] = n
        for kind, n in getattr(self.gateway, "sent_by_kind", {}).items():
            out[f"{SENT_PREFIX}{kind}"] = n
        out["intake_held"] = len(getattr(self.gateway, "_held", ()))
        return out

    def problems(self) -> dict[str, str]:
        own = getattr(self.gateway, "problems", None)
        return own() if own is not None else super().problems()

    def checks(self) -> dict[str, str]:
        if hasattr(self.gateway, "swap_bundle"):
            self._bundle, self._bundle_problem = self._load_current()
        checks = super().checks()
        if getattr(self.gateway, "transport", None) is not None:
            checks.setdefault("mqtt", "ok (connected)")
        return checks


def forecast_items(
    rows: list, horizon_days: float, version: str, scored_days: int | None = None
) -> list[dict]:
    """Forecast dicts (``api.schemas.Forecast`` fields) with stock-out risk on current ATP;
    ``rows`` are ``(sku, StockState | None, mean per day, P90 per day)``; ``scored_days``, the
    horizons the model scored, says how much of a long horizon is extrapolated."""
    if not rows:
        return []
    mean = np.array([max(r[2], 0.0) for r in rows])
    p90 = np.maximum(np.array([r[3] for r in rows]), mean)
    known = [r[1] is not None for r in rows]
    atp = np.array([float(r[1].available) if r[1] else 0.0 for r in rows])
    risk = stockout_risk(mean, p90, atp, horizon_days)
    out = []
    for i, (sku, state, *_) in enumerate(rows):
        days = float(risk.expected_days[i])
        out.append(
            {
                "sku": sku,
                "horizon_days": horizon_days,
                "status": "forecast",
                "mean_daily": float(mean[i]),
                "p90_daily": float(p90[i]),
                "demand_over_horizon": float(mean[i] * horizon_days),
                "atp": float(state.available) if state else None,
                "stockout_probability": float(risk.probability[i]) if known[i] else None,
                "expected_days_to_stockout": days if known[i] and math.isfinite(days) else None,
                "scored_days": scored_days,
                "model_version": str(version),
            }
        )
    return out


def no_history_item(sku: str, state: StockState, horizon_days: float, version: str) -> dict:
    """A ``no_history`` forecast item (``api.schemas.Forecast``): no demand figures, and the
    stock-out risk the stock alone fixes (1 at ATP zero, the gateway's own rule)."""
    out = float(state.available) <= 0
    return {
        "sku": sku,
        "horizon_days": horizon_days,
        "status": "no_history",
        "mean_daily": None,
        "p90_daily": None,
        "demand_over_horizon": None,
        "atp": float(state.available),
        "stockout_probability": 1.0 if out else None,
        "expected_days_to_stockout": 0.0 if out else None,
        "scored_days": None,
        "model_version": version,
    }


def runtime_for(gateway: Any) -> GatewayRuntime:
    """The adapter for ``gateway`` (``create_app`` builds it)."""
    return GatewayRuntime(gateway)
