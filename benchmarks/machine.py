"""The machine a benchmark ran on, recorded beside its figures (one definition for every script).

The machines are shared and noisy, so every figure names the cores, memory, CPU model and the
load when the run started; a benchmark adds what else bears on its figures (``extra``).

>>> info = machine(sqlite="3.40")
>>> info["nproc"] >= 1 and info["memory_gib"] > 0 and info["sqlite"] == "3.40"
True
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def machine(**extra: object) -> dict:
    """Cores this process may use and the machine's total, memory, CPU model, Python, platform
    and the 1-minute load average at the start, plus ``extra``."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        **extra,
    }
