"""Server-sent events for live views: the gateway's alerts as they are written, and a nudge
when the ledger moved.

The stream polls the ledger file (``api.ledger_feed``) a few times a second: the outbox is
where every alert is durably written, by this process or by the gateway an attached API reads,
so one path serves both. Each alert goes out as ``event: alert`` with its outbox position as the
SSE ``id``; a client reconnecting with ``Last-Event-ID`` gets exactly what it missed (up to
``RESUME_MAX`` of them). ``event: ledger`` carries ``{"last_event_seq": n}`` whenever events
arrived, so a view re-reads stock without polling it.

>>> frame("alert", b'{"kind":"stockout"}', 7)
b'id: 7\\nevent: alert\\ndata: {"kind":"stockout"}\\n\\n'
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from api.runtime import Runtime

POLL_S = 0.25  # how soon a new alert reaches an open view
KEEPALIVE_S = 15.0  # a comment line keeps proxies and tablets from dropping a quiet stream
RETRY_MS = 2000  # what EventSource clients wait before reconnecting
RESUME_MAX = 1000  # alerts sent per poll; a longer backlog follows on the next polls
BACKLOG_MAX = 500


def frame(event: str, data: bytes, event_id: int | None = None) -> bytes:
    """One SSE message; a payload with line breaks is split over several ``data:`` lines."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    lines = b"".join(b"data: " + line + b"\n" for line in data.splitlines() or [b""])
    return (head + f"event: {event}\n").encode() + lines + b"\n"


def _ledger_frame(mark: int) -> bytes:
    return frame("ledger", json.dumps({"last_event_seq": mark}).encode())


async def _start(runtime: Runtime, after: int | None, backlog: int) -> tuple[int, list]:
    """Where the stream starts, and what it sends first: what a resuming client missed, or the
    newest ``backlog`` alerts for a fresh one."""
    if after is not None:
        missed = await run_in_threadpool(runtime.alerts_after, after, RESUME_MAX)
        return (missed[-1][0] if missed else after), missed
    newest = await run_in_threadpool(runtime.alerts_after, None, max(backlog, 1))
    position = newest[-1][0] if newest else 0
    return position, newest[len(newest) - backlog :] if backlog else []


async def alert_events(
    runtime: Runtime, after: int | None, backlog: int, poll_s: float = POLL_S
) -> AsyncIterator[bytes]:
    """The stream's frames until the client goes away (Starlette cancels the generator then)."""
    position, first = await _start(runtime, after, backlog)
    yield f"retry: {RETRY_MS}\n\n".encode()
    for seq, payload in first:
        yield frame("alert", payload, seq)
    mark = await run_in_threadpool(runtime.last_event_seq)
    yield _ledger_frame(mark)
    quiet_since = time.monotonic()
    while True:
        await asyncio.sleep(poll_s)
        rows = await run_in_threadpool(runtime.alerts_after, position, RESUME_MAX)
        for seq, payload in rows:
            yield frame("alert", payload, seq)
            position = seq
        latest = await run_in_threadpool(runtime.last_event_seq)
        moved, mark = latest != mark, latest
        if moved:
            yield _ledger_frame(mark)
        if rows or moved:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_S:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
