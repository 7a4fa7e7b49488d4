"""When the store fails, not the event: one rule for what counts, one way to end a write.

A full disk, an I/O error, a lock held by another writer or a constraint the log itself breaks
(two writers numbering events) say nothing about the event being written: the event must wait
(unacknowledged, answered 503), never be dead-lettered. Only the event's own content makes a
dead letter. :func:`is_store_failure` is that rule, :class:`StoreError` carries it to callers,
and :func:`write_transaction` ends a failed write the same way everywhere: SQLite may already
have rolled the transaction back itself (it does on ``SQLITE_FULL`` and some I/O errors), and
an explicit ``ROLLBACK`` then raises "no transaction is active", which would hide the real
error and skip whatever the caller restores after it.

:class:`StoreHealth` remembers whether the last write failed, so readiness, metrics and the
gateway's state message can say so while it lasts.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> _ = conn.execute("CREATE TABLE t (x)")
>>> try:
...     with write_transaction(conn):
...         _ = conn.execute("INSERT INTO t VALUES (1)")
...         _ = conn.execute("ROLLBACK")  # as SQLite does by itself on a full disk
...         raise sqlite3.OperationalError("database or disk is full")
... except StoreError as err:
...     print(err)
cannot write to the store: database or disk is full
>>> conn.in_transaction, conn.execute("SELECT count(*) FROM t").fetchone()[0]
(False, 0)
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

# Errors an event's content can cause while it is written (a value SQLite cannot bind or
# store) and coding errors; every other SQLite error is the store's own.
_NOT_THE_STORE = (sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError)


class StoreError(sqlite3.OperationalError):
    """The store could not write (full disk, I/O error, another writer): retry later; the
    input was not at fault. An ``sqlite3.OperationalError``, so callers that catch SQLite's
    own errors still do.

    >>> str(StoreError.of(sqlite3.OperationalError("disk I/O error")))
    'cannot write to the store: disk I/O error'
    """

    @classmethod
    def of(cls, err: BaseException) -> StoreError:
        """Wrap ``err`` (kept as the cause) unless it already is a ``StoreError``."""
        if isinstance(err, StoreError):
            return err
        wrapped = cls(f"cannot write to the store: {err}")
        wrapped.__cause__ = err
        return wrapped


def is_store_failure(err: BaseException) -> bool:
    """True when ``err`` is the store failing (never a reason to dead-letter the input).

    >>> is_store_failure(sqlite3.IntegrityError("UNIQUE constraint failed: events.seq"))
    True
    >>> is_store_failure(sqlite3.InterfaceError("Error binding parameter 1")), is_store_failure(
    ...     ValueError("qty"))
    (False, False)
    """
    if isinstance(err, sqlite3.Error):
        return isinstance(err, StoreError) or not isinstance(err, _NOT_THE_STORE)
    return isinstance(err, OSError)


def end_failed_transaction(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so; never raises (the
    error that got here is the one to report)."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as err:  # the next BEGIN tries again (see write_transaction)
        log.warning("ROLLBACK failed (%s); the transaction is ended before the next write", err)


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``; on any error the transaction is ended (whether or
    not SQLite already rolled it back) and a store failure is raised as :class:`StoreError`."""
    try:
        end_failed_transaction(conn)  # a ROLLBACK that failed last time
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except BaseException as err:
        end_failed_transaction(conn)
        if is_store_failure(err) and not isinstance(err, StoreError):
            raise StoreError.of(err) from err
        raise


@contextlib.contextmanager
def store_failures_raised() -> Iterator[None]:
    """Raise a store failure from the block (e.g. a read while the disk fails) as
    :class:`StoreError`, so no caller mistakes it for a problem of the input."""
    try:
        yield
    except Exception as err:
        if is_store_failure(err) and not isinstance(err, StoreError):
            raise StoreError.of(err) from err
        raise


class StoreHealth:
    """Whether the store's last write failed, why, since when, and how often it failed.

    Thread-safe: the gateway's worker and API threads both write through it.

    >>> h = StoreHealth()
    >>> h.failed(StoreError("cannot write to the store: database or disk is full"))
    >>> h.problem, h.failures
    ('cannot write to the store: database or disk is full', 1)
    >>> h.succeeded(); h.problem is None
    True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.problem: str | None = None
        self.since: float | None = None  # time.time() of the first failure of the episode
        self.failures = 0  # failed writes since the process started

    def failed(self, err: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self.problem is None:
                self.since = time.time()
            self.problem = str(StoreError.of(err))

    def succeeded(self) -> None:
        if self.problem is None:  # the common case, without the lock
            return
        with self._lock:
            self.problem = None
            self.since = None
