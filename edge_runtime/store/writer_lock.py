"""One writer per ledger: an exclusive ``flock`` on a lock file beside the ledger.

Two gateways (or a gateway and ``shelfcast serve``) on one state directory would both number
events from the same ``seq`` and fight over one MQTT session; the second must refuse to start
instead, saying which directory and which process holds it. ``flock`` is released by the
kernel when the holder dies (kill -9 included), so a crash never leaves a stale lock; the
file itself stays and only carries the holder's pid for the message.

>>> import tempfile, os
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "ledger.sqlite.lock")
>>> lock = WriterLock.acquire(path)
>>> try:
...     WriterLock.acquire(path)
... except WriterLockHeld as err:
...     print("in use" in str(err), f"pid {os.getpid()}" in str(err))
True True
>>> lock.release()
>>> tmp.cleanup()
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class WriterLockHeld(RuntimeError):
    """Another process (or another ledger object in this one) writes this ledger.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = WriterLock.acquire(f"{tmp}/ledger.sqlite.lock")
    ...     try:
    ...         WriterLock.acquire(f"{tmp}/ledger.sqlite.lock")
    ...     except WriterLockHeld as err:
    ...         print("one gateway per ledger" in str(err))
    ...     first.release()
    True
    """


class WriterLock:
    """An acquired lock; held until :meth:`release` or the process ends.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     lock = WriterLock.acquire(f"{tmp}/ledger.sqlite.lock")
    ...     lock.release()
    ...     again = WriterLock.acquire(f"{tmp}/ledger.sqlite.lock")  # free once released
    ...     again.release()
    """

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: str | os.PathLike[str]) -> WriterLock:
        """Take the lock at ``path`` without waiting; ``WriterLockHeld`` names the holder."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise WriterLockHeld(
                f"state directory {path.parent} is in use by another writer (pid {holder}, "
                f"lock {path.name}): one gateway per ledger; stop it or use another state "
                "directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
