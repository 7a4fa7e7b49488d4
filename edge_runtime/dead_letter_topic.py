"""Refused input as ``deadletter`` messages: how an integrator learns an event was rejected.

Every rejection the ledger dead-letters is also published on ``{prefix}/{store}/deadletters``,
through the durable outbox like every other message (QoS 1, written in the transaction that
stores the dead letter), with every problem of the event, not only the one that stopped the
parser. The id is a UUID-5 of the refused text and where it came in, so the same refusal sent
again (a redelivered payload) carries the same ``message_id``.

>>> from edge_runtime.events import parse_events
>>> _, refused = parse_events({"event_id": "e1", "store_id": "S1", "sku": "A", "type": "sale",
...     "qty": 0, "event_time": "yesterday", "source": "pos"}, "S1")
>>> [m] = dead_letter_messages(refused, "S1", "pos", "rules-1")
>>> m.topic("shelfcast"), m.event_id, [p.field for p in m.problems]
('shelfcast/S1/deadletters', 'e1', ['qty', 'event_time'])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

from edge_runtime.events import MAX_ID_LEN, MAX_SKU_LEN, Rejection
from edge_runtime.messages import DeadLetter, Problem, decision_id


def _known(item: dict, name: str, limit: int) -> str | None:
    value = item.get(name)
    return value if type(value) is str and 0 < len(value) <= limit else None


def _time(item: dict) -> datetime | None:
    text = item.get("event_time")
    try:
        when = datetime.fromisoformat(text) if type(text) is str else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def _item(raw: str) -> dict:
    """What the refused text says of itself, when it is a JSON object (it may be cut short)."""
    try:
        item = json.loads(raw)
    except ValueError:
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
        problems=[Problem(field=f, reason=why) for f, why in r.all_problems()],
        raw=r.raw,
    )


def dead_letter_messages(
    rejections: Iterable[Rejection], store_id: str, source: str | None, model_version: str
) -> list[DeadLetter]:
    """The ``deadletter`` messages of ``rejections``, in their order."""
    return [dead_letter_message(r, store_id, source, model_version) for r in rejections]
