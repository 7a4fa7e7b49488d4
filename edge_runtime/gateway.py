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
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from configuration.command_options import add_log_options, port_number
from edge_runtime.bundles import BundleTrust
from edge_runtime.config import ConfigError, GatewayConfig, load_config
from edge_runtime.decide.alert_episodes import AlertEpisodes
from edge_runtime.decide.bundle_lifecycle import BundleLifecycle
from edge_runtime.decide.day_close import DayCloseModel
from edge_runtime.decide.decisions import DecisionPolicy, RulePolicy
from edge_runtime.decide.forecast_policy import (
    DailyForecasts,
    DecisionSettings,
    ForecastDecisionPolicy,
)
from edge_runtime.decide.intraday_warning import IntradayWarner
from edge_runtime.decide.scored_close import model_key, restore, take
from edge_runtime.decide.state_changes import day_batches, rounds
from edge_runtime.forecast.daily_sales import DailySales
from edge_runtime.forecast.demand_distribution import preload_scipy
from edge_runtime.forecast.derived_snapshot import (
    DerivedSnapshot,
    dump_derived,
    load_derived,
)
from edge_runtime.forecast.snapshot_schedule import SnapshotSchedule
from edge_runtime.heap import freeze_startup_heap
from edge_runtime.ingest.dead_letter_topic import dead_letter_messages
from edge_runtime.ingest.each_alone import commit_or_each_alone, unprocessable
from edge_runtime.ingest.mqtt_intake import MqttIntake
from edge_runtime.log_output import configure_logging
from edge_runtime.messages import Message, with_decision_ids
from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.events import Event, Rejection
from edge_runtime.store.ledger import IngestResult, Ledger, LedgerError
from edge_runtime.store.open_orders import OpenOrderTable
from edge_runtime.store.outbox import Outbox, OutboxRow
from edge_runtime.store.retention import Retention, RetentionReport
from edge_runtime.store.stock import SkuState, StockState, iso_utc
from edge_runtime.store.store_failure import StoreError, store_failures_raised, write_transaction
from edge_runtime.transport.jetstream_uplink import link_gateway
from edge_runtime.transport.mqtt import MqttTransport
from edge_runtime.transport.outbox_pump import OutboxPump
from edge_runtime.transport.uplink import Uplink
from edge_runtime.watch.anomaly_scores import score_close
from edge_runtime.watch.count_watch import CountWatch
from edge_runtime.watch.phantom import PhantomDetector
from edge_runtime.watch.shelf_watch import ShelfWatch
from edge_runtime.watch.shrink import CycleCountShrink
from feature_store.censored_demand import shelf_empty
from models.bundle import Bundle, BundleError

log = logging.getLogger(__name__)

_ID_CHUNK = 900
RAW_KEEP = 1024


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


