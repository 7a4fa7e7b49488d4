"""Message ids: a fresh random one per message, and a decision's derived one that stays the same
when the decision is made again (a restart, a rolled-back transaction, a redelivered event).

>>> len(new_message_id()), new_message_id() != new_message_id()
(36, True)
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from json.encoder import encode_basestring_ascii

DECISION_NAMESPACE = uuid.UUID("5b1c0f6e-3c39-4f5e-9a51-2f0d8e7c4a10")
"""Fixed forever: changing it changes every decision's ``message_id``."""


_NAMESPACE_SHA1 = hashlib.sha1(DECISION_NAMESPACE.bytes)  # uuid5's hash, namespace fed


def _uuid_text(raw: bytes, version: int) -> str:
    """``str(uuid.UUID(bytes=raw[:16], version=version))`` without building a UUID object:
    every message gets an id and every decision a UUID-5, in the per-event path."""
    b = bytearray(raw[:16])
    b[6] = (b[6] & 0x0F) | (version << 4)
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_message_id() -> str:
    """A random UUID-4 as text: the ``message_id`` of a message that is not a decision."""
    return _uuid_text(os.urandom(16), 4)  # what uuid.uuid4() draws


_KEY_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def _json_text(value: object) -> str:
    """``value`` as compact ASCII JSON (``json.dumps(value, ensure_ascii=True, separators=...)``).

    >>> _json_text("A"), _json_text(None), _json_text(3)
    ('"A"', 'null', '3')
    """
    if type(value) is str:
        return encode_basestring_ascii(value)
    return "null" if value is None else _KEY_ENCODER.encode(value)


def decision_id(store_id: str, kind: str, sku: str | None, epoch: str) -> str:
    """The ``message_id`` of a decision: a UUID-5 of the store, the SKU, the decision's kind and
    its epoch, so the same decision made again (after a restart, a rolled-back transaction, a
    redelivered event) carries the same id and consumers de-duplicate it.

    The epoch is what starts the decision: the ``event_id`` of the event whose state change
    made it (for a stock-out, the event that took the SKU across the threshold; for a
    replenishment trigger, the event that opened the order), or, for decisions no single event
    made, the occasion (``close:<day>`` for a store day's close, ``bundle:<version>@<clock>``
    for a bundle swap). Two episodes of one SKU start at different events, so they get
    different ids.

    >>> decision_id("S1", "stockout", "A", "e7") == decision_id("S1", "stockout", "A", "e7")
    True
    >>> decision_id("S1", "stockout", "A", "e7") == decision_id("S1", "stockout", "A", "e8")
    False
    """
    # The JSON text of [store_id, kind, sku, epoch], compact and ASCII, spelled out: json.dumps
    # with options builds an encoder per call, most of this function's cost at a day's close.
    key = f"[{_json_text(store_id)},{_json_text(kind)},{_json_text(sku)},{_json_text(epoch)}]"
    digest = _NAMESPACE_SHA1.copy()  # uuid.uuid5(DECISION_NAMESPACE, key), without the objects
    digest.update(key.encode())
    return _uuid_text(digest.digest(), 5)
