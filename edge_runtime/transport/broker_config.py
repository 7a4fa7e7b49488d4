"""The Mosquitto settings shipped with the gateway (``edge_runtime/transport/mosquitto.conf``), and that file
turned into a complete configuration for a local broker (tests, benchmarks, the demo).

The shipped file holds what the gateway depends on (persistence, per-session queue limits sized
for a stated outage, inflight window, expiry of abandoned sessions, ``$SYS`` interval) and none of
what differs per store (listener, authentication, paths). ``local_conf`` adds those for a broker
on the loopback interface, so tests and the demo run the product's broker settings.

>>> conf = local_conf(1883, "/tmp/b", overrides={"autosave_interval": "1"})
>>> "max_queued_messages 720000" in conf, "autosave_interval 1" in conf
(True, True)
>>> shipped_settings()["max_inflight_messages"]
'1000'
"""

from __future__ import annotations

import os
from pathlib import Path

SHIPPED_CONF = Path(__file__).with_name("mosquitto.conf")
OUTAGE_S = 600  # the broker queue covers a gateway outage this long ...
OUTAGE_EVENTS_PER_S = 1200  # ... at this many single-event messages a second
DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"


def shipped_settings() -> dict[str, str]:
    """The shipped file's settings, option -> value, in file order."""
    out: dict[str, str] = {}
    for line in SHIPPED_CONF.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key] = value.strip()
    return out


def local_conf(
    port: int,
    work_dir: str | Path,
    bind: str = "127.0.0.1",
    overrides: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> str:
    """A whole mosquitto.conf: the shipped settings (``overrides`` replace some), a listener on
    ``bind:port``, persistence and log under ``work_dir``, and ``extra`` lines (TLS, users)."""
    settings = {**shipped_settings(), **(overrides or {})}
    work_dir = Path(work_dir)
    lines = [f"listener {port} {bind}", *(f"{k} {v}" for k, v in settings.items())]
    lines += [
        f"persistence_location {work_dir}/",
        f"log_dest file {work_dir / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root")  # else it drops to `mosquitto` and cannot write work_dir
    return "\n".join([*lines, *(extra or [])]) + "\n"
