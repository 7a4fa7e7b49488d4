"""Gateway-side MQTT settings switched for an experiment, without editing the product's code.

A benchmark's gateway process calls :func:`apply_from_env` before it starts its ``Gateway``;
the variant is named in ``BENCH_GATEWAY_VARIANT`` (read only here, by the benchmark
harness), a comma-separated list of:

- ``nagle``: the gateway's MQTT socket keeps Nagle's algorithm (paho's own socket, without
  the ``TCP_NODELAY`` that ``LeanClient`` sets). The broker's ``set_tcp_nodelay`` is not touched.
- ``mark=S``: acknowledged outbox rows marked sent every ``S`` seconds
  (``edge_runtime.transport.outbox_pump.MARK_EVERY_S``) instead of the shipped period.
- ``broker-nagle``: the broker the gateway talks to runs without ``set_tcp_nodelay`` (a global
  Mosquitto option). Not a gateway patch: the benchmark that starts the broker reads it
  (:func:`broker_overrides`).

An empty or unset variant is the product as shipped.
The variable's name has no ``SHELFCAST_`` prefix: ``shelfcast`` commands (the hub processes a
benchmark starts) refuse unknown variables of theirs as likely typos.

    BENCH_GATEWAY_VARIANT=nagle,mark=0.05 python benchmarks/hub.py ...
    python benchmarks/full_path.py --variant nagle=nagle --variant mark=mark=0.05 ...
"""

from __future__ import annotations

import os

VARIANT_ENV = "BENCH_GATEWAY_VARIANT"


def parse(spec: str) -> dict[str, object]:
    """``"nagle,mark=0.05"`` -> ``{"nagle": True, "mark": 0.05}``; unknown words refused."""
    out: dict[str, object] = {}
    for word in filter(None, (w.strip() for w in spec.split(","))):
        key, eq, value = word.partition("=")
        if key == "nagle" and not eq:
            out["nagle"] = True
        elif key == "mark" and eq:
            out["mark"] = float(value)
        elif key == "broker-nagle" and not eq:
            out["broker_nagle"] = True
        else:
            raise ValueError(f"unknown gateway variant {word!r} (nagle, mark=S, broker-nagle)")
    return out


def apply(spec: str) -> dict[str, object]:
    """Patch this process's gateway code for variant ``spec``; returns what was applied."""
    settings = parse(spec)
    if settings.get("nagle"):
        import paho.mqtt.client as mqtt

        from edge_runtime.transport.lean_client import LeanClient

        LeanClient._create_socket_connection = mqtt.Client._create_socket_connection
    if "mark" in settings:
        from edge_runtime.transport import outbox_pump

        outbox_pump.MARK_EVERY_S = settings["mark"]
    return settings


def apply_from_env() -> dict[str, object]:
    return apply(os.environ.get(VARIANT_ENV, ""))


def broker_overrides(spec: str) -> dict[str, str]:
    """Mosquitto settings (``tests.mosquitto.Mosquitto``'s ``overrides``) for variant ``spec``."""
    return {"set_tcp_nodelay": "false"} if parse(spec).get("broker_nagle") else {}
