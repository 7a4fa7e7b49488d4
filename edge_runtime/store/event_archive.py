"""The event log's archive: old events moved out of SQLite into compressed daily files.

The ledger's log is append-only and would grow for as long as the store trades. Events whose
event time lies further behind the ledger clock than the retention bound are moved, an hour of
event time at a time, into ``events-YYYY-MM-DD.jsonl.gz`` (the UTC day of their event time; one
JSON object per line, the event as it was logged plus its ``seq`` and ``received_us``), and their
SKUs' folded state up to there is kept in the ledger (``stock_base``), so every rule that re-folds
the log still finds the same state (``Ledger.archive_events``).

Exactly once: before an hour's events are appended, the file's size is recorded in the ledger
(``meta.archive_mark``); the events leave the log in one transaction that clears the mark. A
crash in between leaves the mark: the next run cuts the file back to that size and archives the
hour again. Each append is one gzip member, so a file is a plain ``.jsonl.gz`` to any reader.

>>> import tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> box = EventArchive(tmp.name)
>>> box.append("2026-01-05", [{"event_id": "e1", "qty": 2}])
>>> box.append("2026-01-05", [{"event_id": "e2", "qty": 1}])
>>> [e["event_id"] for e in box.read()], box.days()
(['e1', 'e2'], ['2026-01-05'])
>>> tmp.cleanup()
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

PREFIX, SUFFIX = "events-", ".jsonl.gz"


class EventArchive:
    """Daily ``events-YYYY-MM-DD.jsonl.gz`` files in ``directory`` (created when first written).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     archive = EventArchive(tmp)
    ...     archive.append("2026-01-04", [{"event_id": "e1"}])
    ...     archive.append("2026-01-05", [{"event_id": "e2"}])
    ...     dropped = archive.drop_before("2026-01-05")  # past the archive's bound
    ...     dropped, archive.days(), [e["event_id"] for e in archive.read()]
    (1, ['2026-01-05'], ['e2'])
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def path_of(self, day: str) -> Path:
        return self.directory / f"{PREFIX}{day}{SUFFIX}"

    def size(self, day: str) -> int:
        """Bytes of ``day``'s file (0 when there is none)."""
        path = self.path_of(day)
        return path.stat().st_size if path.exists() else 0

    def append(self, day: str, events: Iterable[dict]) -> None:
        """Append ``events`` to ``day``'s file as one gzip member, durably (fsynced)."""
        data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        packed = gzip.compress(data.encode(), compresslevel=6, mtime=0)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_of(day)
        new = not path.exists()
        with open(path, "ab") as f:
            f.write(packed)
            f.flush()
            os.fsync(f.fileno())
        if new:  # the file's directory entry must survive a power cut too
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def cut(self, day: str, size: int) -> None:
        """Cut ``day``'s file back to ``size`` bytes (an append the ledger never committed)."""
        path = self.path_of(day)
        if not path.exists():
            return
        if size == 0:
            path.unlink()
        elif path.stat().st_size > size:
            with open(path, "r+b") as f:
                f.truncate(size)
                os.fsync(f.fileno())

    def days(self) -> list[str]:
        """The archived days, oldest first."""
        if not self.directory.is_dir():
            return []
        names = (p.name for p in self.directory.glob(f"{PREFIX}*{SUFFIX}"))
        return sorted(n[len(PREFIX) : -len(SUFFIX)] for n in names)

    def read(self, day: str | None = None) -> Iterator[dict]:
        """The archived events of ``day`` (default: every day, oldest file first)."""
        for d in [day] if day else self.days():
            with gzip.open(self.path_of(d), "rt") as f:
                for line in f:
                    yield json.loads(line)

    def drop_before(self, day: str) -> int:
        """Delete the files of days before ``day`` (ISO date); returns how many."""
        gone = [d for d in self.days() if d < day]
        for d in gone:
            self.path_of(d).unlink()
        return len(gone)

    def disk_bytes(self) -> int:
        return sum(self.size(d) for d in self.days())
