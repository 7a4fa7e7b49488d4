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
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.bundles import BundleTrust, install, verify
from edge_runtime.command_options import LOG_LEVELS, log_level, port_number
from edge_runtime.config import ConfigError, GatewayConfig, load_config
from edge_runtime.count_watch import CountWatch
from edge_runtime.daily_sales import DailySales
from edge_runtime.day_close import DayCloseModel
from edge_runtime.decisions import DecisionPolicy, RulePolicy
from edge_runtime.events import MAX_EVENTS_PER_PAYLOAD, MAX_PAYLOAD_BYTES, Rejection
from edge_runtime.forecast_policy import DailyForecasts, DecisionSettings, ForecastDecisionPolicy
from edge_runtime.heap import freeze_startup_heap
from edge_runtime.jetstream_uplink import link_gateway
from edge_runtime.ledger import IngestResult, Ledger, LedgerError
from edge_runtime.messages import Message
from edge_runtime.mqtt import MqttTransport
from edge_runtime.outbox import Outbox, OutboxRow
from edge_runtime.phantom import PhantomDetector
from edge_runtime.replenishment import OpenOrder
from edge_runtime.shelf_watch import ShelfWatch
from edge_runtime.shrink import CycleCountShrink
from edge_runtime.stock import SkuState, StockState, iso_utc
from edge_runtime.store_failure import StoreError, store_failures_raised
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
# A refused write (full disk) is retried after these pauses, doubling: cheap (the write fails
# fast) and quick to resume once space is back.
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0


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
        self.trust = BundleTrust.from_config(m)  # a bad key file stops the start, saying which
        if m.allow_unsigned:
            log.warning("bundle signatures: %s", self.trust.describe())
        # The ledger first: its writer lock keeps a second gateway from touching this state
        # directory at all (installing its bundle there included). A failed start releases it.
        store = cfg.gateway.store_id
        self.ledger = Ledger(cfg.ledger_path, store, safety_buffer=cfg.gateway.safety_buffer)
        try:
            self._start_up(policy)
        except BaseException:
            if hasattr(self, "outbox"):
                self.outbox.close()
            self.ledger.close()
            raise

    def _start_up(self, policy: DecisionPolicy | None) -> None:
        """Everything after the ledger: bundle, outbox, policy, series, transport."""
        cfg, store = self.cfg, self.cfg.gateway.store_id
        bundle = self._startup_bundle()
        self.outbox = Outbox(cfg.ledger_path, prefix=cfg.mqtt.topic_prefix)
        self.hub_link = None
        self.policy = policy or _policy_from(cfg)
        self._own_policy = policy is None  # rebuilt after a rollback (an injected one re-primed)
        # Daily net sales per SKU, from here on kept from ingested events (the model's input).
        self.sales = DailySales.from_ledger(self.ledger.connection)
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
        self._held: list[tuple[bytes, str, int, int]] = []  # MQTT items the store refused
        self._retry_s = 0.0  # pause before retrying them (and marks), doubling
        self._retry_at = 0.0
        self._store_problem: str | None = None  # the ledger refused a write; not yet resolved
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
            try:
                bundle = verify(configured, self.trust)
            except BundleError as err:  # the operator must see why, and which bundle
                raise BundleError(f"bundle {configured} refused: {err}") from None
            if Path(configured).resolve() != current.resolve():
                bundle = install(bundle, current, self.trust)
            return bundle
        if not current.exists():
            return None
        try:
            return verify(current, self.trust)
        except BundleError as err:
            self.bundle_problem = f"installed bundle refused: {err}"
            log.error("%s; deciding with the [policy] rules", self.bundle_problem)
            return None

    def _model_for(self, bundle: Bundle) -> DayCloseModel:
        m = self.cfg.model
        keep = self.model.correction if self.model is not None else None
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
        candidate = verify(path, self.trust)
        current = self.cfg.bundle_dir
        if Path(path).resolve() != current.resolve():
            candidate = install(candidate, current, self.trust)
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
            with store_failures_raised():  # the disk still failing: the batch waits
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
        self.sales = DailySales.from_ledger(self.ledger.connection)
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
        if self.hub_link is not None:
            self.hub_link.wake()

    def _on_mqtt(self, payload: bytes, source: str, mid: int, qos: int) -> None:
        self._inbox.put((payload, source, mid, qos))
        self._wake.set()

    def _intake(self) -> None:
        """Ingest what MQTT delivered. After a store failure the unacknowledged payloads are
        held here and retried first, with backoff, and nothing new is taken meanwhile."""
        if self._held:
            if time.monotonic() < self._retry_at:
                return
            items, self._held = self._held, []
        else:
            items = []
            try:
                while len(items) < 10_000:
                    items.append(self._inbox.get_nowait())
            except queue.Empty:
                pass
        if not items:
            return
        try:
            self._held = self._ingest_mqtt(items)
        except Exception:  # a bug, not the store: logged; unacknowledged, redelivered later
            log.exception("ingest of %d MQTT payload(s) failed", len(items))
        if self._held:
            self._back_off()
        else:
            self._retry_s = 0.0

    def _back_off(self) -> None:
        """The store refused a write: the next attempt waits twice as long as the last one."""
        self._retry_s = min(RETRY_MAX_S, max(RETRY_MIN_S, self._retry_s * 2))
        self._retry_at = time.monotonic() + self._retry_s

    def _ingest_mqtt(self, items: list[tuple[bytes, str, int, int]]) -> list:
        """Group payloads into few transactions; acknowledge each only after its commit.

        Returns the items not committed because the store failed (none acknowledged)."""
        done: set[int] = set()  # id() of items committed and acknowledged
        try:
            for payload, source, group in self._groups(items):
                self._ingest_group(payload, source, group)
                done.update(map(id, group))
        except StoreError as err:
            left = [item for item in items if id(item) not in done]
            self._store_failed(err, f"{len(left)} MQTT payload(s) held, not acknowledged")
            return left
        return []

    @staticmethod
    def _groups(items: list[tuple[bytes, str, int, int]]):
        """``(payload, source, items)`` to ingest in order: small JSON payloads of one source
        together (up to ``GROUP_MAX_EVENTS`` events), large or unparsable ones alone."""
        groups: dict[str, tuple[list[Any], list]] = {}
        for item in items:
            payload, source = item[0], item[1]
            data = None
            if len(payload) <= ALONE_BYTES:
                try:
                    data = json.loads(payload)
                except (ValueError, RecursionError):  # ingested alone below: dead-lettered
                    data = None
            if data is None or (isinstance(data, list) and len(data) > GROUP_MAX_EVENTS):
                yield payload, source, [item]  # dead-letters / limits apply
                continue
            events, members = groups.setdefault(source, ([], []))
            if isinstance(data, list):
                events.extend(data)
            else:
                events.append(data)
            members.append(item)
            if len(events) >= GROUP_MAX_EVENTS:
                del groups[source]
                yield events, source, members
        for source, (events, members) in groups.items():
            yield events, source, members

    def _store_failed(self, err: StoreError, consequence: str) -> None:
        """Log a store failure once per episode; it lasts until nothing is held any more and
        the ledger's last write succeeded (a small write can fit on a nearly full disk while
        a batch does not)."""
        if self._store_problem is None:
            self._store_problem = str(err)
            log.error("%s: %s; retrying with backoff up to %g s", err, consequence, RETRY_MAX_S)

    def _ingest_group(self, payload, source: str, items: list) -> None:
        """Ingest one group and acknowledge its payloads; ``StoreError`` acknowledges none."""
        try:
            self._ingest_handover(payload, source)
        except StoreError:
            raise  # the store failed, not the events: they wait, unacknowledged
        except Exception as err:
            # A payload the parser or store cannot handle must not block the rest: retry item
            # by item and dead-letter what still fails, with the reason.
            self._ingest_one_by_one(payload, source, err)
        if self.transport is not None:
            for _, _, mid, qos in items:
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
            except StoreError:
                raise  # never a dead letter: only the event's own content makes one
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
        if t.connected:
            self._publish_fresh_or_backlog(fresh, WINDOW - t.inflight)
        else:
            self._backlog = True
        now = time.monotonic()
        # Marking sent is off the latency path and batched: losing a mark only re-sends.
        due = now - self._last_mark >= max(MARK_EVERY_S, self._retry_s)
        if self._acked and (len(self._acked) >= 2000 or due):
            self._last_mark = now
            try:
                self.counters["sent"] += self.outbox.mark_sent(self._acked)
            except StoreError:
                self._back_off()
                raise  # the seqs stay in _acked, marked once the disk takes writes
            self._acked = []
            if not self._held:
                self._retry_s = 0.0

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
        self.hub_link = link_gateway(self)  # JetStream uplink when [hub] url is set
        self._worker = threading.Thread(target=self._run, name="gateway-worker", daemon=True)
        self._worker.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.02)
            self._wake.clear()
            self._intake()
            try:
                self._pump()
                self._maybe_flush_uplink()
            except StoreError as err:
                self._store_failed(err, "outgoing messages wait in memory and in the outbox")
            except Exception:
                log.exception("publishing failed; rows stay in the outbox")
                self._backlog = True
                time.sleep(0.1)
            self._report_health()

    def problems(self) -> dict[str, str]:
        """The required parts that are down, each with why: ``ledger`` (writes refused),
        ``mqtt`` (broker unreachable, when MQTT is enabled) and ``bundle`` (an installed
        bundle refused). Readiness, the metrics and the retained state message say this."""
        out = {}
        health = self.ledger.health
        problem = health.problem or self._store_problem
        if problem is not None:
            since = f" since {iso_utc(int(health.since * 1e6))}" if health.since else ""
            out["ledger"] = (
                f"not writable{since}: {problem}; intake paused ({len(self._held)} MQTT "
                "payload(s) held, unacknowledged, retried with backoff)"
            )
        if self.transport is not None and not self.transport.connected:
            out["mqtt"] = self.transport.problem
        if self.bundle_problem is not None:
            out["bundle"] = self.bundle_problem
        return out

    def _report_health(self) -> None:
        """Log a recovery, and keep the retained state message's problems current."""
        if self._store_problem and not self._held and self.ledger.health.problem is None:
            self._store_problem = None
            log.warning("the ledger takes writes again: intake resumed")
        problems = self.problems()
        if self.transport is not None:
            self.transport.set_problems(sorted(f"{k}: {v}" for k, v in problems.items()
                                               if k != "mqtt"))  # fmt: skip

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

    def recent_sales(self, sku: str, days: int) -> tuple[str, list[float], float] | None:
        """Net units of ``sku`` on its last ``days`` closed days (oldest first; fewer when its
        series is younger), the open day (ISO date) and its units so far: the series the model
        forecasts from. None for a SKU the sales series has never seen.

        Copied under the ingest lock: the worker appends to these series while the API reads.
        """
        with self._lock:
            series = self.sales.series.get(sku)
            open_units = self.sales.open_units.get(sku)
            if (series is None and open_units is None) or self.sales.open_day is None:
                return None
            closed = list(series.units)[-days:] if series is not None and days > 0 else []
            return str(self.sales.open_day), closed, float(open_units or 0.0)

    def close(self) -> None:
        """Stop the worker, flush what can be sent, publish ``offline``, close the files."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(10)
            self._worker = None
        t = self.transport
        if t is not None:
            try:
                self._send_before_close(t)
            except StoreError as err:  # the disk refuses: these rows are sent again after restart
                log.warning("outgoing messages not all flushed or marked at close: %s", err)
            t.stop()
        if self.hub_link is not None:
            self.hub_link.close()
        self.ledger.close()
        self.outbox.close()

    def _send_before_close(self, t: MqttTransport) -> None:
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
    parser.add_argument(
        "--mqtt-port", type=port_number, help="broker port, 1..65535 (env SHELFCAST_MQTT_PORT)"
    )
    parser.add_argument(
        "--bundle", help="model bundle directory (env SHELFCAST_BUNDLE); none: the rules decide"
    )
    parser.add_argument(
        "--log-level",
        type=log_level,
        default="INFO",
        help=f"logging level, one of {', '.join(LOG_LEVELS)} (default INFO)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the gateway against the configured broker until SIGINT/SIGTERM."""
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
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
    except (ConfigError, BundleError, LedgerError, OSError) as err:
        # One line on stderr, no traceback: a bad config, a refused bundle, or a state
        # directory that is unusable, held by another gateway or holds another store's ledger.
        print(f"shelfcast run: {err}", file=sys.stderr, flush=True)
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
