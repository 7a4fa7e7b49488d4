"""The decision engine: what the gateway decides inside each ledger transaction.

For every batch the ledger commits, the engine stages the day close (the sales series, River,
the re-score), runs the policy on every state change in order (``decide.state_changes``), the
intraday warning, the detectors the gateway hands it (the shelf watch, the count watch, whose
room it does not import) and the phantom check at a day's close, and stores the stock-out
episodes and open orders its decisions changed: all on the transaction's connection, so a
message exists if and only if the stock change that caused it does. A rollback puts its memory
back to what committed, as a restart would find it. It keeps the policy, the day-close model,
the sales series and the intraday warner; the gateway keeps the lock, the transaction, threads.

>>> import tempfile
>>> from edge_runtime.config import load_config
>>> from edge_runtime.gateway import Gateway
>>> with tempfile.TemporaryDirectory() as state:  # removed after the example
...     env = {"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": state}
...     with Gateway(load_config(env={**env, "SHELFCAST_MQTT_ENABLED": "false"})) as gw:
...         type(gw.engine).__name__, gw.engine.policy.version, gw.engine.forecasts is None
('DecisionEngine', 'rules-1', True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edge_runtime.config import GatewayConfig
from edge_runtime.decide.bundle_lifecycle import BundleLifecycle
from edge_runtime.decide.configured_policy import decision_settings, rules_policy
from edge_runtime.decide.day_close import DayCloseModel
from edge_runtime.decide.decisions import DecisionPolicy
from edge_runtime.decide.forecast_policy import DailyForecasts, ForecastDecisionPolicy
from edge_runtime.decide.intraday_warning import IntradayWarner
from edge_runtime.decide.scored_close import model_key, restore, take
from edge_runtime.decide.state_changes import day_batches, rounds
from edge_runtime.forecast.daily_sales import DailySales
from edge_runtime.messages import Message
from edge_runtime.store.alert_episode_table import AlertEpisodeTable
from edge_runtime.store.ledger import IngestResult, Ledger
from edge_runtime.store.open_orders import OpenOrderTable
from edge_runtime.store.open_transaction import empty_shelves, skus_in_order, states_in_transaction
from edge_runtime.store.state_columns import StateColumns
from edge_runtime.store.stock import SkuState, StockState
from edge_runtime.store.store_failure import store_failures_raised
from models.bundle import Bundle

log = logging.getLogger(__name__)

# The sales series at start or after a rollback, with the derived-state snapshot it came from
# (None: rebuilt from the whole log); the snapshot holds River and the last close's scoring.
LoadSales = Callable[[], tuple[DailySales, Any]]
ScoreClose = Callable[[Any, DailySales], Any]  # the anomaly model on the last closed day


class DecisionEngine:
    """Decisions inside the ledger transaction (see the module docstring). ``policy``: an
    injected policy (None: the ``[policy]`` rules, replaced by the forecast policy once a
    bundle scores); ``shelf_watch``/``count_watch``: the detectors; ``counters``: the
    gateway's (``policy_errors``, ``day_closes``)."""

    def __init__(
        self,
        cfg: GatewayConfig,
        ledger: Ledger,
        policy: DecisionPolicy | None,
        shelf_watch: Any,
        count_watch: Any,
        bundles: BundleLifecycle,
        counters: dict[str, int],
        load_sales: LoadSales,
        score_close: ScoreClose,
    ):
        self.cfg, self.ledger, self.bundles, self.counters = cfg, ledger, bundles, counters
        self.shelf_watch, self.count_watch = shelf_watch, count_watch
        self._load_sales, self._score_close = load_sales, score_close
        self.episodes = AlertEpisodeTable(ledger.connection)
        self.orders = OpenOrderTable(ledger.connection)
        self.policy: DecisionPolicy = policy or rules_policy(cfg)
        self._own_policy = policy is None  # rebuilt after a rollback (an injected one re-primed)
        self.primers: list[Callable[[list[StockState]], None]] = []  # primed with the policy
        self.on_version: Callable[[str], None] = lambda version: None  # the policy's changed
        self.restored_correction = None  # River from the snapshot, for the first model
        self._restored_scored = None  # the snapshot's last close scoring: used once, at start
        self.sales = self._sales_from_log()
        self.model: DayCloseModel | None = None
        self._model_key = ""  # scored_close.model_key of self.model
        self.intraday: IntradayWarner | None = None  # the bundle's intraday stock-out warning
        self._sales_moved = False  # a day closed inside the open transaction
        self._staged = False  # the open transaction's decisions touched in-memory state
        self.rebuild_pending = False  # a rollback's rebuild failed too: retried before ingest
        self._undo_open = False  # River records what the open transaction's closes teach it

    def _sales_from_log(self) -> DailySales:
        sales, snap = self._load_sales()
        if snap is not None:
            self.restored_correction, self._restored_scored = snap.correction, snap.scored
        return sales

    def start(self, bundle: Bundle | None, sessions: dict) -> None:
        """Decide with ``bundle`` (its ONNX ``sessions`` reused) when there is one."""
        if bundle is not None:
            self.use_model(self.model_for(bundle, sessions))
            self.intraday = self.bundles.warner_for(bundle, self.ledger.connection)
        self._restored_scored = None  # only this start's model may take it

    def derived(self) -> tuple[Any, Any]:
        """River's correction and the last close's scoring (``decide.scored_close``): what the
        derived-state snapshot keeps of the model (None, None without one)."""
        if self.model is None:
            return None, None
        anomaly = self.shelf_watch.anomaly
        return self.model.correction, take(self.model, self._model_key, self.forecasts, anomaly)

    @property
    def forecasts(self) -> DailyForecasts | None:
        """The last day-close re-score with every horizon (``DayCloseModel.whole``): the
        table decisions use, scored beyond the horizons they read when first asked for."""
        table = self.policy.forecasts
        return table if self.model is None else self.model.whole(table)

    def _hand_over(self, forecasts: DailyForecasts | None, version: str) -> None:
        """Decide with a re-score's table: as scored for the configured policy (the horizons
        it reads), with every horizon for an injected one (it may read any)."""
        if not self._own_policy and self.model is not None:
            forecasts = self.model.whole(forecasts)
        self.policy.use(forecasts, version)

    def model_for(self, bundle: Bundle, sessions: dict | None = None) -> DayCloseModel:
        """``bundle``'s day-close model, keeping what River learnt."""
        keep = self.model.correction if self.model is not None else self.restored_correction
        return self.bundles.model_for(bundle, keep, sessions)

    def begin(self) -> None:
        """Before a batch: never decide on memory a rolled-back batch touched."""
        if self.rebuild_pending:
            with store_failures_raised():  # the disk still failing: the batch waits
                self._forget_rolled_back()
        self._sales_moved = self._staged = self._undo_open = False

    def stage(self, conn, result: IngestResult, states: list[StockState]) -> list[Message]:
        """Inside the transaction: the batch's decisions (``states`` receives the new states
        of the SKUs it changed)."""
        self._staged = True
        if result.written:
            led = self.ledger
            states.extend(states_in_transaction(result.written, led.clock_us, led.safety_buffer))
        messages = self._decide_batch(conn, result)
        if self.intraday is not None and result.events:
            messages.extend(self._warn(result))
        if result.events:
            messages.extend(self._counts(result.steps))
        return messages

    def rolled_back(self) -> None:
        """The transaction failed: a staged batch never counts, back to what committed."""
        if self._staged:
            self.rebuild_pending = True
            try:
                self._forget_rolled_back()
            except Exception:  # the disk may still be failing: retried on the next ingest
                log.exception("rebuild after a rolled-back ingest failed; retried next time")

    def committed(self, result: IngestResult) -> None:
        self.count_watch.committed()
        if not self._sales_moved and result.events:  # all within the open day: after COMMIT
            self.sales.observe(result.events, within_open_day=True)

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
        if self._undo_open and self.model is not None:
            self.model.correction.undo()
        self.count_watch.rollback()
        self.shelf_watch = self.shelf_watch.fresh()
        self.sales = self._sales_from_log()
        self._restored_scored = None  # re-scored here, as always after a rollback
        self.reset()
        if self.intraday is not None:
            self.intraday = self.bundles.warner_for(self.model.bundle, self.ledger.connection)
        self._undo_open = False
        self.rebuild_pending = False
        log.warning("ingest rolled back; in-memory decisions rebuilt from the ledger")

    def prime(self) -> None:
        """Policy levels and uplink baseline from the ledger as it is (after a restart), and
        the stock-out episodes open when the gateway stopped (so none is opened again)."""
        offset = 0
        while page := self.ledger.stocks(offset, 5000):
            self.policy.prime(page)
            for prime in self.primers:
                prime(page)
            self.count_watch.prime(page)
            offset += len(page)
        self.policy.restore_alerts(self.episodes.load())

    def restore_open_orders(self) -> None:
        """After a restart or a rollback: the open orders as committed (their own table)."""
        self.policy.restore_orders(self.orders.load())

    def save_decided(self, conn, keep: bool = True) -> None:
        """Store the stock-out episodes and open orders the decisions just changed, on
        ``conn`` (inside the transaction that holds their messages); ``keep=False`` drops
        them, as it drops the messages of seeded history."""
        changes = self.policy.take_episode_changes()
        orders = self.policy.take_order_changes()
        if keep and changes:
            self.episodes.save(conn, changes)
        if keep and orders:
            self.orders.save(conn, orders)

    def reset(self) -> None:
        """The decision policy's memory as a restart builds it from the ledger and outbox."""
        if self._own_policy:
            self.policy = rules_policy(self.cfg)
        if self.model is not None:
            self.use_model(self.model)  # re-scored from the committed series
        self.prime()
        self.restore_open_orders()

    def use_model(self, model: DayCloseModel) -> DailyForecasts | None:
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
        if self.policy.uses_forecasts:
            self._hand_over(forecasts, model.model_version)
        else:
            store = self.cfg.gateway.store_id
            settings = decision_settings(self.cfg)
            self.policy = ForecastDecisionPolicy(
                store, forecasts, model.model_version, settings=settings
            )
        self.on_version(self.policy.version)
        return forecasts

    def adopt(self, model: DayCloseModel) -> list[Message]:
        """Decide with ``model`` (a swapped bundle's) from now on: its intraday warner too, and
        its decisions on every SKU now, with the swap's decision ids."""
        forecasts = self.use_model(model)
        self.intraday = self.bundles.warner_for(model.bundle, self.ledger.connection)
        led = self.ledger
        states = led.stocks(0, led.sku_count())
        at = self.sales.now_text(led.clock_us)
        occasion = f"bundle:{model.model_version}@{led.clock_us}"
        return self.review_all(states, forecasts, at, occasion)

    def review_all(
        self, states: Sequence[StockState], forecasts, at: str | None, occasion: str | None = None
    ) -> list[Message]:
        """The policy's decisions on every SKU at ``at`` (a close, a new model), ids of ``occasion``."""
        if forecasts is None or not states:
            return []
        try:
            return self.policy.review(states, {}, at, occasion)
        except Exception:
            log.exception("decision policy %s failed at review", self.policy.version)
            self.counters["policy_errors"] += 1
            return []

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
        that opens the next day comes, within a day each SKU's changes in their order."""
        out = self._decide([], {}, result.conflicts) if result.conflicts else []
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
            out += self._watch(segment[:1])  # sales seen before the phantoms
            if closed:
                out += self._day_close(conn, segment[0], bool(head), current, as_of)
            rest = steps[len(head) :]
            as_of = max(as_of, max(e.ts_us for e, _ in rest)) if rest else as_of
            out += self._decide_steps(rest, current, as_of)
            out += self._watch(segment[1:])
        return out

    def _decide_steps(self, steps, current: dict, as_of: int) -> list[Message]:
        """The policy on ``(event, state)`` steps, round by round (each SKU's changes in their
        order; receipts close their SKU's open order before that change is decided)."""
        out: list[Message] = []
        buffer = self.ledger.safety_buffer
        for batch in rounds(steps):
            self.policy.receive([e for e, _ in batch])
            current.update((e.sku, s) for e, s in batch)
            batch = self.policy.deciding(batch, buffer)  # without changes that decide nothing
            changed = [s for _, s in batch]  # columns: a full state only where a message is
            states = StateColumns.of_sku_states(
                changed, buffer, [max(as_of, s.last_us) for s in changed]
            )
            out += self._decide(states, {e.sku: e for e, _ in batch}, [])
        return out

    def _stage_day_close(self, segment, conn, current: dict) -> bool:
        """Add a day segment's events to the sales series inside the transaction; when its
        first event opens a later store day, close the day(s) and re-score every SKU; True
        when a day closed and the forecasts moved.

        Why in place, not on a copy: copying every SKU's series cost ~13 ms per close at 3,000
        SKUs, inside the transaction, on every store's every midnight. A rollback is rare (the
        disk failed), so that path pays instead: ``rolled_back`` rebuilds the series from
        the ledger, which holds exactly what committed."""
        sales = self.sales
        self._sales_moved = True
        crosses = sales.crosses(segment[:1])
        empty = empty_shelves(self.ledger.folded_states(), current) if crosses else ()
        closed = sales.observe(segment[:1], empty=empty)
        sales.observe(segment[1:], within_open_day=True)  # late events join the open day
        if not closed or self.model is None:
            return False
        # Once per transaction: River records what it learns, should the transaction roll back.
        if not self._undo_open:
            self.model.correction.undo_point()
            self._undo_open = True
        try:
            self.model.learn(closed)
            forecasts = self.model.rescore(sales)
        except Exception:
            log.exception("day-close re-score failed; decisions keep the previous forecasts")
            self.counters["policy_errors"] += 1
            return False
        self._hand_over(forecasts, self.model.model_version)
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
                anomaly = self._score_close(self.model.scorer, self.sales)
            except Exception:
                log.exception("anomaly model failed; the detectors decide without it")
        self.shelf_watch.anomaly = anomaly

    def _day_close(
        self, conn, head, head_decided: bool, current: dict, as_of: int
    ) -> list[Message]:
        """Decisions on every SKU at a day's close, each at its state at that moment of the batch
        (``current``: the batch's states so far; the others as stored) but the one whose event
        closed it (just decided), and the phantom check; ids of epoch ``close:<day>``."""
        stored = self.ledger.folded_states()  # the SKUs not in ``current`` are as committed
        # The SKUs in the order decisions have always been made in (the stock table's), their
        # states from memory (no row read back), as columns: a full state only where a message is.
        states = [s for s in (current[k] if k in current else stored[k]
                              for k in skus_in_order(conn)) if s is not None]  # fmt: skip
        others = [s for s in states if s.sku != head.sku] if head_decided else states
        columns = StateColumns.of_sku_states(
            others, self.ledger.safety_buffer, [max(as_of, s.last_us) for s in others]
        )
        occasion = f"close:{self.sales.last_closed}"
        out = self.review_all(columns, self.policy.forecasts, head.event_time, occasion)
        return out + self._phantoms(head.ts_us / 1e6, states, occasion)

    def _phantoms(self, now: float, states: list[SkuState], occasion: str) -> list[Message]:
        """In stock per the ledger, but silent for longer than the forecast makes plausible."""
        forecasts = self.policy.forecasts  # the first horizon is all it reads
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
        store, version = self.cfg.gateway.store_id, self.policy.version
        return [a.to_message(store, version, occasion=occasion) for a in alerts]

    def _counts(self, steps) -> list[Message]:
        """Shrink alerts for cycle counts and write-offs far beyond the SKU's history, each
        judged on its SKU's state right after it (``IngestResult.steps``)."""
        if not steps:
            return []
        try:
            return self.count_watch.messages(steps, self.cfg.gateway.store_id, self.policy.version)
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
