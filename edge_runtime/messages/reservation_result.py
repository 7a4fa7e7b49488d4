"""What a store answers, over JetStream, to an online reservation the hub routed to it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edge_runtime.messages.envelope import SCHEMA_VERSION


class ReservationResult(BaseModel):
    """What a store's ledger decided about an online reservation the hub routed to it.

    >>> ReservationResult(store_id="S1", event_id="r1", sku="A", requested=2, granted=1).short
    True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(SCHEMA_VERSION, alias="schema", description="schema version")
    store_id: str = Field(description="the store that decided")
    event_id: str = Field(description="the reservation event's id (idempotency key)")
    order_id: str | None = Field(None, description="the online order")
    sku: str = Field(description="the SKU reserved")
    requested: float = Field(description="units asked for")
    granted: float | None = Field(
        description="units reserved; null when the event was a duplicate (decided before)"
    )
    duplicate: bool = Field(False, description="the store had this event already")
    rejected: str | None = Field(None, description="why the store refused the event as invalid")
    conflict: dict[str, Any] | None = Field(
        None, description="the store's conflict (rule, requested, granted) when it fell short"
    )

    @property
    def short(self) -> bool:
        return self.granted is not None and self.granted < self.requested