def _empty_shelves(conn, current: dict) -> set[str]:
    """SKUs whose shelf is empty at this point of a batch (``current``: the states the batch
    has reached, over the stored ones): a closing day's censored SKUs
    (``feature_store.censored_demand``)."""
    empty = {row[0] for row in conn.execute("SELECT sku FROM stock WHERE on_hand = 0")}
    for sku, s in current.items():
        if s is not None and shelf_empty(s.on_hand):
            empty.add(sku)
        else:
            empty.discard(sku)
    return empty


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
        if m.bundle or cfg.bundle_dir.exists():
            preload_scipy()  # the model's decisions need it; begun before everything else
        # Theft / mis-scan detection over sales and sensor readings (which never touch stock).
        self.shelf_watch = shelf_watch or ShelfWatch(phantom=PhantomDetector(m.phantom_alpha))
        self.count_watch = CountWatch(CycleCountShrink(z_threshold=m.shrink_z))
        trust = BundleTrust.from_config(m)  # a bad key file stops the start, saying which
        if m.allow_unsigned:
            log.warning("bundle signatures: %s", trust.describe())
        self.bundles = BundleLifecycle(cfg, trust)
        # The ledger first: its writer lock keeps a second gateway from touching this state
        # directory at all (installing its bundle there included). A failed start releases it.
        store = cfg.gateway.store_id
        self.ledger = Ledger(
            cfg.ledger_path,
            store,
            safety_buffer=cfg.gateway.safety_buffer,
            bounds=cfg.ingest.bounds(),
        )
        self.ledger.record_steps = True  # decisions follow each state change of a batch
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
        sessions: dict = {}  # the ONNX sessions the bundle was verified with
        bundle = self.bundles.at_start(sessions)
        self.outbox = Outbox(cfg.ledger_path, prefix=cfg.mqtt.topic_prefix)
        self.episodes = AlertEpisodes(self.ledger.connection)
        self.orders = OpenOrderTable(self.ledger.connection)
        archive = EventArchive(Path(cfg.gateway.state_dir) / "archive")
        self.retention = Retention(cfg.retention, self.ledger, self.outbox, archive,
                                   cfg.mqtt.enabled, self._forwarded_upto)  # fmt: skip
        self._retain_at = time.monotonic() + cfg.retention.every_s
        self.hub_link = None
        self.policy = policy or _policy_from(cfg)
        self._own_policy = policy is None  # rebuilt after a rollback (an injected one re-primed)
        # Daily net sales per SKU, from here on kept from ingested events (the model's input):
        # from the last snapshot plus the log after it, else from the whole log.
        self._restored_correction = None
        self._restored_scored = None  # the snapshot's last close scoring: used once, at start
        self._model_key = ""  # scored_close.model_key of self.model
        self.snapshots = SnapshotSchedule(self.derived_path)
        self.sales = self._startup_sales()
        self._sales_moved = False  # a day closed inside the open transaction
        self._staged = False  # the open transaction's decisions touched in-memory state
        self._rebuild_pending = False  # a rollback's rebuild failed too: retried before ingest
        self._correction_before: bytes | None = None  # River before a day close inside it
        self.model: DayCloseModel | None = None
        self.intraday: IntradayWarner | None = None  # the bundle's intraday stock-out warning
        if bundle is not None:
            self._use_model(self._model_for(bundle, sessions))
            self.intraday = self.bundles.warner_for(bundle, self.ledger.connection)
        sessions.clear()
        self._restored_scored = None  # only this start's model may take it
        self.uplink = Uplink(self.outbox, store, self.policy.version)
        self._prime()
        self._restore_open_orders()
        self._lock = threading.Lock()  # ingest + hand-over of its rows, in commit order
        self._fresh: list[OutboxRow] = []  # committed rows not yet handed to the pump
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._last_uplink = time.monotonic()
        self.counters = {
            "ingested": 0,
            "duplicates": 0,
            "rejected": 0,
            "messages": 0,
            "sent": 0,
            "policy_errors": 0,
            "day_closes": 0,
        }
        self.created_by_kind: Counter[str] = Counter()  # outbox messages created, by kind
        self.sent_by_kind: Counter[str] = Counter()  # outbox messages the broker acknowledged
        self.intake = MqttIntake(self.ledger.parse, self._ingest_parsed, self._ack)
        self.pump = OutboxPump(self.outbox, self.counters, self.sent_by_kind,
                               self.intake.backoff, lambda: not self.intake.held)  # fmt: skip
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
            self._restored_scored = snap.scored
            self.snapshots.restored(snap.upto, n)
            log.info("sales series from the snapshot at %d, %d later events", snap.upto, n)
            return snap.sales
        self.snapshots.rebuilt()
        return DailySales.from_ledger(self.ledger.connection)

    def _snapshot_blob(self, force: bool = False) -> tuple[int, bytes] | None:
        """The derived state as bytes when a snapshot is due (``force``: any change since the
        last), else None; copied under the lock. Never while a rolled-back batch's memory
        waits to be rebuilt (it would save state no commit holds)."""
        with self._lock:
            upto, last_id = self.ledger.position()
            ingested = self.counters["ingested"] > 0
            if self._rebuild_pending or not self.snapshots.due(upto, ingested, force):
                return None
            correction, scored = None, None
            if self.model is not None:
                correction = self.model.correction
                scored = take(self.model, self._model_key, self.forecasts, self.shelf_watch.anomaly)
            snap = DerivedSnapshot(
                self.ledger.ledger_id, upto, last_id, self.sales, correction, scored
            )
            return upto, dump_derived(snap)

    def _maybe_snapshot(self, force: bool = False) -> None:
        """Save the derived state when due (``edge_runtime.forecast.snapshot_schedule``)."""
        self.snapshots.save(self._snapshot_blob, force)

    def _forwarded_upto(self) -> int | None:
        """How far the hub link has forwarded the outbox (None: no hub; 0: not running yet)."""
        if not self.cfg.hub.url:
            return None
        link = self.hub_link
        return link.forwarded_upto(self.outbox.connection) if link is not None else 0

    def run_retention(self) -> RetentionReport:
        """Apply the ``[retention]`` bounds now (the worker does every ``every_s``): the
        snapshots move first, since the events after them stay in the log."""
        self._maybe_snapshot(force=True)
        self.ledger.write_index()
        # Under the ingest lock: every write on the ledger's connection is serialised by it
        # (a bundle swap writes its decisions there too).
        with self._lock:
            report = self.retention.run(keep_from=self.snapshots.upto)
        log.info("retention: %s", report)
        return report

    def _maybe_retain(self) -> None:
        if not self.cfg.retention.enabled or time.monotonic() < self._retain_at:
            return
        more = False
        try:
            more = self.run_retention().more
        except StoreError:
            raise
        except Exception:  # history only: the next run tries again
            log.exception("retention failed; retried in %g s", self.cfg.retention.every_s)
        finally:
            self._retain_at = time.monotonic() + (1.0 if more else self.cfg.retention.every_s)

    def _prime(self) -> None:
        """Policy levels and uplink baseline from the ledger as it is (after a restart), and
        the stock-out episodes open when the gateway stopped (so none is opened again)."""
        offset = 0
        while page := self.ledger.stocks(offset, 5000):
            self.policy.prime(page)
            self.uplink.prime(page)
            self.count_watch.prime(page)
            offset += len(page)
        restore = getattr(self.policy, "restore_alerts", None)
        if restore is not None:
            restore(self.episodes.load())

    def _restore_open_orders(self) -> None:
        """After a restart or a rollback: the open orders as committed (their own table)."""
        restore = getattr(self.policy, "restore_orders", None)
        if restore is not None:
            restore(self.orders.load())

    def _save_decided(self, conn, keep: bool = True) -> None:
        """Store the stock-out episodes and open orders the decisions just changed, on
        ``conn`` (inside the transaction that holds their messages); ``keep=False`` drops
        them, as it drops the messages of seeded history."""
        changes = self._episode_changes()
        take = getattr(self.policy, "take_order_changes", None)
        orders = take() if take is not None else {}
        if keep and changes:
            self.episodes.save(conn, changes)
        if keep and orders:
            self.orders.save(conn, orders)

    # ---- the model bundle --------------------------------------------------------------

    @property
    def bundle_problem(self) -> str | None:
        """Why an installed bundle is not in use (None: it is, or there is none)."""
        return self.bundles.problem

    def _model_for(self, bundle: Bundle, sessions: dict | None = None) -> DayCloseModel:
        keep = self.model.correction if self.model is not None else self._restored_correction
        return self.bundles.model_for(bundle, keep, sessions)

    def _use_model(self, model: DayCloseModel) -> DailyForecasts | None:
        """Score with ``model`` from now on: re-score the last closed day at once and hand the
        forecasts to the forecast policy (replacing the rules policy on the first bundle). At
        start, the snapshot's scoring of that same close by that same model is taken instead
        (``edge_runtime.decide.scored_close``): the re-score would make it again."""
        key = self._model_key if model is self.model else model_key(model)
        kept = restore(self._restored_scored, model, key, self.sales)
        forecasts = kept[0] if kept is not None else model.rescore(self.sales)
        self.model, self._model_key = model, key
        self.bundles.problem = None
        if kept is not None:
            self.shelf_watch.anomaly = kept[1]
        else:
            self._score_anomalies()
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
        candidate, sessions = self.bundles.candidate(path)
        model = self._model_for(candidate, sessions)  # ONNX sessions built outside the lock
        with self._lock:
            forecasts = self._use_model(model)
            self.intraday = self.bundles.warner_for(candidate, self.ledger.connection)
            states = self.ledger.stocks(0, self.ledger.sku_count())
            occasion = f"bundle:{model.model_version}@{self.ledger.clock_us}"
            messages = with_decision_ids(
                self._review_all(states, forecasts, self._now_text()), occasion
            )
            # The new model's triggers, their open orders and episodes: one transaction.
            with write_transaction(self.ledger.connection) as conn:
                rows = self.outbox.put(messages, conn=conn) if messages else []
                self._save_decided(conn)
            self._count_created(rows)
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
        """Ingest one payload (an event or a batch) durably; its alerts are queued to publish.

        Every event of it ends stored, an idempotent duplicate, or dead-lettered with its reason,
        exactly as the same payload on MQTT; only a store failure raises (nothing committed)."""
        events, rejections = self.ledger.parse(payload)
        result = self._ingest_parsed(events, rejections, source)
        self._wake.set()
        return result

    def _ingest_parsed(
        self, events: list[Event], rejections: list[Rejection], source: str
    ) -> IngestResult:
        """Commit parsed events and dead-letter the rejections in one transaction; should that
        fail for another reason than the store, each event alone
        (``edge_runtime.ingest.each_alone``). A store error raises: nothing committed."""
        return commit_or_each_alone(
            self._ingest_handover, self._dead_letter, events, rejections, source
        )

    def _ingest_locked(
        self, events: list[Event], rejections: list[Rejection], source: str, publish: bool = True
    ):
        rows: list[OutboxRow] = []
        states: list[StockState] = []
        messages: list[Message] = []

        store = self.cfg.gateway.store_id

        def before_commit(conn, result: IngestResult) -> None:
            self._staged = True
            if result.changed_skus:
                states.extend(self._states_in_txn(conn, result.changed_skus))
            messages.extend(self._decide_batch(conn, result))
            if self.intraday is not None and result.events:
                messages.extend(self._warn(result))
            if result.events:
                messages.extend(with_decision_ids(self._counts(result.events, states)))
            if not publish:  # seeded history: decided (state moves on) but nothing to send
                messages.clear()
            self._save_decided(conn, keep=publish)
            if messages:
                rows.extend(self.outbox.put(messages, conn=conn))
            if result.rejections and publish:  # with their dead letters, in this transaction
                refused = dead_letter_messages(
                    result.rejections, store, source, self.policy.version
                )
                rows.extend(self.outbox.put(refused, conn=conn))

        if self._rebuild_pending:  # never decide on memory a rolled-back batch touched
            with store_failures_raised():  # the disk still failing: the batch waits
                self._forget_rolled_back()
        self._sales_moved = self._staged = False
        self._correction_before = None
        try:
            result = self.ledger.ingest_parsed(events, rejections, source, before_commit)
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
        self._count_created(rows)
        self.uplink.observe_messages(messages)
        return result, rows, states

    def seed_history(self, batches: Iterable[Any], source: str = "history") -> int:
        """Load a store's past events (a new store, the demo): stored, added to the sales series
        and learnt from (day closes, River, the detectors) like live ones, but nothing is sent
        for them: their alerts would be stale by the time the gateway runs. Afterwards the
        decisions stand where a restart would find them (levels from the ledger, no open
        stock-out episode, open orders only from the outbox), so the first live event that
        crosses a threshold alerts. Returns how many events were accepted."""
        accepted = 0
        with self._lock:
            for batch in batches:
                events, rejections = self.ledger.parse(batch)
                result, _, states = self._ingest_locked(events, rejections, source, publish=False)
                self.uplink.observe(states)  # the central stock view does need the history
                accepted += result.accepted
            self._reset_decisions()
        return accepted

    def _reset_decisions(self) -> None:
        """The decision policy's memory as a restart builds it from the ledger and outbox."""
        if self._own_policy:
            self.policy = _policy_from(self.cfg)
        if self.model is not None:
            self._use_model(self.model)  # re-scored from the committed series
        self._prime()
        self._restore_open_orders()

    def _episode_changes(self) -> dict[str, float | None]:
        take = getattr(self.policy, "take_episode_changes", None)
        return take() if take is not None else {}

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
        self._restored_scored = None  # re-scored here, as always after a rollback
        self._reset_decisions()
        if self.intraday is not None:
            self.intraday = self.bundles.warner_for(self.bundle, self.ledger.connection)
        self._correction_before = None
        self._rebuild_pending = False
        log.warning("ingest rolled back; in-memory decisions rebuilt from the ledger")

    def _warn(self, result: IngestResult) -> list[Message]:
        """The intraday warning's alerts for the hours this batch completed; like a policy's,
        a failure costs the alerts, never the events."""
        try:
            return self.intraday.observe(result.events, result.steps)
        except Exception:
            log.exception("intraday warning failed; events kept, no intraday alerts")
            self.counters["policy_errors"] += 1
            return []

    def _decide(self, states, causes, conflicts) -> list[Message]:
        """The policy's messages; a policy bug must not cost the events (they are the facts):
        it is logged and counted, and the stock change commits without its alerts."""
        try:
            return self.policy.decide(states, causes, conflicts)
        except Exception:
            log.exception("decision policy %s failed; events kept, no alerts", self.policy.version)
            self.counters["policy_errors"] += 1
            return []

    def _decide_batch(self, conn, result: IngestResult) -> list[Message]:
        """Decisions on every state change of the batch, as if its events had arrived one per
        message (``edge_runtime.decide.state_changes``): day by day, each day's close where the event
        that opens the next day comes, within a day each SKU's changes in their order. Every
        decision carries its stable ``decision_id``."""
        out = with_decision_ids(self._decide([], {}, result.conflicts)) if result.conflicts else []
        if not result.events:
            return out
        sales = self.sales
        moves = sales.last_closed is None or sales.crosses(result.events)  # else after COMMIT
        open_day = None if sales.open_day is None else int(sales.open_day.astype(np.int64))
        current: dict[str, SkuState | None] = dict(result.before)  # each SKU's state so far
        as_of = self.ledger.clock_us
        for segment, steps in day_batches(result.events, result.steps, sales.day_of, open_day):
            closed = moves and self._stage_day_close(segment, conn, current)
            head = steps[:1] if steps and steps[0][0] is segment[0] else []
            as_of = max(as_of, segment[0].ts_us)
            out += self._decide_steps(head, current, as_of)  # the event that closed the day
            out += with_decision_ids(self._watch(segment[:1]))  # sales seen before the phantoms
            if closed:
                out += self._day_close(conn, segment[0], bool(head), current, as_of)
            rest = steps[len(head) :]
            as_of = max(as_of, *(e.ts_us for e, _ in rest)) if rest else as_of
            out += self._decide_steps(rest, current, as_of)
            out += with_decision_ids(self._watch(segment[1:]))
        return out

    def _decide_steps(self, steps, current: dict, as_of: int) -> list[Message]:
        """The policy on ``(event, state)`` steps, round by round (each SKU's changes in their
        order; receipts close their SKU's open order before that change is decided)."""
        out: list[Message] = []
        buffer = self.ledger.safety_buffer
        receive = getattr(self.policy, "receive", None)
        for batch in rounds(steps):
            if receive is not None:
                receive([e for e, _ in batch])
            states = [StockState.of(s, buffer, max(as_of, s.last_us)) for _, s in batch]
            out += with_decision_ids(self._decide(states, {e.sku: e for e, _ in batch}, []))
            for e, s in batch:
                current[e.sku] = s
        return out

    def _stage_day_close(self, segment, conn, current: dict) -> bool:
        """Add a day segment's events to the sales series inside the transaction; when its
        first event opens a later store day, close the day(s) and re-score every SKU; True
        when a day closed and the forecasts moved.

        Why in place, not on a copy: copying every SKU's series cost ~13 ms per close at 3,000
        SKUs, inside the transaction, on every store's every midnight. A rollback is rare (the
        disk failed), so that path pays instead: ``_ingest_locked`` rebuilds the series from
        the ledger, which holds exactly what committed."""
        sales = self.sales
        self._sales_moved = True
        empty = _empty_shelves(conn, current) if sales.crosses(segment[:1]) else ()
        closed = sales.observe(segment[:1], empty=empty)
        sales.observe(segment[1:], within_open_day=True)  # late events join the open day
        if not closed or self.model is None:
            return False
        # Once per transaction: River's state as it was, should it roll back (a pickle is
        # ~2.5x faster than a deep copy: ~13 ms at 3,000 SKUs, within the close's pause).
        if self._correction_before is None:
            self._correction_before = pickle.dumps(self.model.correction, pickle.HIGHEST_PROTOCOL)
        try:
            self.model.learn(closed)
            forecasts = self.model.rescore(sales)
        except Exception:
            log.exception("day-close re-score failed; decisions keep the previous forecasts")
            self.counters["policy_errors"] += 1
            return False
        self.policy.use(forecasts, self.model.model_version)
        self._score_anomalies()
        self.counters["day_closes"] += 1
        return True

    def _score_anomalies(self) -> None:
        """The bundle's anomaly model on every SKU's last closed day, one batched call
        (``edge_runtime.watch.anomaly_scores``): what the theft and phantom detectors weigh until
        the next close. A failure leaves them deciding on their own evidence."""
        anomaly = None
        if self.model is not None:
            try:
                anomaly = score_close(self.model.scorer, self.sales)
            except Exception:
                log.exception("anomaly model failed; the detectors decide without it")
        self.shelf_watch.anomaly = anomaly

    def _day_close(
        self, conn, head, head_decided: bool, current: dict, as_of: int
    ) -> list[Message]:
        """Decisions on every SKU at a day's close, with each SKU's state at that moment of the
        batch (``current``: the states the batch has reached so far; the others as stored),
        but the one whose event closed the day (just decided); and the phantom-inventory check
        on the new forecasts. Their decision ids' epoch is the day that closed."""
        buffer = self.ledger.safety_buffer
        stored = self.ledger.folded_states()  # the SKUs not in ``current`` are as committed
        states = []
        # The stock table gives the SKUs in the order decisions have always been made in;
        # their states come from memory (no row is read back and rebuilt).
        for (sku,) in conn.execute("SELECT sku FROM stock ORDER BY rowid"):
            s = current[sku] if sku in current else stored[sku]
            if s is not None:
                states.append(StockState.of(s, buffer, max(as_of, s.last_us)))
        others = [s for s in states if not (head_decided and s.sku == head.sku)]
        out = self._review_all(others, self.forecasts, head.event_time)
        out += self._phantoms(head.ts_us / 1e6, states)
        return with_decision_ids(out, f"close:{self.sales.last_closed}")

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
                now, skus, np.array([on_hand[s] for s in skus]), mean, p90,
                self.shelf_watch.anomaly,
            )  # fmt: skip
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

    def _count_created(self, rows: list[OutboxRow]) -> None:
        self.counters["messages"] += len(rows)
        self.created_by_kind.update(r.kind for r in rows)

    def _handover(self, rows: list[OutboxRow], states: list[StockState]) -> None:
        self._fresh.extend(rows)
        self.uplink.observe(states)
        if self.hub_link is not None:
            self.hub_link.wake()

    def _on_mqtt(self, payload: bytes, source: str, mid: int, qos: int) -> None:
        self.intake.put(payload, source, mid, qos)
        self._wake.set()

    def _ack(self, mid: int, qos: int) -> None:
        if self.transport is not None:
            self.transport.ack(mid, qos)

    def _ingest_handover(
        self, events: list[Event], rejections: list[Rejection], source: str
    ) -> IngestResult:
        with self._lock:
            result, rows, states = self._ingest_locked(events, rejections, source)
            self._handover(rows, states)
        return result

    def _dead_letter(self, event: Event, source: str, err: Exception) -> IngestResult:
        """Dead-letter an event that crashed a stage after the parser, reason included."""
        refused = unprocessable(event, err)
        with self._lock:
            self.ledger.dead_letter([refused], source)
            store, version = self.cfg.gateway.store_id, self.policy.version
            rows = self.outbox.put(dead_letter_messages([refused], store, source, version))
            self._count_created(rows)
            self._handover(rows, [])
        self.counters["rejected"] += 1
        return IngestResult(rejected=1, rejections=[refused])

    # ---- outgoing ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand new rows (or the backlog) to the transport, then mark acknowledged rows sent."""
        with self._lock:
            fresh, self._fresh = self._fresh, []
        self.pump.pump(self.transport, fresh)

    def _maybe_flush_uplink(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_uplink >= self.cfg.uplink.interval_s:
            self._last_uplink = now
            with self._lock:
                rows = self.uplink.flush()
                self._fresh.extend(rows)
            if rows and self.hub_link is not None:
                self.hub_link.wake()  # the window is committed: to JetStream now, not at a poll

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
            self.intake.run_once()
            try:
                self._pump()
                self._maybe_flush_uplink()
                self._maybe_snapshot()
                self._maybe_retain()
            except StoreError as err:
                self.intake.store_failed(err, "outgoing messages wait in memory and in the outbox")
            except Exception:
                log.exception("publishing failed; rows stay in the outbox")
                self.pump.backlog = True
                time.sleep(0.1)
            self._report_health()

    def problems(self) -> dict[str, str]:
        """The required parts that are down, each with why: ``ledger`` (writes refused),
        ``mqtt`` (broker unreachable, when MQTT is enabled) and ``bundle`` (an installed
        bundle refused). Readiness, the metrics and the retained state message say this."""
        out = {}
        health = self.ledger.health
        problem = health.problem or self.intake.store_problem
        if problem is not None:
            since = f" since {iso_utc(int(health.since * 1e6))}" if health.since else ""
            out["ledger"] = (
                f"not writable{since}: {problem}; intake paused ({len(self.intake.held)} MQTT "
                "payload(s) held, unacknowledged, retried with backoff)"
            )
        if self.transport is not None and not self.transport.connected:
            out["mqtt"] = self.transport.problem
        if self.bundle_problem is not None:
            out["bundle"] = self.bundle_problem
        return out

    def _report_health(self) -> None:
        """Log a recovery, and keep the retained state message's problems current."""
        if self.intake.recovered(self.ledger.health.problem):
            log.warning("the ledger takes writes again: intake resumed")
        problems = self.problems()
        if self.transport is not None:
            self.transport.set_problems(sorted(f"{k}: {v}" for k, v in problems.items()
                                               if k != "mqtt"))  # fmt: skip

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the outbox is empty (all acknowledged) or ``timeout``; True if empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox_depth() == 0 and self.intake.empty():
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
        self._maybe_snapshot(force=True)
        if self.hub_link is not None:
            self.hub_link.close()
        self.ledger.close()
        self.outbox.close()

    def _send_before_close(self, t: MqttTransport) -> None:
        self._maybe_flush_uplink(force=True)
        self.pump.drain(t, self._pump)

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
    add_log_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run the gateway against the configured broker until SIGINT/SIGTERM."""
    try:
        configure_logging(args.log_level, args.log_format)
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
        for line in str(err).splitlines():  # a bad configuration: one line per problem
            print(f"shelfcast run: {line}", file=sys.stderr, flush=True)
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
