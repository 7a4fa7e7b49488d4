"""The gateway: the one entry object of the edge runtime.

``Gateway`` owns the ledger, the outbox, the decision policy, the uplink and the MQTT transport.
Events arrive through :meth:`Gateway.ingest` (what the API calls) or over MQTT; either way they
are stored in the ledger and the policy's messages are written to the outbox *in the same
SQLite transaction*, so an alert exists if and only if the stock change that caused it does.

One worker thread does everything that follows: it ingests MQTT payloads in groups (one
transaction per group, acknowledged to the broker only after commit), hands new outbox rows to
the transport straight away (the low-latency path), drains the outbox after an outage (the
durable path), marks rows sent on PUBACK and flushes the uplink window.

>>> import tempfile
>>> from edge_runtime.config import load_config
>>> cfg = load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": tempfile.mkdtemp(),
...                        "SHELFCAST_MQTT_ENABLED": "false"})
>>> gw = Gateway(cfg)
>>> ev = {"event_id": "e1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 1,
...       "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
>>> gw.ingest(ev, "api").accepted, [m["kind"] for m in gw.recent_messages()]
(1, ['replenishment'])
>>> gw.close()
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import queue
import signal
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.bundles import install, verify
from edge_runtime.config import ConfigError, GatewayConfig, load_config
from edge_runtime.count_watch import CountWatch
from edge_runtime.daily_sales import DailySales
from edge_runtime.day_close import DayCloseModel
from edge_runtime.decisions import DecisionPolicy, RulePolicy
from edge_runtime.derived_snapshot import DerivedSnapshot, dump_derived, load_derived, write_derived
from edge_runtime.events import MAX_EVENTS_PER_PAYLOAD, MAX_PAYLOAD_BYTES, Rejection
from edge_runtime.forecast_policy import DailyForecasts, DecisionSettings, ForecastDecisionPolicy
from edge_runtime.heap import freeze_startup_heap
from edge_runtime.ledger import IngestResult, Ledger
from edge_runtime.messages import Message
from edge_runtime.mqtt import MqttTransport
from edge_runtime.outbox import Outbox, OutboxRow
from edge_runtime.phantom import PhantomDetector
from edge_runtime.replenishment import OpenOrder
from edge_runtime.shelf_watch import ShelfWatch
from edge_runtime.shrink import CycleCountShrink
from edge_runtime.stock import SkuState, StockState, iso_utc
from edge_runtime.uplink import Uplink
from models.bundle import Bundle, BundleError

log = logging.getLogger(__name__)

WINDOW = 1000  # outbox rows handed to paho and not yet acknowledged, at most
GROUP_MAX_EVENTS = min(
    5000, MAX_EVENTS_PER_PAYLOAD
)  # events per ledger transaction on the MQTT path
ALONE_BYTES = 64 * 1024  # bigger payloads are ingested on their own (size limits apply)
_ID_CHUNK = 900
RAW_KEEP = 1024
SNAPSHOT_EVERY_EVENTS = 100_000  # derived-state snapshot after this many events ...
SNAPSHOT_EVERY_S = 60.0  # ... or this long after the last one, if anything was logged since
SNAPSHOT_TAIL_AT_START = 20_000  # a start that read this many events after it saves a new one


def _decoded(payload: Any) -> Any:
    """Raw bytes as JSON when they parse and are within the payload size limit (so a big batch
    with one bad event is judged event by event); otherwise unchanged."""
    if not isinstance(payload, bytes | bytearray) or len(payload) > MAX_PAYLOAD_BYTES:
        return payload
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return payload


def _raw_text(item: Any) -> str:
    """A storable, truncated text of what was received (lone surrogates escaped)."""
    try:
        if isinstance(item, bytes | bytearray):
            text = bytes(item[: RAW_KEEP * 4]).decode("utf-8", "backslashreplace")
        else:
            text = json.dumps(item, ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):
        text = f"<{type(item).__name__} that cannot be shown>"
    return text[:RAW_KEEP]


MARK_EVERY_S = 0.05


def _settings_from(cfg: GatewayConfig) -> DecisionSettings:
    m = cfg.model
    return DecisionSettings(
        lead_time_days=m.lead_time_days,
        review_days=m.review_days,
        service_z=m.service_z,
        threshold=m.stockout_threshold,
        min_change=m.stockout_min_change,
        hysteresis=m.stockout_hysteresis,
    )


def _policy_from(cfg: GatewayConfig) -> RulePolicy:
    p = cfg.policy
    return RulePolicy(
        cfg.gateway.store_id,
        reorder_point=p.reorder_point,
        order_up_to=p.order_up_to,
        pack_size=p.pack_size,
        lead_time_hours=p.lead_time_hours,
    )


class Gateway:
    """The runtime of one store (see the module docstring); ``start()`` runs MQTT and the worker."""

    def __init__(
        self,
        cfg: GatewayConfig,
        policy: DecisionPolicy | None = None,
        shelf_watch: ShelfWatch | None = None,
    ):
        self.cfg = cfg
        m = cfg.model
        # Theft / mis-scan detection over sales and sensor readings (which never touch stock).
        self.shelf_watch = shelf_watch or ShelfWatch(phantom=PhantomDetector(m.phantom_alpha))
        self.count_watch = CountWatch(CycleCountShrink(z_threshold=m.shrink_z))
        self.bundle_problem: str | None = None  # why an installed bundle is not in use
        bundle = self._startup_bundle()  # before any file is opened: a refusal leaks nothing
        store = cfg.gateway.store_id
        self.ledger = Ledger(cfg.ledger_path, store, safety_buffer=cfg.gateway.safety_buffer)
        self.outbox = Outbox(cfg.ledger_path, prefix=cfg.mqtt.topic_prefix)
        self.policy = policy or _policy_from(cfg)
        self._own_policy = policy is None  # rebuilt after a rollback (an injected one re-primed)
        # Daily net sales per SKU, from here on kept from ingested events (the model's input):
        # from the last snapshot plus the log after it, else from the whole log.
        self._restored_correction = None
        self.sales = self._startup_sales()
        self._sales_moved = False  # a day closed inside the open transaction
        self._staged = False  # the open transaction's decisions touched in-memory state
        self._rebuild_pending = False  # a rollback's rebuild failed too: retried before ingest
        self._correction_before: bytes | None = None  # River before a day close inside it
        self.model: DayCloseModel | None = None
        if bundle is not None:
            self._use_model(self._model_for(bundle))
        self.uplink = Uplink(self.outbox, store, self.policy.version)
        self._prime()
        self._restore_open_orders()
        self._lock = threading.Lock()  # ingest + hand-over of its rows, in commit order
        self._fresh: list[OutboxRow] = []
        self._inbox: queue.SimpleQueue[tuple[bytes, str, int, int]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._handed_upto = 0  # highest outbox seq handed to paho by this process
        self._backlog = True  # rows from before a restart or an outage wait in SQLite
        self._last_uplink = time.monotonic()
        self._acked: list[int] = []  # outbox seqs acknowledged, not yet marked sent
        self._snapshot_at = time.monotonic()
        self._snapshot_ok = True  # False after a failed write: then at most one try a minute
        self._last_mark = 0.0
        self.counters = {
            "ingested": 0,
            "duplicates": 0,
            "rejected": 0,
            "messages": 0,
            "sent": 0,
            "policy_errors": 0,
            "day_closes": 0,
        }
        self.transport: MqttTransport | None = None
        if cfg.mqtt.enabled:
            self.transport = MqttTransport(cfg, self._on_mqtt, model_version=self.policy.version)

    @property
    def derived_path(self) -> Path:
        return Path(self.cfg.gateway.state_dir) / "derived.pickle"

    def _startup_sales(self) -> DailySales:
        """The sales series from the derived-state snapshot when it holds for this log (the
        events after it are read), else rebuilt from the log."""
        snap = load_derived(self.derived_path, self.ledger.ledger_id)
        if snap is not None and self.ledger.holds(snap.upto, snap.last_id):
            n = snap.sales.catch_up(self.ledger.connection, snap.upto)
            self._restored_correction = snap.correction
            self._snapshot_upto = snap.upto
            # After a run of crashes each start would otherwise read a longer tail than the last.
            self._snapshot_soon = n >= SNAPSHOT_TAIL_AT_START
            log.info("sales series from the snapshot at %d, %d later events", snap.upto, n)
            return snap.sales
        self._snapshot_upto, self._snapshot_soon = 0, True  # none: saved once the worker runs
        return DailySales.from_ledger(self.ledger.connection)

    def _snapshot_blob(self, force: bool = False) -> tuple[int, bytes] | None:
        """Under the lock: the derived state as bytes when a snapshot is due (``force``: any
        change since the last), else None. Never while a rolled-back batch's memory waits to be
        rebuilt (it would save state no commit holds)."""
        upto, last_id = self.ledger.position()
        new = upto - self._snapshot_upto
        waited = time.monotonic() - self._snapshot_at >= SNAPSHOT_EVERY_S
        # The start's own snapshot waits for the first commit: consuming comes first.
        soon = self._snapshot_soon and self.counters["ingested"] > 0
        many = new >= SNAPSHOT_EVERY_EVENTS or soon
        due = new > 0 and (force or waited or (many and self._snapshot_ok))
        if not due or self._rebuild_pending:
            return None
        correction = self.model.correction if self.model is not None else None
        snap = DerivedSnapshot(self.ledger.ledger_id, upto, last_id, self.sales, correction)
        return upto, dump_derived(snap)

    def _maybe_snapshot(self, force: bool = False) -> None:
        """Save the derived state (and the ledger's lookups) when due; written outside the lock."""
        with self._lock:
            taken = self._snapshot_blob(force)
        if taken is None:
            return
        upto, blob = taken
        try:
            write_derived(self.derived_path, blob)
        except OSError as err:  # a full disk: only a slower next start; retried a minute on
            log.warning("derived-state snapshot not written (%s); retried in 60 s", err)
            self._snapshot_at, self._snapshot_ok = time.monotonic(), False
            return
        self._snapshot_upto, self._snapshot_at = upto, time.monotonic()
        self._snapshot_ok, self._snapshot_soon = True, False

    def _prime(self) -> None:
        """Policy levels and uplink baseline from the ledger as it is (after a restart)."""
        offset = 0
        while page := self.ledger.stocks(offset, 5000):
            self.policy.prime(page)
            self.uplink.prime(page)
            self.count_watch.prime(page)
            offset += len(page)

    def _restore_open_orders(self) -> None:
        """After a restart: a SKU's last model-driven replenishment trigger published after its
        last receipt is still an open order (no second order for it)."""
        replenisher = getattr(self.policy, "replenisher", None)
        if replenisher is None:
            return
        latest: dict[str, dict] = {}
        for payload in self.outbox.recent("replenishment", None, 1_000_000):
            m = json.loads(payload)
            if m.get("sku") and m["model_version"] != RulePolicy.version:
                latest.setdefault(m["sku"], m)  # newest first
        if not latest:
            return
        received = dict(
            self.ledger.connection.execute(
                "SELECT sku, max(ts_us) FROM events WHERE type = 'receipt' GROUP BY sku"
            )
        )
        for sku, m in latest.items():
            at_us = datetime.fromisoformat(m["event_time"]).timestamp() * 1e6
            if at_us >= received.get(sku, -1):  # a receipt closes orders before review
                replenisher.open_orders[sku] = OpenOrder(sku, float(m["recommended_qty"]))

    # ---- the model bundle --------------------------------------------------------------

    def _startup_bundle(self) -> Bundle | None:
        """The configured bundle (verified, installed as current; a refused one stops the
        gateway with the reason), else the installed one (a damaged one is reported, unused)."""
        configured, current = self.cfg.model.bundle, self.cfg.bundle_dir
        if configured:
            bundle = verify(configured)  # BundleError: the operator must see why
            if Path(configured).resolve() != current.resolve():
                bundle = install(bundle, current)
            return bundle
        if not current.exists():
            return None
        try:
            return verify(current)
        except BundleError as err:
            self.bundle_problem = f"installed bundle refused: {err}"
            log.error("%s; deciding with the [policy] rules", self.bundle_problem)
            return None

    def _model_for(self, bundle: Bundle) -> DayCloseModel:
        m = self.cfg.model
        keep = self.model.correction if self.model is not None else self._restored_correction
        return DayCloseModel(
            bundle, m.forecast_days, m.scoring_threads, correction=keep,
            buffer_every_days=m.buffer_every_days,
        )  # fmt: skip

    def _use_model(self, model: DayCloseModel) -> DailyForecasts | None:
        """Score with ``model`` from now on: re-score the last closed day at once and hand the
        forecasts to the forecast policy (replacing the rules policy on the first bundle)."""
        forecasts = model.rescore(self.sales)
        self.model = model
        self.bundle_problem = None
        if isinstance(self.policy, ForecastDecisionPolicy):
            self.policy.use(forecasts, model.model_version)
        else:
            store = self.cfg.gateway.store_id
            settings = _settings_from(self.cfg)
            self.policy = ForecastDecisionPolicy(
                store, forecasts, model.model_version, settings=settings
            )
        if hasattr(self, "uplink"):
            self.uplink.model_version = self.policy.version
        return forecasts

    @property
    def bundle(self) -> Bundle | None:
        """The verified bundle the gateway scores with (None: the rules decide)."""
        return self.model.bundle if self.model is not None else None

    @property
    def forecasts(self) -> DailyForecasts | None:
        """The forecast table decisions use: the last day-close re-score (API reads it)."""
        return getattr(self.policy, "forecasts", None)

    @property
    def model_version(self) -> str:
        return self.policy.version

    def swap_bundle(self, path: str | Path) -> Bundle:
        """Verify the bundle at ``path`` (``BundleError`` says why it is refused; the current
        one stays), install it as current, and switch to it between two ingest transactions:
        re-scored at once, its decisions on every SKU published, its version on every message
        from here on. Events are never paused for long and none is lost or applied twice (the
        sales series do not depend on the model)."""
        candidate = verify(path)
        current = self.cfg.bundle_dir
        if Path(path).resolve() != current.resolve():
            candidate = install(candidate, current)
        model = self._model_for(candidate)  # ONNX sessions built outside the lock
        with self._lock:
            forecasts = self._use_model(model)
            states = self.ledger.stocks(0, self.ledger.sku_count())
            messages = self._review_all(states, forecasts, self._now_text())
            rows = self.outbox.put(messages, conn=None) if messages else []
            self.counters["messages"] += len(rows)
            self._fresh.extend(rows)
        self._wake.set()
        if self.transport is not None:
            self.transport.set_model_version(self.policy.version)
        log.info("bundle %s in use (%s)", candidate.model_version, candidate.path)
        return candidate

    def _now_text(self) -> str | None:
        """The store's "now" as event-time text: the ledger clock, within the open store day."""
        now = iso_utc(self.ledger.clock_us) if self.ledger.clock_us else None
        day = self.sales.open_day
        if day is not None and (now is None or np.datetime64(now[:10], "D") < day):
            return f"{day}T00:00:00+00:00"  # the clock's UTC date can lag the store's date
        return now

    def _review_all(self, states: list[StockState], forecasts, at: str | None) -> list[Message]:
        """The forecast policy's decisions on every SKU at ``at`` (a day's close, a new model)."""
        if forecasts is None or not isinstance(self.policy, ForecastDecisionPolicy) or not states:
            return []
        try:
            return self.policy.review(states, {}, at)
        except Exception:
            log.exception("decision policy %s failed at review", self.policy.version)
            self.counters["policy_errors"] += 1
            return []

    # ---- ingest ------------------------------------------------------------------------

    def ingest(self, payload: bytes | str | dict | list, source: str = "api") -> IngestResult:
        """Ingest one payload (an event or a batch) durably; its alerts are queued to publish."""
        with self._lock:
            result, rows, states = self._ingest_locked(payload, source)
            self._handover(rows, states)
        self._wake.set()
        return result

    def _ingest_locked(self, payload, source: str):
        rows: list[OutboxRow] = []
        states: list[StockState] = []
        messages: list[Message] = []

        def before_commit(conn, result: IngestResult) -> None:
            self._staged = True
            closed = self._stage_day_close(result.events)
            receive = getattr(self.policy, "receive", None)
            if receive is not None and result.events:
                receive(result.events)  # receipts close open orders before the review
            if result.changed_skus or result.conflicts:
                states.extend(self._states_in_txn(conn, result.changed_skus))
                causes = {e.sku: e for e in result.events}
                messages.extend(self._decide(states, causes, result.conflicts))
            if result.events:  # sensor readings change no SKU but can still raise theft
                messages.extend(self._watch(result.events))  # sales seen before the phantom check
                messages.extend(self._counts(result.events, states))
            if closed:
                messages.extend(self._day_close(conn, result.events, states))
            if messages:
                rows.extend(self.outbox.put(messages, conn=conn))

        if self._rebuild_pending:  # never decide on memory a rolled-back batch touched
            self._forget_rolled_back()
        self._sales_moved = self._staged = False
        self._correction_before = None
        try:
            result = self.ledger.ingest_raw(payload, source, before_commit=before_commit)
        except BaseException:
            if self._staged:  # a rolled-back batch never counts: back to what committed
                self._rebuild_pending = True
                try:
                    self._forget_rolled_back()
                except Exception:  # the disk may still be failing: retried on the next ingest
                    log.exception("rebuild after a rolled-back ingest failed; retried next time")
            raise
        self.count_watch.committed()
        if not self._sales_moved and result.events:  # all within the open day: after COMMIT
            self.sales.observe(result.events, within_open_day=True)
        c = self.counters
        c["ingested"] += result.accepted
        c["duplicates"] += result.duplicates
        c["rejected"] += result.rejected
        c["messages"] += len(rows)
        self.uplink.observe_messages(messages)
        return result, rows, states

    def _forget_rolled_back(self) -> None:
        """The transaction rolled back after the batch's decisions were staged in memory (a
        disk failure): put that memory back to what committed, as a restart would find it.
        Otherwise the broker's redelivery of the batch would meet SKUs already marked alerted
        or ordered, and counts already booked, and their alerts (rolled back with the outbox)
        would never go out. The sales series and the policy's levels and open orders are
        rebuilt from the ledger and outbox, River goes back to before the day close, the count
        book is refilled from the ledger, and the shelf watch starts empty (its pending pick
        and gate windows are lost, as at a restart). An injected policy is only re-primed."""
        # Memory first (each step can run twice, should the ledger reads below fail and the
        # rebuild be retried), then what is read back from the ledger and the outbox.
        if self._correction_before is not None and self.model is not None:
            self.model.correction = pickle.loads(self._correction_before)
        self.count_watch.rollback()
        self.shelf_watch = self.shelf_watch.fresh()
        self.sales = self._startup_sales()
        if self._own_policy:
            self.policy = _policy_from(self.cfg)
        if self.model is not None:
            self._use_model(self.model)  # re-scored from the committed series
        self._prime()
        self._restore_open_orders()
        self._correction_before = None
        self._rebuild_pending = False
        log.warning("ingest rolled back; in-memory decisions rebuilt from the ledger")

    def _decide(self, states, causes, conflicts) -> list[Message]:
        """The policy's messages; a policy bug must not cost the events (they are the facts):
        it is logged and counted, and the stock change commits without its alerts."""
        try:
            return self.policy.decide(states, causes, conflicts)
        except Exception:
            log.exception("decision policy %s failed; events kept, no alerts", self.policy.version)
            self.counters["policy_errors"] += 1
            return []

    def _stage_day_close(self, events) -> bool:
        """When the batch crosses the store day's midnight, close the day(s) and re-score every
        SKU; True when a day closed.

        Why in place, not on a copy: copying every SKU's series cost ~13 ms per close at 3,000
        SKUs, inside the transaction, on every store's every midnight. A rollback is rare (the
        disk failed), so that path pays instead: ``_ingest_locked`` rebuilds the series from
        the ledger, which holds exactly what committed."""
        sales = self.sales
        if not events or (sales.last_closed is not None and not sales.crosses(events)):
            return False
        self._sales_moved = True
        closed = sales.observe(events)
        if not closed or self.model is None:
            return False
        # Once a store-day: River's state as it was, should this transaction roll back (a pickle
        # is ~2.5x faster than a deep copy: ~13 ms at 3,000 SKUs, within the close's pause).
        self._correction_before = pickle.dumps(self.model.correction, pickle.HIGHEST_PROTOCOL)
        try:
            self.model.learn(closed)
            forecasts = self.model.rescore(sales)
        except Exception:
            log.exception("day-close re-score failed; decisions keep the previous forecasts")
            self.counters["policy_errors"] += 1
            return False
        self.policy.use(forecasts, self.model.model_version)
        self.counters["day_closes"] += 1
        return True

    def _day_close(self, conn, events, changed: list[StockState]) -> list[Message]:
        """Decisions on every SKU at a day's close (the changed ones were just decided), and
        the phantom-inventory check on the new forecasts."""
        latest = max(events, key=lambda e: e.ts_us)
        done = {s.sku for s in changed}
        rows = conn.execute("SELECT * FROM stock").fetchall()
        as_of = max(self.ledger.clock_us, latest.ts_us)
        buffer = self.ledger.safety_buffer
        states = [StockState.of(SkuState(*r), buffer, as_of) for r in rows]
        others = [s for s in states if s.sku not in done]
        out = self._review_all(others, self.forecasts, latest.event_time)
        return out + self._phantoms(latest.ts_us / 1e6, states)

    def _phantoms(self, now: float, states: list[StockState]) -> list[Message]:
        """In stock per the ledger, but silent for longer than the forecast makes plausible."""
        forecasts = self.forecasts
        if forecasts is None:
            return []
        on_hand = {s.sku: float(s.on_hand) for s in states}
        skus = [s for s in forecasts.skus if s in on_hand]
        if not skus:
            return []
        at = forecasts.rows_of(skus)
        mean, p90 = forecasts.mean[at, -1, 0], forecasts.p90[at, -1, 0]
        try:
            alerts = self.shelf_watch.phantom.check(
                now, skus, np.array([on_hand[s] for s in skus]), mean, p90
            )
        except Exception:
            log.exception("phantom check failed; events kept, no phantom alerts")
            self.counters["policy_errors"] += 1
            return []
        return [a.to_message(self.cfg.gateway.store_id, self.policy.version) for a in alerts]

    def _counts(self, events, states: list[StockState]) -> list[Message]:
        """Shrink alerts for cycle counts and write-offs far beyond the SKU's history."""
        if not states:
            return []
        try:
            store = self.cfg.gateway.store_id
            return self.count_watch.messages(events, states, store, self.policy.version)
        except Exception:
            log.exception("count watch failed; events kept, no shrink alerts")
            self.counters["policy_errors"] += 1
            return []

    def _watch(self, events) -> list[Message]:
        """Theft and mis-scan alerts the batch settles; like the policy, a detector bug is
        logged and counted and never costs the events."""
        try:
            return self.shelf_watch.messages(events, self.cfg.gateway.store_id, self.policy.version)
        except Exception:
            log.exception("shelf watch failed; events kept, no anomaly alerts")
            self.counters["policy_errors"] += 1
            return []

    def _states_in_txn(self, conn, skus: list[str]) -> list[StockState]:
        """New states of ``skus`` as written in the open transaction (the ledger's in-memory
        states are updated only after COMMIT)."""
        rows = []
        for i in range(0, len(skus), _ID_CHUNK):
            chunk = skus[i : i + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows.extend(conn.execute(f"SELECT * FROM stock WHERE sku IN ({marks})", chunk))
        states = [SkuState(*r) for r in rows]
        as_of = max([self.ledger.clock_us, *(s.last_us for s in states)])
        buffer = self.ledger.safety_buffer
        return [StockState.of(s, buffer, as_of) for s in states]

    def _handover(self, rows: list[OutboxRow], states: list[StockState]) -> None:
        self._fresh.extend(rows)
        self.uplink.observe(states)

    def _on_mqtt(self, payload: bytes, source: str, mid: int, qos: int) -> None:
        self._inbox.put((payload, source, mid, qos))
        self._wake.set()

    def _ingest_mqtt(self, items: list[tuple[bytes, str, int, int]]) -> None:
        """Group payloads into few transactions; acknowledge each only after its commit."""
        groups: dict[str, tuple[list[Any], list[tuple[int, int]]]] = {}
        for payload, source, mid, qos in items:
            data = None
            if len(payload) <= ALONE_BYTES:
                try:
                    data = json.loads(payload)
                except (ValueError, RecursionError):  # ingested alone below: dead-lettered
                    data = None
            if data is None or (isinstance(data, list) and len(data) > GROUP_MAX_EVENTS):
                self._ingest_group(payload, source, [(mid, qos)])  # dead-letters / limits apply
                continue
            events, acks = groups.setdefault(source, ([], []))
            if isinstance(data, list):
                events.extend(data)
            else:
                events.append(data)
            acks.append((mid, qos))
            if len(events) >= GROUP_MAX_EVENTS:
                self._ingest_group(events, source, acks)
                del groups[source]
        for source, (events, acks) in groups.items():
            self._ingest_group(events, source, acks)

    def _ingest_group(self, payload, source: str, acks: list[tuple[int, int]]) -> None:
        try:
            self._ingest_handover(payload, source)
        except sqlite3.OperationalError:
            # The store itself failed (disk full, I/O): not acknowledged, so the broker
            # redelivers after a reconnect (the ledger is idempotent on event_id).
            log.exception("ingest of %d payload(s) from %r failed", len(acks), source)
            return
        except Exception as err:
            # A payload the parser or store cannot handle must not block the rest: retry item
            # by item and dead-letter what still fails, with the reason.
            self._ingest_one_by_one(payload, source, err)
        if self.transport is not None:
            for mid, qos in acks:
                self.transport.ack(mid, qos)

    def _ingest_handover(self, payload, source: str) -> None:
        with self._lock:
            _, rows, states = self._ingest_locked(payload, source)
            self._handover(rows, states)

    def _ingest_one_by_one(self, payload, source: str, first: Exception) -> None:
        payload = _decoded(payload)
        items = payload if isinstance(payload, list) else [payload]
        for index, item in enumerate(items):
            try:
                self._ingest_handover([item] if isinstance(payload, list) else item, source)
            except sqlite3.OperationalError:
                raise
            except Exception as err:
                self._dead_letter(item, source, err, index if isinstance(payload, list) else None)
        log.warning("payload from %r could not be ingested whole (%r): split", source, first)

    def _dead_letter(self, item: Any, source: str, err: Exception, index: int | None) -> None:
        """Write an unprocessable item to the ledger's dead-letter table, reason included."""
        reason = f"unprocessable {type(err).__name__}: {str(err)[:200]}"
        with self._lock:
            self.ledger.dead_letter([Rejection(_raw_text(item), reason, None, index)], source)
        self.counters["rejected"] += 1

    # ---- outgoing ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand new rows (or the backlog) to the transport, then mark acknowledged rows sent."""
        t = self.transport
        with self._lock:
            fresh, self._fresh = self._fresh, []
        if t is None:
            return
        self._acked.extend(t.take_acked())  # frees window room before publishing
        if t.broker_dropped is not None:  # upstream losses, for /metrics (see edge_runtime.mqtt)
            self.counters["broker_dropped"] = t.broker_dropped
        if t.connected:
            self._publish_fresh_or_backlog(fresh, WINDOW - t.inflight)
        else:
            self._backlog = True
        now = time.monotonic()
        # Marking sent is off the latency path and batched: losing a mark only re-sends.
        if self._acked and (len(self._acked) >= 2000 or now - self._last_mark >= MARK_EVERY_S):
            self.counters["sent"] += self.outbox.mark_sent(self._acked)
            self._acked = []
            self._last_mark = now

    def _publish_fresh_or_backlog(self, fresh: list[OutboxRow], room: int) -> None:
        if self._backlog:
            if room > 0:
                rows = self.outbox.pending(room, after_seq=self._handed_upto)
                self._publish(rows)
                self._backlog = len(rows) == room
            return
        rows = [r for r in fresh if r.seq > self._handed_upto]
        if len(rows) > room:
            self._backlog = True  # they are in SQLite; drained as PUBACKs free the window
        else:
            self._publish(rows)

    def _publish(self, rows: list[OutboxRow]) -> None:
        if rows:
            self.transport.publish(rows)
            self._handed_upto = rows[-1].seq

    def _maybe_flush_uplink(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_uplink >= self.cfg.uplink.interval_s:
            self._last_uplink = now
            with self._lock:
                self._fresh.extend(self.uplink.flush())

    # ---- running -----------------------------------------------------------------------

    def start(self) -> Gateway:
        """Connect to the broker (in the background) and start the worker thread."""
        if self.transport is not None:
            self.transport.start()
        self._worker = threading.Thread(target=self._run, name="gateway-worker", daemon=True)
        self._worker.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.02)
            self._wake.clear()
            items = []
            try:
                while len(items) < 10_000:
                    items.append(self._inbox.get_nowait())
            except queue.Empty:
                pass
            if items:
                try:
                    self._ingest_mqtt(items)
                except Exception:  # the store failed: unacknowledged, redelivered on reconnect
                    log.exception("ingest of %d MQTT payload(s) failed", len(items))
            try:
                self._pump()
                self._maybe_flush_uplink()
                self._maybe_snapshot()
            except Exception:
                log.exception("publishing failed; rows stay in the outbox")
                self._backlog = True
                time.sleep(0.1)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the outbox is empty (all acknowledged) or ``timeout``; True if empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox_depth() == 0 and self._inbox.empty():
                return True
            self._wake.set()
            time.sleep(0.01)
        return False

    def outbox_depth(self) -> int:
        return self.outbox.depth()

    def stock(self, sku: str) -> StockState | None:
        return self.ledger.stock(sku)

    def recent_messages(
        self, kind: str | None = None, sku: str | None = None, limit: int = 100
    ) -> list[dict]:
        """Newest outgoing messages (sent or waiting), as the JSON dicts consumers receive."""
        return [json.loads(p) for p in self.outbox.recent(kind, sku, limit)]

    def close(self) -> None:
        """Stop the worker, flush what can be sent, publish ``offline``, close the files."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(10)
            self._worker = None
        t = self.transport
        if t is not None:
            self._maybe_flush_uplink(force=True)
            self._pump()
            deadline = time.monotonic() + 2.0
            while t.connected and t.inflight and time.monotonic() < deadline:
                self._pump()  # collect PUBACKs so rows are not sent again after restart
                time.sleep(0.01)
            self._acked.extend(t.take_acked())
            if self._acked:
                self.counters["sent"] += self.outbox.mark_sent(self._acked)
                self._acked = []
            t.stop()
        self._maybe_snapshot(force=True)
        self.ledger.close()
        self.outbox.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- `shelfcast run` ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="gateway TOML file (env SHELFCAST_CONFIG); env overrides")
    parser.add_argument("--store-id", help="store id (env SHELFCAST_STORE_ID)")
    parser.add_argument("--state-dir", help="ledger/outbox directory (default var/gateway)")
    parser.add_argument("--mqtt-host", help="broker host (env SHELFCAST_MQTT_HOST)")
    parser.add_argument("--mqtt-port", type=int, help="broker port (env SHELFCAST_MQTT_PORT)")
    parser.add_argument(
        "--bundle", help="model bundle directory (env SHELFCAST_BUNDLE); none: the rules decide"
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def run(args: argparse.Namespace) -> int:
    """Run the gateway against the configured broker until SIGINT/SIGTERM."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = load_config(
            args.config,
            gateway__store_id=args.store_id,
            gateway__state_dir=args.state_dir,
            mqtt__host=args.mqtt_host,
            mqtt__port=args.mqtt_port,
            model__bundle=args.bundle,
        )
        gw = Gateway(cfg).start()
    except (ConfigError, BundleError) as err:
        print(f"shelfcast run: {err}", flush=True)
        return 2
    freeze_startup_heap()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "gateway %s: ledger %s, policy %s, broker %s:%s, topics %s/%s/...",
        cfg.gateway.store_id,
        cfg.ledger_path,
        gw.model_version,
        cfg.mqtt.host,
        cfg.mqtt.port,
        cfg.mqtt.topic_prefix,
        cfg.gateway.store_id,
    )
    while not stop.wait(1.0):
        pass
    gw.close()
    return 0
