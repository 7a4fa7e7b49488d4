"""What a ledger ingest did (``IngestResult``), the hook called before its COMMIT, and the
error that says the ledger cannot be used at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_runtime.store.events import Event, Rejection
from edge_runtime.store.stock import Conflict, SkuState


class LedgerError(RuntimeError):
    """The ledger cannot be used: its state directory is unusable, another process writes it,
    or the file belongs to another store or schema. The message is one line naming the path.

    >>> import tempfile
    >>> from edge_runtime.store.ledger import Ledger
    >>> with tempfile.NamedTemporaryFile() as not_a_dir:
    ...     try:
    ...         Ledger(f"{not_a_dir.name}/ledger.sqlite", "S1")
    ...     except LedgerError as err:
    ...         print(str(err).endswith("is not a directory"))
    True
    """


@dataclass(slots=True)
class IngestResult:
    """What one ``ingest`` did: counts, conflicts found, and the SKUs to re-score.

    >>> IngestResult(accepted=2).accepted
    2
    """

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    changed_skus: list[str] = field(default_factory=list)
    # The changed SKUs' states as the transaction wrote them (the stock table's new rows),
    # for decisions made before its COMMIT; this transaction's only (not summed by ``add``).
    written: dict[str, SkuState] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)  # newly stored, sensor readings included
    # Each new ledger event with its SKU's state right after it, in arrival order (a late
    # event's state re-folded at once, as if it came alone): decisions follow every state
    # change, not only a batch's last one. Filled when ``Ledger.record_steps`` is set.
    steps: list[tuple[Event, SkuState]] = field(default_factory=list)
    before: dict[str, SkuState | None] = field(default_factory=dict)  # state before the batch
    rejections: list[Rejection] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        """Count ``other`` (a later transaction of the same payload) into this result."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.conflicts.extend(other.conflicts)
        known = set(self.changed_skus)
        self.changed_skus.extend(s for s in other.changed_skus if s not in known)
        self.events.extend(other.events)
        self.rejections.extend(other.rejections)


BeforeCommit = Callable[[sqlite3.Connection, IngestResult], None]
