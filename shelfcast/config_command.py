"""``shelfcast config``: check a settings file before deploying it, or regenerate the reference.

    shelfcast config check gateway.toml          # exit 0 and a summary, or one line per problem
    shelfcast config check gateway.toml --env   # as the process would see it, with SHELFCAST_*
    shelfcast config check hub.toml --process hub
    shelfcast config reference docs/configuration.md

A file is checked against the ``shelfcast serve`` model, the gateway's sections plus ``[api]``,
so one file serves ``run`` and ``serve`` alike; ``--process hub`` checks a hub's file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from api.settings import ServeSettings
from configuration.hub_section import HubSection
from configuration.layered_settings import ConfigError, LayeredSettings, load_settings
from configuration.reference import render
from configuration.variables import OTHER_VARIABLES
from edge_runtime.config import GatewayConfig


def processes() -> list[tuple[str, type[LayeredSettings]]]:
    """Each long-running command and its settings model (the hub's only where it is installed:
    the edge image leaves it out)."""
    found: list[tuple[str, type[LayeredSettings]]] = [
        ("shelfcast run", GatewayConfig),
        ("shelfcast serve", ServeSettings),
    ]
    try:
        from hub.settings import HubProcessSettings
    except ModuleNotFoundError:
        return found
    return [*found, ("shelfcast hub", HubProcessSettings)]


INTRO = """
# Configuration reference

Generated from the settings models by `shelfcast config reference docs/configuration.md`; a test
fails when this page and the models differ. Do not edit by hand.

Each long-running process reads one settings model, in this order, later winning: a TOML file
(`--config FILE` or `SHELFCAST_CONFIG`), then environment variables, then command-line options.
The variable of `[section] key` is `SHELFCAST_SECTION_KEY` (a few keys also have the short name
shown); an empty variable counts as unset. Every problem is reported at start, one line each, naming the file and key or the
variable; an unknown section, key or `SHELFCAST_*` variable is an error naming the nearest valid
one. Check a file with `shelfcast config check FILE` (add `--env` to include the environment).
"""


def every_variable() -> set[str]:
    """Every ``SHELFCAST_*`` variable some process reads."""
    names = set(OTHER_VARIABLES)
    for _, model in processes():
        names |= set(model.env_names())
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check", "reference"))
    parser.add_argument(
        "path", nargs="?", help="check: the TOML file; reference: the page to write (else stdout)"
    )
    parser.add_argument(
        "--process",
        choices=("serve", "hub"),
        default="serve",
        help="check: the process the file is for (serve also covers run; default serve)",
    )
    parser.add_argument(
        "--env",
        action="store_true",
        help="check: layer this shell's SHELFCAST_* variables over the file, as a process would",
    )


def hub_summary(path: str, s: HubSection) -> str:
    """What a hub's file configures."""
    api = f"API {s.host}:{s.port}" if s.api else "no API"
    token = "" if not s.api else ", token set" if s.token else ", NO TOKEN: every request refused"
    return (
        f"{path}: valid for shelfcast hub\n  JetStream {s.nats_servers}, replicas {s.replicas}, "
        f"{s.workers} worker(s), {api}{token}"
    )


def summary(path: str, s: ServeSettings) -> str:
    """What the checked file configures, in a few lines."""
    g, m, api = s.gateway, s.mqtt, s.api
    tls = "TLS" if (m.tls or m.ca_file or m.cert_file) else "no TLS"
    broker = f"{m.host}:{m.port} ({tls})" if m.enabled else "off"
    if s.model.bundle:
        signer = s.model.public_key or "unsigned: development only"
        decides = f"model bundle {s.model.bundle} (key {signer})"
    else:
        decides = "the installed bundle, else the [policy] rules"
    writes = "writes need the token" if api.writes_enabled else "writes refused (no token)"
    return "\n".join(
        [
            f"{path}: valid for shelfcast run and shelfcast serve",
            f"  store {g.store_id}, state in {g.state_dir}",
            f"  broker {broker}, topics {m.topic_prefix}/{g.store_id}/...",
            f"  decisions: {decides}",
            f"  API {api.host}:{api.port}, {writes}",
        ]
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "reference":
        page = render(processes(), INTRO)
        if args.path:
            Path(args.path).write_text(page, encoding="utf-8")
        else:
            sys.stdout.write(page)
        return 0
    if not args.path:
        print("shelfcast config check: name the TOML file to check", file=sys.stderr)
        return 2
    env = os.environ if args.env else {}
    try:
        if args.process == "hub":
            from hub.settings import HubProcessSettings

            text = hub_summary(args.path, load_settings(HubProcessSettings, args.path, env).hub)
        else:
            text = summary(args.path, load_settings(ServeSettings, args.path, env))
    except ConfigError as err:
        for line in err.problems:
            print(f"shelfcast config check: {line}", file=sys.stderr)
        return 2
    print(text)
    return 0
