"""Value types of command-line options shared by every ``shelfcast`` command: a TCP port, a
logging level, a count of at least one. Each check lives here once, so ``run``, ``serve``,
``train`` and ``forecast`` refuse the same bad value with the same one-line message, before
any work starts, instead of a traceback (``--log-level verbose``) or a silent wrap-around
(``--port 99999`` listening on 34463).

They raise ``argparse.ArgumentTypeError``, which argparse turns into ``argument --port: ...``
and exit code 2; code reading the same values from the environment calls them too and names
the variable itself.

>>> port_number("8080"), log_level("warning"), positive_int("3")
(8080, 'WARNING', 3)
>>> port_number("99999")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: expected a TCP port in 1..65535, got 99999
"""

from __future__ import annotations

import argparse

TCP_PORTS = range(1, 65536)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


def port_number(text: str) -> int:
    """A TCP port: an integer in ``TCP_PORTS``."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a TCP port in {TCP_PORTS.start}..{TCP_PORTS.stop - 1}, got {text!r}"
        ) from None
    if value not in TCP_PORTS:
        raise argparse.ArgumentTypeError(
            f"expected a TCP port in {TCP_PORTS.start}..{TCP_PORTS.stop - 1}, got {value}"
        )
    return value


def log_level(text: str) -> str:
    """A standard logging level name, case-insensitive; returned upper-case."""
    name = str(text).strip().upper()
    if name not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown logging level {text!r}; use one of {', '.join(LOG_LEVELS)}"
        )
    return name


def log_format(text: str) -> str:
    """A log line format: ``text`` or ``json`` (see ``edge_runtime.log_output``).

    >>> log_format("JSON")
    'json'
    """
    name = str(text).strip().lower()
    if name not in LOG_FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown log format {text!r}; use one of {', '.join(LOG_FORMATS)}"
        )
    return name


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format``, the same for every long-running command."""
    parser.add_argument(
        "--log-level",
        type=log_level,
        default="INFO",
        help=f"logging level, one of {', '.join(LOG_LEVELS)} (default INFO)",
    )
    parser.add_argument(
        "--log-format",
        type=log_format,
        default=None,
        help="log lines as text or json, one object per line (env SHELFCAST_LOG_FORMAT; "
        "default text)",
    )


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (``--folds 0``: no backtest)."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1 (folds, days, trees, connections)."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
