"""Refused input as ``deadletter`` messages: how an integrator learns an event was rejected.

Every rejection the ledger dead-letters is also published on ``{prefix}/{store}/deadletters``,
through the durable outbox like every other message (QoS 1, written in the transaction that
stores the dead letter), with every problem of the event, not only the one that stopped the
parser. The id is a UUID-5 of the refused text and where it came in, so the same refusal sent
again (a redelivered payload) carries the same ``message_id``.

>>> from edge_runtime.store.events import parse_events
>>> _, refused = parse_events({"event_id": "e1", "store_id": "S1", "sku": "A", "type": "sale",
...     "qty": 0, "event_time": "yesterday", "source": "pos"}, "S1")
>>> [m] = dead_letter_messages(refused, "S1", "pos", "rules-1")
>>> m.topic("shelfcast"), m.event_id, [p.field for p in m.problems]
('shelfcast/S1/deadletters', 'e1', ['qty', 'event_time'])
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from edge_runtime.messages import DeadLetter, Problem, decision_id
from edge_runtime.store.events import MAX_ID_LEN, MAX_SKU_LEN, Rejection

log = logging.getLogger(__name__)


def _known(item: dict, name: str, limit: int) -> str | None:
    value = item.get(name)
    if type(value) is not str or not 0 < len(value) <= limit:
        return None
    return value if _storable(value) == value else None  # a lone surrogate: not that event's id


def _storable(text: str) -> str:
    """``text`` as valid Unicode: JSON may escape a lone surrogate no consumer can store."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _time(item: dict) -> datetime | None:
    text = item.get("event_time")
    try:
        when = datetime.fromisoformat(text) if type(text) is str else None
        return when.astimezone(UTC) if when is not None and when.tzinfo is not None else None
    except (ValueError, OverflowError):  # not a time, or beyond year 1..9999 once in UTC
        return None


def _item(raw: str) -> dict:
    """What the refused text says of itself, when it is a JSON object (it may be cut short)."""
    if not raw.startswith("{"):
        return {}
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError):  # cut short, or a nesting bomb
        return {}
    return item if type(item) is dict else {}


def dead_letter_message(
    r: Rejection, store_id: str, source: str | None, model_version: str
) -> DeadLetter:
    """The ``deadletter`` message of one rejection (see the module's docstring)."""
    item = _item(r.raw)
    digest = hashlib.sha256(r.raw.encode("utf-8", "backslashreplace")).hexdigest()
    sku = _known(item, "sku", MAX_SKU_LEN)
    return DeadLetter(
        message_id=decision_id(store_id, "deadletter", sku, f"{source}|{r.index}|{digest}"),
        store_id=store_id,
        sku=sku,
        event_time=_time(item),
        model_version=model_version,
        source=source,
        event_id=_known(item, "event_id", MAX_ID_LEN),
        batch_index=r.index,
        problems=[
            Problem(field=None if f is None else _storable(f), reason=_storable(why))
            for f, why in r.all_problems()
        ],
        raw=_storable(r.raw),
    )


def dead_letter_messages(
    rejections: Iterable[Rejection], store_id: str, source: str | None, model_version: str
) -> list[DeadLetter]:
    """The ``deadletter`` messages of ``rejections``, in their order. A rejection no message
    can be made of is logged and left out: it is stored in the dead letters all the same, and
    a bug here must never refuse (or roll back) the valid events beside it."""
    out = []
    for r in rejections:
        try:
            message = dead_letter_message(r, store_id, source, model_version)
            message.to_json()  # what the outbox will do: fail here, not in its transaction
            out.append(message)
        except Exception:
            log.exception("no deadletter message for a rejection (kept in the dead letters)")
    return out
