"""How long each step of a gateway's start took: the subscription and the first commit wait for
all of them, so what holds the first acknowledgement back after a restart is read off a real
start (``--log-level DEBUG``) rather than guessed.

Each phase is given as wall seconds and CPU seconds of the whole process (all its threads): on
a busy gateway box the wall time depends on what else runs, the CPU time does not. The first
phase, ``process``, is the time from the process's start to the gateway's construction: the
interpreter and the imports.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path


def process_age_s() -> float:
    """Seconds since this process started (0.0 where ``/proc`` does not say).

    >>> 0.0 <= process_age_s() < 1e6
    True
    """
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime_s - start_ticks / os.sysconf("SC_CLK_TCK"))


class StartPhases:
    """Marks the end of each start-up phase and reports them in one line.

    >>> phases = StartPhases()
    >>> phases.mark("ledger"); phases.mark("bundle")
    >>> phases.summary().split(", ")[1].startswith("ledger 0.0")
    True
    """

    def __init__(self) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self._marks = [("start", now - process_age_s(), 0.0), ("process", now, cpu)]

    def mark(self, name: str) -> None:
        """The phase ``name`` ends now."""
        self._marks.append((name, time.perf_counter(), time.process_time()))

    def summary(self) -> str:
        """``name wall/cpu`` seconds per phase, in order."""
        m = self._marks
        return ", ".join(
            f"{name} {t - m[i][1]:.3f}/{c - m[i][2]:.3f}" for i, (name, t, c) in enumerate(m[1:])
        )

    def log(self, log: logging.Logger) -> None:
        """One debug line with every phase."""
        log.debug("start-up phases (wall/cpu s): %s", self.summary())

    def end(self, name: str, log: logging.Logger) -> None:
        """The last phase, ``name``, ends now: log them all."""
        self.mark(name)
        self.log(log)
