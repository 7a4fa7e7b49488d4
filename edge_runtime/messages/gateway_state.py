"""The gateway's retained status message (``online``, ``degraded``, ``offline``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from edge_runtime.build_info import VERSION
from edge_runtime.messages.envelope import Message


class GatewayState(Message):
    """Retained gateway status; the broker publishes ``offline`` as the last will.

    >>> s = GatewayState(store_id="S1", status="degraded", problems=["ledger: disk full"],
    ...                  model_version="rules-1")
    >>> s.topic("shelfcast"), s.retain  # retained: a new subscriber reads the last status at once
    ('shelfcast/S1/state', True)
    """

    TOPIC: ClassVar[str] = "state"
    retain: ClassVar[bool] = True
    kind: Literal["state"] = Field("state", description="message kind; also fixes the topic")
    status: Literal["online", "degraded", "offline"] = Field(
        description="gateway status; degraded: running, but a required part is down (the "
        "ledger refuses writes, so intake is paused; an installed bundle was refused)"
    )
    problems: list[str] = Field(
        default_factory=list, description="what is down and why, when degraded"
    )
    version: str | None = Field(VERSION, description="shelfcast version of the gateway")
    outbox_depth: int | None = Field(None, description="messages waiting to be sent")
    broker_dropped: int | None = Field(
        None,
        description="messages the broker reports it dropped since it started (queue limits "
        "reached, for any client: see docs/operations.md); null until the broker says",
    )
