"""The Go runtime setting every nats-server that shelfcast starts runs with (the demo's, the
tests' and the benchmarks'), so that a benchmark can compare them and a deployment knows what
it measured.

nats-server is a Go program: by default Go runs one scheduler thread per CPU (GOMAXPROCS).
``SHELFCAST_NATS_GOMAXPROCS`` sets that number for the servers shelfcast starts; ``auto`` (the
default) leaves Go's own choice (or a GOMAXPROCS the environment already has). What one
thread did on the 2-core benchmark box, and why it is not the default:
docs/records/hub-figures.md.

>>> nats_server_env({"PATH": "/bin"}).get("GOMAXPROCS")
>>> nats_server_env({"SHELFCAST_NATS_GOMAXPROCS": "1", "PATH": "/bin"})["GOMAXPROCS"]
'1'
>>> nats_gomaxprocs({})
'auto'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

GOMAXPROCS_VARIABLE = "SHELFCAST_NATS_GOMAXPROCS"
GO_DEFAULT = "auto"  # leave GOMAXPROCS as the environment has it (unset: one per CPU)


def nats_gomaxprocs(env: Mapping[str, str] | None = None) -> str:
    """The chosen setting: a positive number as text, or ``auto``; ``ValueError`` otherwise."""
    value = (os.environ if env is None else env).get(GOMAXPROCS_VARIABLE, "").strip().lower()
    value = value or GO_DEFAULT
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
