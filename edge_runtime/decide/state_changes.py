"""How a batch of events is cut so that decisions follow every state change, not each batch.

A batch (an MQTT backlog, an API batch) must decide exactly what the same events arriving one
per message would: a SKU that runs out, is restocked and runs out again within one batch raises
two stock-outs, and an event after midnight is decided on the forecast of the day that closed.
The gateway therefore walks a batch in two cuts:

- :func:`day_segments`: the batch in store-day order (arrival order within a day), cut before
  each event that opens a later store day (the event that closes the open day, as it would
  arriving alone); :func:`day_batches` pairs each segment with its state changes;
- :func:`rounds`: within a segment, round ``k`` holds each SKU's ``k``-th state change. SKUs are
  decided independently of each other, so deciding round by round keeps every SKU's own order
  while each round is still one vectorised policy call.

>>> from types import SimpleNamespace as E
>>> evs = [E(sku="A", event_time="2026-01-05T09:00"), E(sku="A", event_time="2026-01-05T10:00"),
...        E(sku="B", event_time="2026-01-06T08:00"), E(sku="B", event_time="2026-01-05T23:00")]
>>> day = lambda t: int(t[8:10])
>>> [[e.sku for e in seg] for seg in day_segments(evs, day, 5)]
[['A', 'A'], ['B', 'B']]
>>> [[e.sku for e, _ in r] for r in rounds([(e, None) for e in evs])]
[['A', 'B'], ['A', 'B']]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar


class Dated(Protocol):
    sku: str
    event_time: str


E = TypeVar("E", bound=Dated)


def day_segments(
    events: Sequence[E], day_of: Callable[[str], int], open_day: int | None
) -> list[list[E]]:
    """``events`` cut before each one of a store day later than the open one (``open_day``,
    days since the epoch; None before the first event: the first event opens its day)."""
    segments: list[list[E]] = []
    current: list[E] = []
    for e in events:
        day = day_of(e.event_time)
        if open_day is None:
            open_day = day
        elif day > open_day:
            if current:
                segments.append(current)
            current, open_day = [], day
        current.append(e)
    if current:
        segments.append(current)
    return segments


def day_batches(
    events: Sequence[E],
    steps: Sequence[tuple[E, Any]],
    day_of: Callable[[str], int],
    open_day: int | None,
) -> list[tuple[list[E], list[tuple[E, Any]]]]:
    """The batch as ``(segment, its steps)`` pairs (:func:`day_segments`), taken in store-day
    order (arrival order within a day): a backlog spanning days closes each day once, in
    turn. ``steps`` are ``(event, state)`` pairs of some of ``events``, in arrival order.

    >>> from types import SimpleNamespace as E
    >>> a, b = E(sku="A", event_time="2026-01-06"), E(sku="B", event_time="2026-01-05")
    >>> [([e.sku for e in seg], [e.sku for e, _ in st])
    ...  for seg, st in day_batches([a, b], [(a, 1)], lambda t: int(t[8:10]), 5)]
    [(['B'], []), (['A'], ['A'])]
    """
    ordered = sorted(events, key=lambda e: day_of(e.event_time))  # stable; linear when sorted
    place = {id(e): i for i, e in enumerate(ordered)}
    steps = sorted(steps, key=lambda step: place[id(step[0])])
    out, k = [], 0
    for segment in day_segments(ordered, day_of, open_day):
        end, mine = place[id(segment[-1])], []
        while k < len(steps) and place[id(steps[k][0])] <= end:
            mine.append(steps[k])
            k += 1
        out.append((segment, mine))
    return out


def rounds(steps: Sequence[tuple[E, Any]]) -> list[list[tuple[E, Any]]]:
    """``(event, state)`` steps in arrival order as rounds: round ``k`` holds the ``k``-th step
    of every SKU that has one (so no SKU appears twice in a round)."""
    seen: dict[str, int] = {}
    out: list[list[tuple[E, Any]]] = []
    for step in steps:
        sku = step[0].sku
        k = seen.get(sku, 0)
        seen[sku] = k + 1
        if k == len(out):
            out.append([])
        out[k].append(step)
    return out
