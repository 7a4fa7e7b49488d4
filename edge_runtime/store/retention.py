"""Retention: the stated bounds that keep a gateway's state directory from growing for years.

Run by the gateway's worker every ``[retention] every_s`` (and by :meth:`Gateway.run_retention`):

- outbox: delivered messages go once older than ``outbox_days`` and beyond the newest
  ``outbox_rows``; delivered means acknowledged by the broker (when MQTT is on) and forwarded
  by the hub link (when a hub is configured: never past its cursor); pending rows never go;
- dead letters: older than ``dead_letter_days`` and beyond the newest ``dead_letter_rows``;
- event log: events more than ``event_log_days`` of event time behind the ledger clock move to
  compressed daily files in ``{state_dir}/archive`` (``edge_runtime.store.event_archive``), never an
  event a restart snapshot still needs; archive files more than ``archive_days`` behind go.

Open orders, stock-out episodes and the stock itself are state, not history: never pruned.

>>> RetentionReport(outbox=3, dead_letters=0, archived=0, archive_files=0).more
False
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_runtime.config import RetentionSection
from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.outbox import Outbox
from edge_runtime.store.plausibility import DAY_US
from edge_runtime.store.stock import iso_utc
from edge_runtime.store.store_failure import StoreError

log = logging.getLogger(__name__)

ARCHIVE_PER_RUN = 50_000  # events archived per run (ingest waits for a run): more, a second on


@dataclass(frozen=True)
class RetentionReport:
    """What one run removed; ``more``: events wait to be archived (run again soon)."""

    outbox: int
    dead_letters: int
    archived: int
    archive_files: int
    more: bool = False


class Retention:
    """The bounds of ``section`` applied to one gateway's ledger, outbox and archive.

    ``forwarded_upto`` returns the outbox position the hub link is done with (None: no hub);
    ``mqtt`` says whether the broker marks rows sent (else nothing ever will).
    """

    def __init__(
        self,
        section: RetentionSection,
        ledger: Ledger,
        outbox: Outbox,
        archive: EventArchive,
        mqtt: bool,
        forwarded_upto: Callable[[], int | None],
    ):
        self.section = section
        self.ledger = ledger
        self.outbox = outbox
        self.archive = archive
        self.mqtt = mqtt
        self.forwarded_upto = forwarded_upto
        self._next_at = time.monotonic() + section.every_s  # the worker's next run

    def run_when_due(self, run: Callable[[], RetentionReport]) -> None:
        """The worker's turn: ``run`` (what applies the bounds) when enabled and ``every_s``
        has passed; again after 1 s while it says more waits. A failure other than the store's
        only delays history's pruning: logged, tried again at the next turn."""
        every = self.section.every_s
        if not self.section.enabled or time.monotonic() < self._next_at:
            return
        more = False
        try:
            more = run().more
        except StoreError:
            raise
        except Exception:  # history only: the next run tries again
            log.exception("retention failed; retried in %g s", every)
        finally:
            self._next_at = time.monotonic() + (1.0 if more else every)

    def run(self, keep_from: int, now: float | None = None) -> RetentionReport:
        """Apply every bound once; events at log position ``keep_from`` and later stay (the
        gateway's derived-state snapshot reads from there at its next start)."""
        r = self.section
        now = time.time() if now is None else now
        outbox = self.outbox.prune(
            keep_sent=r.outbox_rows,
            sent_before=now - r.outbox_days * 86_400,
            upto_seq=self.forwarded_upto(),
            require_sent=self.mqtt,
        )
        dead = self.ledger.prune_dead_letters(
            round((now - r.dead_letter_days * 86_400) * 1e6), r.dead_letter_rows
        )
        clock = self.ledger.clock_us
        archived = files = 0
        if clock:
            before = clock - round(r.event_log_days * DAY_US)
            archived = self.ledger.archive_events(
                self.archive, before, keep_from, limit=ARCHIVE_PER_RUN
            )
            oldest_day = iso_utc(clock - round(r.archive_days * DAY_US))[:10]
            files = self.archive.drop_before(oldest_day)
        return RetentionReport(outbox, dead, archived, files, archived >= ARCHIVE_PER_RUN)
