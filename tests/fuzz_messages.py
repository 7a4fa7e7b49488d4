"""Malformed and hostile edge events, each one certain to be refused, for the ingest fuzz test
and ``benchmarks/api.py``.

Every message is judged on its own and must end as exactly one dead letter with a reason:
``obj`` messages are JSON values that can travel inside a batch (an array judged item by
item), ``raw`` messages are bytes that are broken as a whole and travel alone. Categories:
broken JSON, wrong types, huge fields and payloads, unknown stores, negative counts, far-future,
ancient (1970, year 1) and malformed timestamps, unknown types and sources, extra fields,
non-finite and absurd numbers (an adjustment of -1,000,000, a price beyond any float), missing
order ids, text the store cannot hold (lone surrogates), SKUs no URL can name, unhashable
values, and nesting bombs.

``mixed_payloads`` builds the accounting fuzz: batches mixing valid events, identical
duplicates, ids reused with different content and implausible events (dated 1970, year 1, a
year ahead of the ledger, an absurd quantity), plus payloads on an unknown topic source; each
item says what must become of it (applied, duplicate or dead-lettered), so a run can check that
none vanished.

>>> msgs = hostile_messages(1000, "S1", seed=3)
>>> len(msgs), len({m.category for m in msgs}) > 20
(1000, True)
>>> sum(m.batchable for m in msgs) > 800
True
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_runtime.store.events import (
    MAX_EVENTS_PER_PAYLOAD,
    MAX_ID_LEN,
    MAX_PAYLOAD_BYTES,
    MAX_REASON_LEN,
    MAX_SKU_LEN,
    POSITIVE_TYPES,
    REQUIRED,
)
from edge_runtime.store.plausibility import MAX_QTY

_ABSENT = object()
# Event times a till with a reset clock sends: before the earliest plausible one (2000).
ANCIENT = ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00", "0001-01-01T00:00:00+00:00",
           "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00-05:00", "1999-12-31T23:59:59Z")  # fmt: skip

# Shapes that once made the parser or ledger raise instead of rejecting (TypeError on a dict or
# list `type`/`source`, RecursionError on deep nesting, UnicodeEncodeError on lone surrogates,
# OverflowError on a price beyond any float): the parser now judges them like any other.
RUNTIME_CRASHERS = frozenset({"unhashable", "surrogate", "nesting_bomb", "huge_price"})


@dataclass(frozen=True)
class Hostile:
    """One hostile message: a JSON value (``obj``) or raw bytes (``raw``), and its category."""

    category: str
    obj: Any = None
    raw: bytes | None = None

    @property
    def batchable(self) -> bool:
        return self.raw is None

    def encode(self) -> bytes:
        return self.raw if self.raw is not None else json.dumps(self.obj).encode()


def _valid(rng: random.Random, store: str, i: int, seed: int) -> dict[str, Any]:
    kind = rng.choice(sorted(POSITIVE_TYPES - {"reservation", "reservation_release", "fulfilment"}))
    return {
        "event_id": f"fuzz-{seed}-{i}",
        "store_id": store,
        "sku": f"F-{rng.randrange(50)}",
        "type": kind,
        "qty": rng.randint(1, 20),
        "event_time": "2026-01-05T10:00:00+00:00",
        "source": rng.choice(["pos", "ecom", "wms"]),
    }


def _set(field: str, *values: Any) -> Callable:
    def mutate(rng: random.Random, e: dict) -> dict:
        value = rng.choice(values)
        if value is _ABSENT:
            e.pop(field, None)
        else:
            e[field] = value() if callable(value) else value
        return e

    return mutate


def _negative(rng: random.Random, e: dict) -> dict:
    e["type"] = rng.choice(
        sorted(POSITIVE_TYPES - {"reservation", "reservation_release", "fulfilment"})
    )
    e["qty"] = rng.choice([0, -1, -rng.randint(2, 10_000), -0.0])
    return e


def _negative_count(rng: random.Random, e: dict) -> dict:
    e["type"] = rng.choice(["cycle_count", "shelf_units"])
    e["qty"] = -rng.randint(1, 500)
    return e


def _far_future(rng: random.Random, e: dict) -> dict:
    ahead = timedelta(days=rng.choice([2, 30, 365 * 50]), seconds=rng.randrange(86_400))
    when = datetime.now(UTC) + ahead
    e["event_time"] = rng.choice(
        [when.isoformat(), "2999-12-31T23:59:59+00:00", "9999-01-01T00:00:00Z"]
    )
    return e


def _missing(rng: random.Random, e: dict) -> dict:
    e.pop(rng.choice(REQUIRED))
    return e


def _order_missing(rng: random.Random, e: dict) -> dict:
    e["type"] = rng.choice(["reservation", "reservation_release", "fulfilment"])
    e.pop("order_id", None)
    return e


def _fraction(rng: random.Random, e: dict) -> dict:
    e["type"] = "sale"
    e["qty"] = rng.choice([0.5, 1.25, 2.999])
    return e


def _unhashable(rng: random.Random, e: dict) -> dict:
    e[rng.choice(["type", "source"])] = rng.choice([{}, [], {"$ne": None}, ["sale"]])
    return e


def _surrogate(rng: random.Random, e: dict) -> dict:
    e[rng.choice(["sku", "event_id", "reason"])] = "A\ud800" + "x" * rng.randrange(5)
    return e


def _absurd_adjustment(rng: random.Random, e: dict) -> dict:
    e["type"] = "adjustment"
    e["qty"] = rng.choice([-1_000_000, 1_000_000, -(MAX_QTY + 1), MAX_QTY + 1])
    return e


def _extra(rng: random.Random, e: dict) -> dict:
    e[rng.choice(["__proto__", "exec", "$where", "constructor", "qty2", ""])] = "os.system('id')"
    return e


_OBJECT_MUTATIONS: dict[str, Callable] = {
    "missing_field": _missing,
    "wrong_type_qty": _set("qty", "5", True, None, [], {}, "NaN", "1e3"),
    "wrong_type_text": _set("sku", 5, 1.5, True, None, ["A"]),
    "wrong_type_id": _set("event_id", 7, None, {"id": 1}, False),
    "wrong_type_time": _set("event_time", 1767607200, None, True, ["2026"]),
    "unknown_store": _set("store_id", "S999", "", " S1", "s1", "S1 ", 1, None),
    "negative_qty": _negative,
    "negative_count": _negative_count,
    "far_future": _far_future,
    "ancient_time": _set("event_time", *ANCIENT),
    "absurd_adjustment": _absurd_adjustment,
    "huge_price": _set("unit_price", 10**400, -(10**400)),
    "unreadable_sku": _set("sku", "..", ".", "a/../b", "tab\there", "nul\x00", "line\n"),
    "bad_time": _set("event_time", "2026-13-45T00:00:00Z", "yesterday", "2026-01-05T10:00:00",
                     "", "2026-01-05 10:00", "0000-00-00T00:00:00Z"),
    "huge_field": _set("sku", lambda: "S" * (MAX_SKU_LEN + 1), lambda: "x" * 100_000),
    "huge_id": _set("event_id", lambda: "i" * (MAX_ID_LEN + 1), ""),
    "huge_reason": _set("reason", lambda: "r" * (MAX_REASON_LEN + 1)),
    "unknown_type": _set("type", "theft", "SALE", "sale ", "", "drop table events"),
    "unknown_source": _set("source", "satellite", "POS", "", "mqtt"),
    "extra_field": _extra,
    "absurd_qty": _set("qty", 10**30, MAX_QTY + 1, -(10**19), 1e308, float("inf"), float("nan")),
    "fractional_qty": _fraction,
    "order_missing": _order_missing,
    "bad_price": _set("unit_price", -0.01, "free", float("inf"), [], True),
    "unhashable": _unhashable,
    "surrogate": _surrogate,
}  # fmt: skip

_NOT_OBJECTS = [42, "sale", 3.5, True, [], [1, 2], None, [{"nested": "array"}]]


def _raw(rng: random.Random, valid: dict, huge: bool) -> tuple[str, bytes]:
    text = json.dumps(valid)
    choices = [
        ("truncated", text[: rng.randrange(1, len(text) - 1)].encode()),
        # a leading NUL keeps random bytes from ever forming valid JSON such as "7" or "[]"
        ("random_bytes", b"\x00" + bytes(rng.randrange(256) for _ in range(rng.randrange(200)))),
        ("invalid_utf8", b'{"event_id": "\xff\xfe", "sku": "\xc3\x28"}'),
        ("trailing_garbage", (text + rng.choice(["}", "]", ",", "x", " {}"])).encode()),
        ("single_quotes", text.replace('"', "'").encode()),
        ("empty", b""),
        ("whitespace", b" \n\t "),
        ("nesting_bomb", b"[" * 100_000 + b"]" * 100_000),
        ("too_many_events", json.dumps([{}] * (MAX_EVENTS_PER_PAYLOAD + 1)).encode()),
        ("comment", b"// " + text.encode()),
        ("control_char", text.replace('"sku": "', '"sku": "\x01', 1).encode()),
    ]
    if huge:
        choices = [("huge_payload", b'["' + b"x" * (MAX_PAYLOAD_BYTES + 10) + b'"]')]
    return rng.choice(choices)


def hostile_messages(
    n: int, store_id: str, seed: int = 0, raw_share: float = 0.15, huge: int = 2
) -> list[Hostile]:
    """``n`` messages, each of which ingest must refuse; ``huge`` of them are > 4 MiB."""
    rng = random.Random(seed)
    out: list[Hostile] = []
    mutations = sorted(_OBJECT_MUTATIONS.items())
    for i in range(n):
        valid = _valid(rng, store_id, i, seed)
        if i < huge:
            out.append(Hostile(*_raw(rng, valid, huge=True)[:1], raw=_raw(rng, valid, True)[1]))
        elif rng.random() < raw_share:
            category, raw = _raw(rng, valid, huge=False)
            out.append(Hostile(category, raw=raw))
        elif rng.random() < 0.05:
            out.append(Hostile("not_an_object", obj=rng.choice(_NOT_OBJECTS)))
        else:
            category, mutate = rng.choice(mutations)
            out.append(Hostile(category, obj=mutate(rng, valid)))
    return out


def batches(messages: list[Hostile], size: int = 500) -> list[bytes]:
    """Batchable messages grouped into JSON arrays (each item is still judged on its own)."""
    items = [m.obj for m in messages if m.batchable]
    return [json.dumps(items[i : i + size]).encode() for i in range(0, len(items), size)]


def post_all(url: str, token: str, messages: list[Hostile]) -> dict[str, int]:
    """POST every message to the API (batches to ``/v1/events/batch``, broken ones alone, half
    to each endpoint); counts requests, 5xx answers and what the API said it rejected."""
    import httpx

    counts = {"requests": 0, "5xx": 0, "rejected": 0, "accepted": 0}
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:

        def post(path: str, body: bytes) -> None:
            counts["requests"] += 1
            try:
                response = client.post(path, content=body)
            except httpx.TransportError:  # the server dropped the connection: a crash too
                counts["5xx"] += 1
                return
            if response.status_code >= 500:
                counts["5xx"] += 1
                return
            got = response.json()
            counts["rejected"] += got.get("rejected", 0)
            counts["accepted"] += got.get("accepted", 0) + got.get("duplicates", 0)

        for body in batches(messages):
            post("/v1/events/batch", body)
        for i, m in enumerate(m for m in messages if not m.batchable):
            post("/v1/events" if i % 2 else "/v1/events/batch", m.raw)
    return counts


def mqtt_payloads(messages: list[Hostile]) -> list[bytes]:
    """What a fuzzer publishes: the batchable messages in arrays, then each broken one alone."""
    return batches(messages) + [m.raw for m in messages if not m.batchable]


def publish_all(port: int, payloads: list[bytes], store_id: str = "S1") -> None:
    """Publish with QoS 1 to ``shelfcast/{store}/events/pos`` and wait for every PUBACK."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shelfcast-fuzzer")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(f"shelfcast/{store_id}/events/pos", p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        client.loop_stop()
        client.disconnect()


# ---- the accounting fuzz: mixed batches, each item with the fate it must meet -------------------

# A replay of old data: the ledger clock is far behind the wall clock.
CLOCK = datetime(2011, 6, 1, 18, 0, tzinfo=UTC)
UNKNOWN_TOPICS = ("satellite", "POS", "events", "pos2")


@dataclass(frozen=True)
class Mixed:
    """One payload of the accounting fuzz: the MQTT topic source it is published on, the JSON
    value, and what must become of each item: "applied", "duplicate" or "refused"."""

    topic: str
    obj: Any
    fates: tuple[str, ...]

    @property
    def topic_ok(self) -> bool:
        return self.topic not in UNKNOWN_TOPICS

    def encode(self) -> bytes:
        return json.dumps(self.obj).encode()


def _at(when: datetime) -> str:
    return when.isoformat()


def history(store_id: str, clock: datetime = CLOCK, n: int = 200) -> list[dict]:
    """Receipts ingested before a mixed run: the ledger clock ends one minute before ``clock``."""
    return [
        {"event_id": f"hist-{i}", "store_id": store_id, "sku": f"M-{i % 40}", "type": "receipt",
         "qty": 50, "event_time": _at(clock - timedelta(minutes=n - i)), "source": "wms"}
        for i in range(n)
    ]  # fmt: skip


class _MixedRun:
    """Draws items; remembers what was applied so duplicates and reuses refer to real events."""

    def __init__(self, store_id: str, seed: int, clock: datetime):
        self.rng = random.Random(seed)
        self.store_id, self.seed, self.clock = store_id, seed, clock
        self.applied: list[dict] = history(store_id, clock)
        self.count = 0

    def fresh(self) -> dict:
        self.count += 1
        rng = self.rng
        # Within the hours the history covers: behind the ledger clock, so it never moves and
        # every rejection reason is the same whichever path or grouping judged it.
        when = self.clock - timedelta(seconds=rng.randrange(120, 3 * 3600))
        return {"event_id": f"mix-{self.seed}-{self.count}", "store_id": self.store_id,
                "sku": f"M-{rng.randrange(40)}", "type": rng.choice(["sale", "receipt"]),
                "qty": rng.randint(1, 5), "event_time": _at(when), "source": "pos"}  # fmt: skip

    def item(self) -> tuple[Any, str]:
        rng, e = self.rng, self.fresh()
        kind = rng.choice(["new", "new", "new", "duplicate", "reused", "ancient", "year_ahead",
                           "late", "absurd_adjustment", "huge_price", "hostile", "not_object"])  # fmt: skip
        if kind == "new":
            return e, "applied"
        if kind == "duplicate":
            return dict(rng.choice(self.applied)), "duplicate"
        if kind == "reused":
            original = rng.choice(self.applied)
            field, value = rng.choice([("qty", original["qty"] + 1), ("sku", "M-other"),
                                       ("event_time", _at(self.clock - timedelta(hours=5)))])  # fmt: skip
            return {**original, field: value}, "refused"
        if kind == "ancient":
            e["event_time"] = rng.choice(ANCIENT)
        elif kind == "year_ahead":  # far behind the wall clock, a year ahead of the ledger
            e["event_time"] = _at(self.clock + timedelta(days=365))
        elif kind == "late":
            e["event_time"] = _at(self.clock - timedelta(days=200))
        elif kind == "absurd_adjustment":
            e["type"], e["qty"] = "adjustment", -1_000_000
        elif kind == "huge_price":
            e["unit_price"] = 10**400
        elif kind == "hostile":
            e = rng.choice(sorted(_OBJECT_MUTATIONS.items()))[1](rng, e)
        else:
            e = rng.choice(_NOT_OBJECTS)
        return e, "refused"

    def payload(self) -> Mixed:
        rng = self.rng
        if rng.random() < 0.08:  # a whole payload on a topic that names no source
            events = [self.fresh() for _ in range(rng.randint(1, 6))]
            return Mixed(rng.choice(UNKNOWN_TOPICS), events, ("refused",) * len(events))
        if rng.random() < 0.2:
            obj, fate = self.item()
            if isinstance(obj, dict):  # one event alone (a list alone would be a batch)
                self._remember([obj], [fate])
                return Mixed("pos", obj, (fate,))
        items, fates = zip(*(self.item() for _ in range(rng.randint(2, 12))), strict=True)
        fates = self._remember(list(items), list(fates))
        return Mixed("pos", list(items), tuple(fates))

    def _remember(self, items: list, fates: list[str]) -> list[str]:
        """Fates within the payload: a later item repeating an earlier one's id is a duplicate
        (same content) or refused (different content); applied events become references."""
        seen: dict[str, dict] = {}
        for i, (item, fate) in enumerate(zip(items, fates, strict=True)):
            if fate == "applied":
                if item["event_id"] in seen:
                    fates[i] = "duplicate" if seen[item["event_id"]] == item else "refused"
                else:
                    seen[item["event_id"]] = item
                    self.applied.append(item)
        return fates


def mixed_payloads(n: int, store_id: str, seed: int = 0, clock: datetime = CLOCK) -> list[Mixed]:
    """``n`` payloads for a ledger that holds ``history(store_id, clock)``; see ``Mixed``.

    >>> run = mixed_payloads(300, "S1", seed=1)
    >>> fates = {f for m in run for f in m.fates}
    >>> sorted(fates), sum(not m.topic_ok for m in run) > 5
    (['applied', 'duplicate', 'refused'], True)
    """
    run = _MixedRun(store_id, seed, clock)
    return [run.payload() for _ in range(n)]


def expected(payloads: list[Mixed]) -> dict[str, int]:
    """How many items of ``payloads`` must be applied, duplicates and refused."""
    out = {"applied": 0, "duplicate": 0, "refused": 0}
    for m in payloads:
        for fate in m.fates:
            out[fate] += 1
    return out


def post_mixed(url: str, token: str, payloads: list[Mixed]) -> dict[str, int]:
    """POST the payloads one after another (arrays to ``/v1/events/batch``, single events to
    ``/v1/events``; those on an unknown topic are MQTT-only and skipped); counts what the API
    answered, and 5xx answers (or dropped connections)."""
    import httpx

    counts = {"requests": 0, "5xx": 0, "applied": 0, "duplicate": 0, "refused": 0}
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for m in payloads:
            if not m.topic_ok:
                continue
            path = "/v1/events/batch" if isinstance(m.obj, list) else "/v1/events"
            counts["requests"] += 1
            try:
                response = client.post(path, content=m.encode())
            except httpx.TransportError:  # the server dropped the connection: a crash too
                counts["5xx"] += 1
                continue
            if response.status_code >= 500:
                counts["5xx"] += 1
                continue
            got = response.json()
            counts["applied"] += got["accepted"]
            counts["duplicate"] += got["duplicates"]
            counts["refused"] += got["rejected"]
    return counts


def publish_mixed(port: int, payloads: list[Mixed], store_id: str = "S1") -> None:
    """Publish each payload with QoS 1 on ``shelfcast/{store}/events/{topic}``, in order."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shelfcast-mixed-fuzzer")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [
            client.publish(f"shelfcast/{store_id}/events/{m.topic}", m.encode(), qos=1)
            for m in payloads
        ]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        client.loop_stop()
        client.disconnect()
