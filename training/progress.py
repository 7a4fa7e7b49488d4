"""Progress bars for the steps that take longer than a few seconds: training, backtest, twin.

Bars go to stderr and show only on a terminal (a log file or CI gets the timestamped lines
alone); ``SHELFCAST_PROGRESS=1`` forces them on, ``0`` off. Messages written while a bar runs
go through :func:`say`, so they print above the bar instead of through it.

>>> with progress_bar(3, "demo", env={"SHELFCAST_PROGRESS": "0"}) as bar:
...     bar.update(3)
>>> bar.disable
True
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from tqdm import tqdm

ENV_VAR = "SHELFCAST_PROGRESS"


def _enabled(env: Mapping[str, str]) -> bool | None:
    """tqdm's ``disable``: True (off), False (on) or None (on only on a terminal)."""
    value = env.get(ENV_VAR, "").strip().lower()
    if value in ("1", "on", "true", "yes"):
        return False
    if value in ("0", "off", "false", "no"):
        return True
    return None


def progress_bar(
    total: int, desc: str, unit: str = "step", env: Mapping[str, str] = os.environ
) -> tqdm:
    """A bar of ``total`` steps on stderr (see the module's docstring for when it shows)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=_enabled(env),
        leave=True,
        dynamic_ncols=True,
    )


def say(message: str) -> None:
    """Print a line on stderr above any running bar."""
    tqdm.write(message, file=sys.stderr)
