"""The Go runtime settings every nats-server that shelfcast starts runs with (the demo's, the
tests' and the benchmarks'), and what a deployment starting its own should set the same way.

nats-server is a Go program: by default Go runs one scheduler thread per CPU (GOMAXPROCS). Where
the server shares a small machine with the hub's workers, a second scheduler thread buys no
throughput (the workers keep the other cores busy) but costs the server its idle threads'
spinning and wake-ups between its goroutines, and one more runnable thread competing with the
workers for their cores. One is the default here; ``SHELFCAST_NATS_GOMAXPROCS`` changes it (a
number, or ``auto`` for Go's own choice, e.g. on a machine of the server's own).
Why and what it measured: docs/records/hub-figures.md.

>>> nats_server_env({"PATH": "/bin"})["GOMAXPROCS"]
'1'
>>> nats_server_env({"SHELFCAST_NATS_GOMAXPROCS": "auto", "PATH": "/bin"}).get("GOMAXPROCS")
>>> nats_server_env({"SHELFCAST_NATS_GOMAXPROCS": "2"})["GOMAXPROCS"]
'2'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

GOMAXPROCS_VARIABLE = "SHELFCAST_NATS_GOMAXPROCS"
DEFAULT_GOMAXPROCS = "1"
GO_DEFAULT = "auto"  # leave GOMAXPROCS as the environment has it (unset: one per CPU)


def nats_gomaxprocs(env: Mapping[str, str] | None = None) -> str:
    """The chosen setting: a positive number as text, or ``auto``; ``ValueError`` otherwise."""
    value = (os.environ if env is None else env).get(GOMAXPROCS_VARIABLE, "").strip().lower()
    value = value or DEFAULT_GOMAXPROCS
    if value != GO_DEFAULT and not (value.isdigit() and int(value) > 0):
        raise ValueError(f"{GOMAXPROCS_VARIABLE}={value!r}: a number of threads >= 1, or 'auto'")
    return value


def nats_server_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to start nats-server with: ``env`` (default this process's) with
    GOMAXPROCS set as :func:`nats_gomaxprocs` says."""
    out = dict(os.environ if env is None else env)
    chosen = nats_gomaxprocs(out)
    if chosen != GO_DEFAULT:
        out["GOMAXPROCS"] = chosen
    return out
