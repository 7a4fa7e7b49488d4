"""Events the runtime's parser or store cannot digest: split out and dead-lettered on their own.

One hostile event must not fail the valid events beside it, nor crash the request. When
ingesting a payload raises (not a rejection: an exception, e.g. a JSON object where a string is
expected in a membership test, or text with lone UTF-16 surrogates SQLite cannot store), the
payload is split (a payload nested too deeply to decode is dead-lettered whole): events that pass :func:`diagnose` are ingested together as usual, and each
poisonous one is written to the ledger's dead-letter table with the reason found here.

>>> diagnose({"type": {"x": 1}})
('type', 'type must be a string, got dict')
>>> diagnose({"sku": "ok"}) is None
True
"""

from __future__ import annotations

import json
from typing import Any

from edge_runtime.events import RAW_KEEP, Rejection

_STRING_FIELDS = (
    "event_id",
    "store_id",
    "sku",
    "type",
    "source",
    "order_id",
    "reason",
    "event_time",
)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def diagnose(item: Any) -> tuple[str | None, str] | None:
    """``(field, reason)`` if ``item`` is one of the shapes that crash the parser or store."""
    if not isinstance(item, dict):
        return None
    for key, value in item.items():
        if _has_surrogate(key):
            return None, "a field name is not valid Unicode (lone surrogate)"
        if key in _STRING_FIELDS and isinstance(value, dict | list):
            return key, f"{key} must be a string, got {type(value).__name__}"
        if isinstance(value, str) and _has_surrogate(value):
            return key, f"{key} is not valid Unicode text (lone surrogate)"
    return None


def _raw(item: Any) -> str:
    return json.dumps(item, ensure_ascii=True)[:RAW_KEEP]


def split(payload: bytes) -> tuple[Any, list[tuple[int | None, str, str | None, str]]] | None:
    """``(rest, poisoned)``: the payload without poisonous events, and those events with reasons
    (``(index, raw, field, reason)``).

    ``None`` when the payload is not JSON (the parser handles that itself and never crashes).
    """
    try:
        decoded = json.loads(payload)
    except RecursionError:
        head = payload[:RAW_KEEP].decode("utf-8", "replace")
        return None, [(None, head, "payload", "payload nests JSON arrays/objects too deeply")]
    except (ValueError, UnicodeDecodeError):
        return None
    batch = isinstance(decoded, list)
    items = decoded if batch else [decoded]
    rest, poisoned = [], []
    for i, item in enumerate(items):
        found = diagnose(item)
        if found is None:
            rest.append(item)
        else:
            poisoned.append((i if batch else None, _raw(item), *found))
    return (rest if batch else (rest[0] if rest else None)), poisoned


def rejections(poisoned: list) -> list[Rejection]:
    """The poisonous events as rejections for ``Ledger.dead_letter``."""
    return [Rejection(raw, reason, field, index) for index, raw, field, reason in poisoned]
