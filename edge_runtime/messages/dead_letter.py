"""The message of an input the gateway refused, with every problem found in it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_runtime.messages.envelope import Message


class Problem(BaseModel):
    """One thing wrong with a refused event: the field at fault and why.

    >>> Problem(field="qty", reason="qty must be > 0 for sale, got 0").field
    'qty'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str | None = Field(
        description="the field at fault; null when the item as a whole is (not JSON, not an "
        "object, too large)"
    )
    reason: str = Field(description="what is wrong, naming the rule or setting it breaks")


class DeadLetter(Message):
    """An input the gateway refused, with every problem found in it (kept in its dead letters).

    >>> d = DeadLetter(store_id="S1", model_version="m", source="pos", event_id="e1",
    ...                problems=[Problem(field="qty", reason="qty must be > 0 for sale, got 0")],
    ...                raw='{"event_id": "e1", "type": "sale", "qty": 0}')
    >>> d.topic("shelfcast"), d.problems[0].field
    ('shelfcast/S1/deadletters', 'qty')
    """

    TOPIC: ClassVar[str] = "deadletters"
    kind: Literal["deadletter"] = Field(
        "deadletter", description="message kind; also fixes the topic"
    )
    source: str | None = Field(
        description="where it came in: the MQTT topic's source level (pos, ecom, ...) or api"
    )
    event_id: str | None = Field(None, description="the refused event's event_id, if it had one")
    batch_index: int | None = Field(
        None, description="position of the event in its batch (a JSON array), from 0"
    )
    problems: list[Problem] = Field(
        min_length=1, description="every problem found, the one that refused it first"
    )
    raw: str = Field(description="the refused item as received, cut to 1,024 characters")
