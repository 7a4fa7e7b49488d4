"""A first decision policy: simple, stated rules on available-to-promise (ATP).

This is the placeholder for the model-driven policies (ONNX demand forecasts, stock-out
probability, River anomaly detection): it gives the transport real alerts to carry
and shows the interface those policies plug into (:class:`DecisionPolicy`).

Rules, per SKU, on the state after each ingest (levels: ``ok`` > ``low`` > ``out``):

- ATP falls to ``reorder_point`` or below (from ``ok``): a replenishment alert recommending
  ``order_up_to - ATP`` units, rounded up to ``pack_size``. No second one while the SKU stays
  below the reorder point (the order is "open"); ATP rising above it closes the episode.
- ATP reaches 0 (from ``ok`` or ``low``): a stock-out alert, probability 1, horizon 0. A jump
  from ``ok`` straight to 0 sends both (replenishment first), so the alerts do not depend on how
  events were grouped into transactions.
- Every ledger conflict (last-unit contention, units sold beyond the book): a conflict message.

Alerts fire on crossings only, so a SKU sitting at zero does not repeat its alert on every event.

>>> from edge_runtime.store.stock import SkuState, StockState
>>> policy = RulePolicy("S1", reorder_point=2, order_up_to=10)
>>> low = StockState.of(SkuState("A", on_hand=2), safety_buffer=0, as_of_us=0)
>>> [(m.kind, m.recommended_qty) for m in policy.decide([low], {}, [])]
[('replenishment', 8)]
>>> out = StockState.of(SkuState("A", on_hand=0), safety_buffer=0, as_of_us=0)
>>> [m.kind for m in policy.decide([out], {}, [])], policy.decide([out], {}, [])
(['stockout'], [])
>>> [m.kind for m in RulePolicy("S1").decide([out], {}, [])]
['replenishment', 'stockout']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from edge_runtime.messages import (
    ConflictMessage,
    Message,
    ReasonCode,
    ReplenishmentAlert,
    StockoutAlert,
    decision_message_id,
)
from edge_runtime.store.stock import Conflict, StockState

if TYPE_CHECKING:  # the forecast policy imports this module
    from edge_runtime.decide.forecast_policy import DailyForecasts

OK, LOW, OUT = 0, 1, 2


class Cause(Protocol):
    """What a policy needs of the event behind a decision (``events.Event`` has it)."""

    event_id: str
    event_time: str


class DecisionPolicy(Protocol):
    """Turns ledger changes into outgoing messages; called inside the ledger transaction.

    ``states``: the new state of every SKU whose state changed; ``causes``: sku -> the latest
    event of the batch for that SKU; ``conflicts``: the ledger's conflicts of the batch.

    All of it is what the gateway's decision engine calls, so every policy implements all of
    it; a policy without forecasts or memory (the rules) answers with nothing.
    """

    version: str
    uses_forecasts: bool  # decides from a forecast table (``use``); else one replaces it
    forecasts: DailyForecasts | None  # the table it decides with (None: none)

    def prime(self, states: Iterable[StockState]) -> None: ...

    def review(
        self,
        states: Sequence[StockState],
        causes: Mapping[str, Cause],
        at: str | None = None,
        occasion: str | None = None,
    ) -> list[Message]:
        """Decisions on ``states`` at ``at`` (a day's close, a new model), each built with its
        ``decision_id`` (``decision_message_id``: epoch its cause, else the ``occasion``,
        ``close:<day>``, else its time). ``decide`` builds its decisions with their ids too."""
        ...

    def receive(self, events: Iterable) -> None:
        """Receipts of a batch, before its changes are decided (they close open orders)."""
        ...

    def use(self, forecasts: DailyForecasts | None, model_version: str) -> None: ...

    def restore_alerts(self, under_alert: dict[str, float]) -> None:
        """The stock-out episodes open when the gateway stopped."""
        ...

    def restore_orders(self, orders: dict[str, tuple[float, str | None]]) -> None:
        """The open orders as committed."""
        ...

    def take_episode_changes(self) -> dict[str, float | None]:
        """Stock-out episodes changed since the last call (stored with their alerts)."""
        ...

    def take_order_changes(self) -> dict[str, tuple[float, str | None] | None]:
        """Open orders changed since the last call (stored with their triggers)."""
        ...

    def deciding(self, steps: list[tuple[Any, Any]], safety_buffer: int) -> list[tuple[Any, Any]]:
        """Of a round's ``(event, ledger state)`` steps, those that may decide something (the
        others provably publish and change nothing, and are not decided)."""
        ...

    def decide(
        self,
        states: Sequence[StockState],
        causes: Mapping[str, Cause],
        conflicts: Sequence[Conflict],
    ) -> list[Message]: ...


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def decision_fields(
    store_id: str,
    version: str,
    kind: str,
    s: StockState,
    cause: Cause | None,
    at: datetime | None,
    occasion: str | None = None,
) -> dict[str, Any]:
    """The fields every stock decision (stock-out, replenishment) carries but its SKU, with the
    id it is built with (epoch: its cause, else ``occasion``, a close's or a swap's, else its
    time). One place for the rules and the forecast policy alike."""
    cause_id = cause.event_id if cause else None
    return {
        "message_id": decision_message_id(store_id, kind, s.sku, cause_id, occasion, at),
        "store_id": store_id,
        "event_time": at,
        "cause_event_id": cause_id,
        "model_version": version,
        "atp": s.available,
        "on_hand": s.on_hand,
        "reserved": s.reserved,
        "confidence": s.confidence,
    }


class RulePolicy:
    """Reorder-point / stock-out / conflict rules (see module docstring).

    >>> RulePolicy("S1").version
    'rules-1'
    """

    version = "rules-1"
    uses_forecasts = False
    forecasts = None

    def __init__(
        self,
        store_id: str,
        reorder_point: float = 2.0,
        order_up_to: float = 12.0,
        pack_size: int = 1,
        lead_time_hours: float = 24.0,
    ):
        if order_up_to < reorder_point or pack_size < 1:
            raise ValueError("need order_up_to >= reorder_point and pack_size >= 1")
        self.store_id = store_id
        self.reorder_point = reorder_point
        self.order_up_to = order_up_to
        self.pack_size = pack_size
        self.lead_time_hours = lead_time_hours
        self._level: dict[str, int] = {}

    def level_of(self, atp: float) -> int:
        if atp <= 0:
            return OUT
        return LOW if atp <= self.reorder_point else OK

    def prime(self, states: Iterable[StockState]) -> None:
        """Start from the ledger's current levels (after a restart: no repeated alerts)."""
        for s in states:
            self._level[s.sku] = self.level_of(s.available)

    def decide(
        self,
        states: Sequence[StockState],
        causes: Mapping[str, Cause],
        conflicts: Sequence[Conflict],
    ) -> list[Message]:
        out: list[Message] = []
        levels = self._level
        for s in states:
            new = self.level_of(s.available)
            old = levels.get(s.sku, OK)
            levels[s.sku] = new
            if new > old:
                cause = causes.get(s.sku)
                if old == OK:  # also when it jumps straight to zero within one batch
                    out.append(self._replenishment(s, cause))
                if new == OUT:
                    out.append(self._stockout(s, old, cause))
        out.extend(self._conflict(c) for c in conflicts)
        return out

    # The rules keep no forecasts, open orders or episodes: their part of the protocol is empty.
    def review(
        self,
        states: Sequence[StockState],
        causes: Mapping[str, Cause],
        at: str | None = None,
        occasion: str | None = None,
    ) -> list[Message]:
        return []

    def deciding(self, steps: list[tuple[Any, Any]], safety_buffer: int) -> list[tuple[Any, Any]]:
        return steps  # a level change is decided on the level reached, whatever it is

    def receive(self, events: Iterable) -> None:
        pass

    def use(self, forecasts: DailyForecasts | None, model_version: str) -> None:
        pass

    def restore_alerts(self, under_alert: dict[str, float]) -> None:
        pass

    def restore_orders(self, orders: dict[str, tuple[float, str | None]]) -> None:
        pass

    def take_episode_changes(self) -> dict[str, float | None]:
        return {}

    def take_order_changes(self) -> dict[str, tuple[float, str | None] | None]:
        return {}

    def _common(self, kind: str, s: StockState, cause: Cause | None) -> dict:
        """The fields every alert carries, with the id it is built with."""
        at = _time(cause.event_time if cause else s.last_event_time)
        return {"sku": s.sku, **decision_fields(self.store_id, self.version, kind, s, cause, at)}

    def _stockout(self, s: StockState, old: int, cause: Cause | None) -> StockoutAlert:
        return StockoutAlert(
            probability=1.0,
            horizon_hours=0.0,
            reason_codes=[ReasonCode.ATP_ZERO] if s.on_hand > 0 else [ReasonCode.ON_HAND_ZERO],
            evidence={"previous_level": ("ok", "low")[old]},
            **self._common("stockout", s, cause),
        )

    def _replenishment(self, s: StockState, cause: Cause | None) -> ReplenishmentAlert:
        gap = max(0.0, self.order_up_to - s.available)
        qty = math.ceil(gap / self.pack_size) * self.pack_size
        return ReplenishmentAlert(
            recommended_qty=qty,
            reorder_point=self.reorder_point,
            order_up_to=self.order_up_to,
            horizon_hours=self.lead_time_hours,
            reason_codes=[ReasonCode.ATP_AT_REORDER_POINT],
            evidence={"pack_size": self.pack_size},
            **self._common("replenishment", s, cause),
        )

    def _conflict(self, c: Conflict) -> ConflictMessage:
        code, at = ReasonCode(c.kind.upper()), _time(c.event_time)
        return ConflictMessage(
            message_id=decision_message_id(
                self.store_id, f"conflict/{code}", c.sku, c.event_id, None, at
            ),
            store_id=self.store_id,
            sku=c.sku,
            event_time=at,
            cause_event_id=c.event_id,
            model_version=self.version,
            rule="physical-event-wins-newest-promise-loses",
            loser_event_id=c.event_id if c.kind == "reservation_short" else None,
            qty_requested=c.requested,
            qty_granted=c.granted,
            reason_codes=[code],
            evidence={
                "order_id": c.order_id,
                "shortfall": c.shortfall,
                "on_hand": c.on_hand,
                "reserved": c.reserved,
            },
        )
