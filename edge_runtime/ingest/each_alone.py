"""The fallback when a batch fails for another reason than the store: each event alone.

A bug one event triggers in a stage after the parser (a policy, a detector) must not block the
rest of its batch, nor vanish: the batch is committed event by event, and an event that still
fails is dead-lettered with the error as its reason. A store failure is never an event's fault:
it raises, nothing committed (the MQTT payload is held, the API answers 503).

>>> def commit(events, rejections, source):
...     if any(e == "bad" for e in events):
...         raise ValueError("boom")
...     return IngestResult(accepted=len(events))
>>> def dead_letter(event, source, err):
...     return IngestResult(rejected=1)
>>> r = commit_or_each_alone(commit, dead_letter, ["a", "bad", "b"], [], "pos")
>>> r.accepted, r.rejected
(2, 1)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_runtime.store.events import Event, Rejection, raw_text
from edge_runtime.store.ledger import IngestResult
from edge_runtime.store.store_failure import StoreError

log = logging.getLogger(__name__)

# The store or the machine failed, not an event (the ledger turns every such SQLite or OS error
# into StoreError): never an event's dead letter.
STORE_FAILURES = (StoreError,)

Commit = Callable[[list[Event], list[Rejection], str], IngestResult]
DeadLetter = Callable[[Event, str, Exception], IngestResult]


def commit_or_each_alone(
    commit: Commit,
    dead_letter: DeadLetter,
    events: list[Event],
    rejections: list[Rejection],
    source: str,
) -> IngestResult:
    """``commit`` the batch; should that raise for another reason than the store, each event
    is committed alone and those that still fail go to ``dead_letter``."""
    try:
        return commit(events, rejections, source)
    except STORE_FAILURES:
        raise
    except Exception as err:
        first = err
    log.warning("ingest from %r failed whole (%r): each event alone", source, first)
    result = commit([], rejections, source) if rejections else IngestResult()
    for event in events:
        try:
            alone = commit([event], [], source)
        except STORE_FAILURES:
            raise
        except Exception as err:
            alone = dead_letter(event, source, err)
        result.add(alone)
    return result


def unprocessable(event: Event, err: Exception) -> Rejection:
    """The dead letter of an event that crashed a stage after the parser, reason included."""
    reason = f"unprocessable event ({type(err).__name__}: {str(err)[:200]})"
    return Rejection(raw_text(event.to_dict()), reason, None, event.index)
