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
>>> tmp = tempfile.TemporaryDirectory()  # removed at the end of the example
>>> gw = Gateway(load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": tmp.name,
...                               "SHELFCAST_MQTT_ENABLED": "false"}))
>>> ev = {"event_id": "e1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 1,
...       "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
>>> gw.ingest(ev, "api").accepted, [m["kind"] for m in gw.recent_messages()]
(1, ['replenishment'])
>>> gw.close(); tmp.cleanup()
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edge_runtime.config import GatewayConfig
from edge_runtime.decide.bundle_lifecycle import BundleLifecycle
from edge_runtime.decide.decisions import DecisionPolicy
from edge_runtime.decide.engine import DecisionEngine
from edge_runtime.decide.engine_view import EngineView
from edge_runtime.forecast.daily_sales import DailySales
from edge_runtime.forecast.snapshot_schedule import SnapshotSchedule
from edge_runtime.forecast.upkeep import Upkeep
from edge_runtime.ingest.dead_letter_topic import dead_letter_messages
from edge_runtime.ingest.each_alone import commit_or_each_alone, unprocessable
from edge_runtime.ingest.mqtt_intake import MqttIntake
from edge_runtime.messages import Message
from edge_runtime.start_phases import StartPhases
from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.events import Event, Rejection
from edge_runtime.store.ledger import IngestResult, Ledger
from edge_runtime.store.outbox import Outbox, OutboxRow
from edge_runtime.store.retention import Retention, RetentionReport
from edge_runtime.store.stock import StockState
from edge_runtime.store.store_failure import StoreError, write_transaction
from edge_runtime.transport.health import down_parts, state_problems
from edge_runtime.transport.mqtt import MqttTransport
from edge_runtime.transport.outbox_pump import OutboxPump
from edge_runtime.transport.uplink import Uplink, UplinkWindow
from edge_runtime.watch.anomaly_scores import score_close
from edge_runtime.watch.count_watch import CountWatch
from edge_runtime.watch.phantom import PhantomDetector
from edge_runtime.watch.shelf_watch import ShelfWatch
from edge_runtime.watch.shrink import CycleCountShrink
from models.bundle import Bundle

log = logging.getLogger(__name__)

TICK_S = 0.02  # the worker's round while rows are in flight (PUBACKs wake nobody) or unhanded
IDLE_S = 1.0  # and when nothing waits: health, the broker's drop count (upkeep has its own)
COUNTERS = ("ingested", "duplicates", "rejected", "messages", "sent", "policy_errors", "day_closes")


class Gateway(EngineView):
    """The runtime of one store (see the module docstring); ``start()`` runs MQTT and the worker."""

    def __init__(
        self,
        cfg: GatewayConfig,
        policy: DecisionPolicy | None = None,
        shelf_watch: ShelfWatch | None = None,
    ):
        self.cfg = cfg
        self._phases = StartPhases()
        m = cfg.model
        # Theft / mis-scan detection over sales and sensor readings (which never touch stock).
        shelf_watch = shelf_watch or ShelfWatch(phantom=PhantomDetector(m.phantom_alpha))
        watches = shelf_watch, CountWatch(CycleCountShrink(z_threshold=m.shrink_z))
        self.bundles = BundleLifecycle.from_config(cfg)  # a bad key file stops the start
        # The ledger first: its writer lock keeps a second gateway from touching this state
        # directory at all (installing its bundle there included). A failed start releases it.
        store = cfg.gateway.store_id
        self.ledger = Ledger(cfg.ledger_path, store, safety_buffer=cfg.gateway.safety_buffer,
                             bounds=cfg.ingest.bounds())  # fmt: skip
        self.ledger.record_steps = True  # decisions follow each state change of a batch
        self._phases.mark("ledger")
        try:
            self._start_up(policy, *watches)
        except BaseException:
            if hasattr(self, "outbox"):
                self.outbox.close()
            self.ledger.close()
            raise

    def _start_up(
        self, policy: DecisionPolicy | None, shelf_watch: ShelfWatch, count_watch: CountWatch
    ) -> None:
        """Everything after the ledger: bundle, outbox, decisions, series, transport."""
        cfg, store = self.cfg, self.cfg.gateway.store_id
        sessions: dict = {}  # the ONNX sessions the bundle was verified with
        bundle = self.bundles.at_start(sessions)
        self._phases.mark("bundle")
        self.outbox = Outbox(cfg.ledger_path, prefix=cfg.mqtt.topic_prefix)
        archive = EventArchive(Path(cfg.gateway.state_dir) / "archive")
        self.retention = Retention(cfg.retention, self.ledger, self.outbox, archive,
                                   cfg.mqtt.enabled, self._forwarded_upto)  # fmt: skip
        self.hub_link = None
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.created_by_kind: Counter[str] = Counter()  # outbox messages created, by kind
        self.sent_by_kind: Counter[str] = Counter()  # outbox messages the broker acknowledged
        # Daily net sales per SKU, from here on kept from ingested events (the model's input):
        # from the last snapshot plus the log after it, else from the whole log.
        self.snapshots = SnapshotSchedule(self.derived_path)
        self.engine = DecisionEngine(cfg, self.ledger, policy, shelf_watch, count_watch,
                                     self.bundles, self.counters,
                                     lambda: self.snapshots.load_sales(self.ledger),
                                     score_close)  # fmt: skip
        self._phases.mark("sales")
        self.engine.start(bundle, sessions)
        self._phases.mark("model")
        sessions.clear()
        self.uplink = Uplink(self.outbox, store, self.policy.version)
        self.engine.primers.append(self.uplink.prime)
        self.engine.on_version = lambda version: setattr(self.uplink, "model_version", version)
        self.engine.prime()
        self.engine.restore_open_orders()
        self._phases.mark("prime")
        self._lock = threading.Lock()  # ingest + hand-over of its rows, in commit order
        self.upkeep = Upkeep(self.ledger, self.retention, self.snapshots, self._lock,
                             self._derived_state, lambda: self.counters["ingested"] > 0)  # fmt: skip
        self._wake, self._stop = threading.Event(), threading.Event()  # a payload came; closing
        self.first_commit = threading.Event()  # set once this start's first events are acked
        self._worker: threading.Thread | None = None
        self.intake = MqttIntake(self.ledger.parse, self._ingest_parsed, self._ack, self._wake,
                                 cfg.ingest.commit_wait_s, self._stop.wait,
                                 lambda: self.uplink.due_in(self._interval_s))  # fmt: skip
        self.pump = OutboxPump(self.outbox, self.counters, self.sent_by_kind,
                               self.intake.backoff, lambda: not self.intake.held,
                               self._lock)  # fmt: skip
        self.transport: MqttTransport | None = None
        if cfg.mqtt.enabled:
            self.transport = MqttTransport(cfg, self._on_mqtt, model_version=self.policy.version)
        self._phases.mark("ready")
        self._phases.log(log)

    @property
    def derived_path(self) -> Path:
        return Path(self.cfg.gateway.state_dir) / "derived.pickle"

    def _derived_state(self) -> tuple[DailySales, Any] | None:
        """What a snapshot saves; None while a rolled-back batch's memory waits to be rebuilt."""
        return None if self.engine.rebuild_pending else (self.sales, self.engine.derived)

    def _forwarded_upto(self) -> int | None:
        """How far the hub link has forwarded the outbox (None: no hub; 0: not running yet)."""
        if not self.cfg.hub.url:
            return None
        link = self.hub_link
        return link.forwarded_upto(self.outbox.connection) if link is not None else 0

    def run_retention(self) -> RetentionReport:
        """Apply the ``[retention]`` bounds now (the worker does every ``every_s``): the
        snapshots move first, since the events after them stay in the log."""
        return self.upkeep.run_retention()

    # ---- the model bundle --------------------------------------------------------------

    @property
    def bundle_problem(self) -> str | None:
        """Why an installed bundle is not in use (None: it is, or there is none)."""
        return self.bundles.problem

    def swap_bundle(self, path: str | Path) -> Bundle:
        """Verify the bundle at ``path`` (``BundleError`` says why it is refused; the current
        one stays), install it as current, and switch to it between two ingest transactions:
        re-scored at once, its decisions on every SKU published, its version on every message
        from here on. Events are never paused for long and none is lost or applied twice (the
        sales series do not depend on the model)."""
        candidate, sessions = self.bundles.candidate(path)
        model = self.engine.model_for(candidate, sessions)  # ONNX sessions built outside the lock
        with self._lock:
            messages = self.engine.adopt(model)
            # The new model's triggers, their open orders and episodes: one transaction.
            with write_transaction(self.ledger.connection) as conn:
                rows = self.outbox.put(messages, conn=conn) if messages else []
                self.engine.save_decided(conn)
            self._count_created(rows)
            self._handover(rows)  # the hub's copy of its decisions too, without a poll's delay
        self._wake.set()
        if self.transport is not None:
            self.transport.set_model_version(self.policy.version)
        log.info("bundle %s in use (%s)", candidate.model_version, candidate.path)
        return candidate

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
        window: UplinkWindow | None = None  # the uplink window this commit carries, if due

        store, engine = self.cfg.gateway.store_id, self.engine

        def before_commit(conn, result: IngestResult) -> None:
            nonlocal window
            messages.extend(engine.stage(conn, result, states))
            if not publish:  # seeded history: decided (state moves on) but nothing to send
                messages.clear()
            engine.save_decided(conn, keep=publish)
            if messages:
                rows.extend(self.outbox.put(messages, conn=conn))
            if result.rejections and publish:  # with their dead letters, in this transaction
                refused = dead_letter_messages(
                    result.rejections, store, source, self.policy.version
                )
                rows.extend(self.outbox.put(refused, conn=conn))
            if publish and self.uplink.due_in(self._interval_s) == 0:
                # The window is due: it leaves with the commit that made its figures (one, not two)
                window = self.uplink.write(conn, states, messages)

        engine.begin()
        try:
            result = self.ledger.ingest_parsed(events, rejections, source, before_commit)
        except BaseException:
            engine.rolled_back()
            raise
        engine.committed(result)
        c = self.counters
        c["ingested"] += result.accepted
        c["duplicates"] += result.duplicates
        c["rejected"] += result.rejected
        self._count_created(rows)  # as ever, not the uplink's windows
        if window is not None:
            rows.extend(self.uplink.committed(window))
        else:
            self.uplink.observe_messages(messages)
            self.uplink.observe(states)
        return result, rows

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
                # observed by the uplink: the central stock view does need the history
                result, _ = self._ingest_locked(events, rejections, source, publish=False)
                accepted += result.accepted
            self.engine.reset()
        return accepted

    def _count_created(self, rows: list[OutboxRow]) -> None:
        self.counters["messages"] += len(rows)
        self.created_by_kind.update(r.kind for r in rows)

    def _handover(self, rows: list[OutboxRow]) -> None:
        self.pump.fresh.extend(rows)
        if self.hub_link is not None:
            self.hub_link.wake(rows)

    def _on_mqtt(self, payload: bytes, source: str, mid: int, qos: int) -> None:
        self.intake.put(payload, source, mid, qos)  # and wakes the worker

    def _ack(self, received: list[tuple[int, int]]) -> None:
        if self.transport is not None:
            self.transport.ack(received)

    def _ingest_handover(
        self, events: list[Event], rejections: list[Rejection], source: str
    ) -> IngestResult:
        with self._lock:
            result, rows = self._ingest_locked(events, rejections, source)
            self._handover(rows)
        return result

    def _dead_letter(self, event: Event, source: str, err: Exception) -> IngestResult:
        """Dead-letter an event that crashed a stage after the parser, reason included."""
        refused = unprocessable(event, err)
        with self._lock:
            self.ledger.dead_letter([refused], source)
            store, version = self.cfg.gateway.store_id, self.policy.version
            rows = self.outbox.put(dead_letter_messages([refused], store, source, version))
            self._count_created(rows)
            self._handover(rows)
        self.counters["rejected"] += 1
        return IngestResult(rejected=1, rejections=[refused])

    # ---- outgoing ----------------------------------------------------------------------

    _interval_s = property(lambda self: self.cfg.uplink.interval_s)

    def _maybe_flush_uplink(self, force: bool = False) -> None:
        rows = self.pump.flush_uplink(self.uplink, self._interval_s, force)
        if rows and self.hub_link is not None:  # the window is committed: to JetStream now
            self.hub_link.wake(rows)

    # ---- running -----------------------------------------------------------------------

    def start(self) -> Gateway:
        """Connect to the broker (in the background) and start the worker thread."""
        if self.transport is not None:
            self.transport.start()
        if self.cfg.hub.url:  # the JetStream uplink; its imports only where a hub is set
            from edge_runtime.transport.jetstream_uplink import link_gateway

            self.hub_link = link_gateway(self)
        self._worker = threading.Thread(target=self._run, name="gateway-worker", daemon=True)
        self._worker.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            waits = (self.uplink.wait_s(self._interval_s, IDLE_S), self.upkeep.wait_s(),
                     self.pump.wait_s(self.transport, TICK_S, IDLE_S))  # fmt: skip
            self._wake.wait(TICK_S if self.intake.store_problem else min(waits))
            self._wake.clear()
            self.intake.run_once()
            if self._phases is not None and self.counters["ingested"]:
                self._phases.end("first commit", log)  # events committed and acknowledged
                self._phases = None
                self._open_sessions()
                self.first_commit.set()
            try:
                self.pump.pump(self.transport)
                if self.intake.empty():  # else the commit of what waits carries the window
                    self._maybe_flush_uplink()
                self.upkeep.tick()
            except StoreError as err:
                self.intake.store_failed(err, "outgoing messages wait in memory and in the outbox")
            except Exception:
                log.exception("publishing failed; rows stay in the outbox")
                self.pump.backlog = True
                time.sleep(0.1)
            self._report_health()

    def _open_sessions(self) -> threading.Thread | None:
        """Open the model's ONNX sessions in the background once consuming has begun: a start
        whose models were checked before (``edge_runtime.checked_models``) opened none."""
        return None if self.model is None else self.model.scorer.open_all_in_background()

    def problems(self) -> dict[str, str]:
        """The required parts that are down, each with why: ``ledger`` (writes refused),
        ``mqtt`` (broker unreachable, when MQTT is enabled) and ``bundle`` (an installed
        bundle refused). Readiness, the metrics and the retained state message say this."""
        return down_parts(self.ledger.health, self.intake, self.transport, self.bundle_problem)

    def _report_health(self) -> None:
        """Log a recovery, and keep the retained state message's problems current."""
        if self.intake.recovered(self.ledger.health.problem):
            log.warning("the ledger takes writes again: intake resumed")
        if self.transport is not None:
            self.transport.set_problems(state_problems(self.problems()))

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
        forecasts from. None for a SKU the sales series has never seen. Copied under the
        ingest lock: the worker appends to these series while the API reads."""
        with self._lock:
            return self.sales.recent(sku, days)

    def close(self) -> None:
        """Stop the worker, flush what can be sent, publish ``offline``, close the files."""
        self._stop.set()
        self._wake.set()  # an idle worker sleeps up to IDLE_S
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
        self.upkeep.snapshot(force=True)
        if self.hub_link is not None:
            self.hub_link.close()
        self.ledger.close()
        self.outbox.close()

    def _send_before_close(self, t: MqttTransport) -> None:
        self._maybe_flush_uplink(force=True)
        self.pump.drain(t)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
