"""How long each step of a gateway's start took: the subscription and the first commit wait for
all of them, so what holds the first acknowledgement back after a restart is read off a real
start (``--log-level DEBUG``) rather than guessed."""

from __future__ import annotations

import logging
import time


class StartPhases:
    """Marks the end of each start-up phase and reports them in one line.

    >>> phases = StartPhases()
    >>> phases.mark("ledger"); phases.mark("bundle")
    >>> phases.summary().startswith("ledger 0.0")
    True
    """

    def __init__(self) -> None:
        self._marks = [("begin", time.perf_counter())]

    def mark(self, name: str) -> None:
        """The phase ``name`` ends now."""
        self._marks.append((name, time.perf_counter()))

    def summary(self) -> str:
        """``name seconds`` per phase, in order."""
        m = self._marks
        return ", ".join(f"{name} {t - m[i][1]:.3f}" for i, (name, t) in enumerate(m[1:]))

    def log(self, log: logging.Logger) -> None:
        """One debug line with every phase."""
        log.debug("start-up phases (s): %s", self.summary())
